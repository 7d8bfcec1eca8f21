"""Issue 23's journeys in a real Chromium, at desktop and phone width: a form whose session
ends before it is sent, Back after signing out on a shared computer."""

from __future__ import annotations

import pytest

from apps.y_helpdesk.models import Ticket
from tests import factories
from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_pages import person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTHS = pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])


@pytest.fixture
def site():
    _, site = factories.client_and_site("Asia/Kolkata")
    return site


@WIDTHS
def test_a_form_sent_after_the_session_ended_comes_back_after_sign_in(page, site, size) -> None:
    tech = person(site, name="Tara Technician")
    page.resize(size)
    page.sign_in(tech)
    page.open("/tickets/new")
    page.fill("description", "Chiller room door does not lock")
    page.choose("priority", "High")
    page.driver.delete_cookie("sessionid")  # the session ends while the form is open
    page.press("Raise ticket")

    notice = page.wait_for("#session-ended")
    assert "Your session had ended" in notice.text
    assert not Ticket.objects.exists()
    page.fill("username", tech.loginid)
    page.fill("password", "correct-horse-battery")
    page.press("Sign in")

    page.wait_for("#draft-restored")
    assert page.path == "/tickets/new"
    assert page.find("[name=description]").get_attribute("value") == (
        "Chiller room door does not lock"
    )
    assert page.find("[name=priority]").get_attribute("value") == "HIGH"
    page.press("Raise ticket")
    assert "created" in page.wait_for(".messages").text
    ticket = Ticket.objects.get()
    assert ticket.description == "Chiller room door does not lock" and ticket.priority == "HIGH"


@WIDTHS
def test_back_after_signing_out_shows_the_sign_in_page_not_the_last_persons_work(
    page, site, size
) -> None:
    tech = person(site, name="Tara Technician")
    Ticket.objects.create(
        description="Salary slips left on the printer", site=site, created_by=tech
    )
    page.resize(size)
    page.sign_in(tech)
    page.open("/tickets/")
    assert "Salary slips left on the printer" in page.text()
    page.sign_out()
    page.driver.back()
    page.wait_until(lambda: page.path.startswith("/accounts/login/"), what="the sign-in page")
    assert "Salary slips" not in page.text()


@WIDTHS
def test_a_ticket_carries_its_conversation(page, site, size) -> None:
    from apps.y_helpdesk.actions import save_ticket

    tech = person(site, name="Tara Technician")
    lead = person(site, name="Ira In-charge", designation="SITEINCHARGE")
    ticket = Ticket(description="Lift stuck on floor 3", site=site, priority="HIGH")
    save_ticket(ticket, tech, created=True, comment="Two people inside; they are calm.")
    page.resize(size)
    page.sign_in(lead)
    page.open("/tickets/")
    page.click(f"a[href='/tickets/{ticket.pk}']")
    page.fill("comment", "Technician from the lift company is 10 minutes away.")
    page.choose("status", "Open")
    page.press("Send")
    assert "saved" in page.wait_for(".messages").text
    lines = [line.text for line in page.find_all(".conversation li")]
    assert lines[0].startswith("Tara Technician raised it")
    assert lines[1].startswith("Tara Technician") and "they are calm" in lines[1]
    assert lines[2].startswith("Ira In-charge changed the status from New to Open")
    assert "Ira In-charge" in lines[3] and "10 minutes away" in lines[3]
    assert "Asia/Kolkata" in page.text()
    if size == DESKTOP:
        page.readme_shot("ticket-conversation")
    page.sign_out()
    page.sign_in(tech)
    page.open(f"/tickets/{ticket.pk}")
    assert "10 minutes away" in page.find(".conversation").text


def _layout(page, row_css: str) -> dict:
    return page.driver.execute_script(
        """
        const row = document.querySelector(arguments[0]);
        const box = (el) => el && el.getBoundingClientRect();
        const cell = (label) => [...row.querySelectorAll("td")].find(
          (td) => td.dataset.label === label);
        const visible = (el) => { const b = box(el); return !!b && b.width > 0 && b.height > 0
          && b.left >= 0 && b.right <= window.innerWidth; };
        return {
          header: box(document.querySelector(".site-header")).height,
          scroll: document.documentElement.scrollWidth,
          viewport: window.innerWidth,
          status: visible(cell("Status")),
          assigned: visible(cell("Assigned to")),
        };
        """,
        row_css,
    )


def test_on_a_phone_the_header_is_one_row_and_lists_are_cards(page, site) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from apps.activity.models import Jobneed

    lead = person(site, name="Ira In-charge", designation="SITEINCHARGE")
    tech = person(site, name="Tara Technician")
    Ticket.objects.create(
        description="Chiller room door does not lock " * 3,
        site=site,
        assigned_people=tech,
        priority="HIGH",
    )
    soon = timezone.now() + timedelta(hours=1)
    Jobneed.objects.create(
        identifier="TASK",
        description="Washroom hygiene check",
        plan_at=soon,
        expiry_at=soon + timedelta(hours=1),
        site=site,
        client=site.client,
        people=tech,
    )
    page.resize(PHONE)
    page.sign_in(lead)
    lists = (("/tickets/", "#tickets tbody tr"), ("/jobs/planned", "#planned-work tbody tr"))
    for path, row in lists:
        page.open(path)
        shape = _layout(page, row)
        assert shape["header"] <= 80, shape  # was 280-356 of 844 px
        assert shape["scroll"] <= shape["viewport"], shape  # nothing scrolls sideways
        assert shape["status"] and shape["assigned"], shape
    page.open("/tickets/")
    page.readme_shot("tickets-phone")
    assert not page.find(".sign-out").is_displayed()  # behind the menu
    page.press("Menu")
    assert page.find("[data-testid=signed-in]").is_displayed()
    page.press("Sign out")
    page.wait_until(lambda: page.path.startswith("/accounts/login/"), what="signed out")


@WIDTHS
def test_a_skip_link_leads_past_the_header_to_the_form(page, site, size) -> None:
    from selenium.webdriver.common.keys import Keys

    page.resize(size)
    page.sign_in(person(site, name="Tara Technician"))
    page.open("/tickets/new")
    body = page.find("body")
    body.send_keys(Keys.TAB)
    active = page.driver.switch_to.active_element
    assert active.text == "Skip to the content" and active.is_displayed()
    active.send_keys(Keys.ENTER)
    page.driver.switch_to.active_element.send_keys(Keys.TAB)
    assert page.driver.switch_to.active_element.get_attribute("name") == "description"


@pytest.mark.worker
def test_a_permit_on_a_phone_with_its_mailed_decisions(page, site, worker, mail_sink) -> None:
    from apps.activity.models import Question
    from apps.work_order_management.models import Vendor, WorkPermit
    from tests.browser.conftest import link_in, mails_to, plain_text

    hot_work, _ = factories.permit_types(site.client)
    section = hot_work.sections.get(seqno=1)
    Question.objects.filter(question_set=section.question_set, seqno=2).update(options="Yes,No")
    Vendor.objects.create(code="V9", name="Sparks Ltd", email="v@sparks.test", client=site.client)
    requester = person(site, name="Rita Requester", email="rita@facility.test")
    person(site, name="Victor Verifier", email="victor@facility.test")
    person(site, name="Vera Verifier", email="vera@facility.test")
    person(site, name="Anna Approver", email="anna@facility.test")

    page.resize(PHONE)
    page.sign_in(requester)
    page.open(f"/permits/new?type={hot_work.pk}")
    assert page.find("select[name='a-1-2']").tag_name == "select"  # Yes or No, not free text
    heights = page.driver.execute_script(
        "return [...document.querySelectorAll('fieldset label')].map("
        "l => l.getBoundingClientRect().height)"
    )
    assert heights and min(heights) >= 44, heights  # each person a row a thumb can hit
    page.choose("site", site.name)
    page.choose("vendor", "Sparks Ltd")
    page.tick("verifiers", "Victor Verifier", "Vera Verifier")
    page.tick("approvers", "Anna Approver")
    page.fill("a-1-1", "Boiler room")
    page.choose("a-1-2", "Yes")
    page.readme_shot("permit-form-phone")
    page.press("Raise permit")
    assert "verifiers are asked by mail" in page.wait_for(".messages").text
    permit = WorkPermit.objects.get()
    assert permit.answers.get(question="Fire watch assigned?").answer == "Yes"
    page.sign_out()

    (to_victor,) = mails_to(mail_sink, "victor@facility.test")
    page.open(link_in(to_victor, "/permits/decide/"))
    page.fill("remark", "No fire blanket on site")
    page.press("Reject")
    assert "requester is told why" in page.wait_for("article").text

    told = [
        m for m in mails_to(mail_sink, "vera@facility.test", count=2) if "rejected" in plain_text(m)
    ]
    assert told and "Victor Verifier (verifier)" in plain_text(told[0])
    assert "No fire blanket on site" in plain_text(told[0])
    first = next(m for m in mails_to(mail_sink, "vera@facility.test", count=2) if m not in told)
    page.open(link_in(first, "/permits/decide/"))
    assert "No decision needed" in page.text() and "Approve" not in page.text()
    assert not [m for _, m in mail_sink.messages if "anna@facility.test" in m["To"]]


@WIDTHS
def test_error_statuses_show_the_products_own_page(page, site, size) -> None:
    page.resize(size)
    page.open("/metrics")  # signed out: 401, not the browser's "HTTP ERROR 401"
    assert "401" in page.find(".error-code").text and "Sign-in needed" in page.text()
    page.sign_in(person(site, name="Tara Technician"))
    page.open("/reports/pdf")  # a GET of a POST-only address: 405
    assert "405" in page.find(".error-code").text and "HTTP ERROR" not in page.text()
    assert page.find(".brand").is_displayed()  # the product's page, header and all


@pytest.fixture
def demo_mail_unsent():
    """The demo's permit asks its verifier by mail: no worker of this test sends it, and no
    later test's worker may find it."""
    from django.conf import settings

    from tests.conftest import purge_queues

    yield
    purge_queues(settings.CELERY_BROKER_URL)


def test_the_demo_lets_every_printed_sign_in_walk_its_day(page, demo_mail_unsent) -> None:
    """What `./dev up` prints works in a browser: each role signs in with the demo password and
    lands on work of its own, the in-charge's dashboard has today's work, the verifier's
    decision waits, the tickets have their conversation."""
    import io

    from django.core.management import call_command

    from apps.peoples.models import People

    out = io.StringIO()
    call_command("load_demo_data", stdout=out)
    logins = [line.split()[0] for line in out.getvalue().splitlines()[1:]]
    assert len(logins) == 8

    def as_(loginid: str) -> None:
        page.sign_in(People.objects.get(loginid=loginid), password="demo")

    as_("incharge.mum")
    assert page.path == "/dashboard/"
    assert "None planned today" not in page.text() and "Today's jobs" in page.text()
    page.sign_out()
    as_("verifier")
    assert page.path == "/permits/" and page.find("#my-steps a[role=button]").text == "Decide"
    page.sign_out()
    as_("tech.mum")
    assert page.path == "/tickets/"
    page.click("#tickets tbody tr a")
    assert page.find_all(".conversation li.comment")  # demo tickets carry a conversation
    page.sign_out()
    for loginid in ("admin", "clientadmin", "incharge.nyc", "tech.nyc", "approver"):
        as_(loginid)
        assert "Page not found" not in page.text() and "Not allowed" not in page.text()
        page.sign_out()
