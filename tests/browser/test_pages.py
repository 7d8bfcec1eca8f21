"""The product as its people meet it, in a real Chromium against a live server with a real
worker and SMTP sink: signing in, a ticket and its mail, a job and its planned instances in the
site's time, a permit through its mailed links to the vendor, a report and a PDF job through
their progress bars to the download, the decision page on a phone, GraphiQL offline."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from pypdf import PdfReader

from apps.activity.models import Jobneed
from apps.work_order_management import actions
from apps.work_order_management.links import decision_url
from apps.work_order_management.models import Vendor, WorkPermit
from apps.y_helpdesk.models import Ticket
from tests import factories
from tests.browser.conftest import PASSWORD, PHONE, link_in, mails_to, plain_text

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]


def person(site, **fields):
    someone = factories.person(site, **fields)
    someone.set_password(PASSWORD)
    someone.save(update_fields=["password"])
    return someone


def pdf_text(content: bytes) -> str:
    return "".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)


@pytest.fixture
def site():
    _, site = factories.client_and_site("Asia/Kolkata")
    return site


def test_a_technician_signs_in_sees_who_they_are_and_signs_out(page, site) -> None:
    tech = person(site, name="Tara Technician", email="tara@facility.test")
    page.open("/")
    assert page.path.startswith("/accounts/login/")
    assert "Sign in to Intelliwiz" in page.text() and "Django" not in page.text()
    assert page.find("meta[name=viewport]").get_attribute("content").startswith("width=device")
    page.fill("username", tech.loginid)
    page.fill("password", "wrong")
    page.press("Sign in")
    assert "enter a correct login id and password" in page.wait_for(".form-errors").text.lower()

    page.sign_in(tech)
    assert page.path == "/tickets/"  # a technician lands on their tickets
    header = page.find("header").text
    assert "Tara Technician" in header and "Technician" in header
    assert "Reports" in header and "Admin" not in header  # the admin is for staff only
    page.open("/jobs/999999")
    assert "Page not found" in page.text() and "Tara Technician" in page.text()
    page.sign_out()
    page.open("/tickets/")
    assert page.path.startswith("/accounts/login/")


def test_a_ticket_raised_on_its_page_is_listed_and_mailed(page, site, worker, mail_sink) -> None:
    tech = person(site, name="Tara Technician", email="tara@facility.test")
    page.sign_in(tech)
    page.press("New ticket")
    page.choose("site", site.name)
    page.choose("priority", "High")
    page.press("Raise ticket")  # no description yet: the error sits under its own field
    error = page.wait_for("#id_description_error")
    assert "required" in error.text
    assert page.find("#id_description").get_attribute("aria-invalid") == "true"

    page.fill("description", "Water leaking under the chiller \u2013 urgent ✓")
    page.press("Raise ticket")
    ticket = page.wait_until(lambda: Ticket.objects.first(), what="the ticket")
    assert f"Ticket #{ticket.number} created" in page.wait_for(".messages").text
    assert page.path == f"/tickets/{ticket.pk}"  # its page, with its conversation
    assert "Tara Technician raised it" in page.find(".conversation").text
    page.open("/tickets/")
    row = page.find("tbody tr").text
    assert "Water leaking" in row and "High" in row and "New" in row and "HIGH" not in row

    (mail,) = mails_to(mail_sink, "tara@facility.test")
    assert mail["Subject"] == f"Ticket #{ticket.number} is created at site {site.name}"
    body = plain_text(mail)
    assert "Water leaking under the chiller \u2013 urgent ✓" in body
    assert "Priority:         High" in body


def test_a_new_job_lists_its_planned_instances_in_the_sites_time(page, site, worker) -> None:
    in_charge = person(site, name="Ira In-charge", designation="SITEINCHARGE")
    page.sign_in(in_charge)
    page.open("/jobs/new")
    assert page.find("[name=valid_from]").get_attribute("type") == "datetime-local"
    today = timezone.localdate(timezone=site.tzinfo)
    page.fill("name", "Daily pump check")
    page.choose("identifier", "Preventive maintenance")
    page.fill("cron", "0 9 * * *")
    page.set_value("valid_from", f"{today - timedelta(days=1):%Y-%m-%d}T00:00")
    page.set_value("valid_to", f"{today + timedelta(days=6):%Y-%m-%d}T23:00")
    page.choose("site", site.name)
    page.choose("people", "Ira In-charge")
    page.press("Save")
    assert "saved" in page.wait_for(".messages").text

    def planned_rows():
        page.driver.refresh()
        rows = [r.text for r in page.find_all("#planned-instances tbody tr")]
        return rows if rows and "No upcoming" not in rows[0] else None

    rows = page.wait_until(planned_rows, timeout=60, what="planned instances")
    assert len(rows) >= 5
    # 09:00 in Kolkata (03:30 UTC): the page shows the site's time.
    assert all(", 09:00" in row and "Assigned" in row for row in rows), rows
    assert "Asia/Kolkata" in page.text()
    first = Jobneed.objects.order_by("plan_at").filter(plan_at__gte=timezone.now()).first()
    assert first.plan_at.astimezone(UTC).strftime("%H:%M") == "03:30"
    page.readme_shot("job")


def test_a_permit_from_creation_through_mailed_links_to_the_vendor(
    page, site, worker, mail_sink
) -> None:
    hot_work, _ = factories.permit_types(site.client)
    Vendor.objects.create(
        code="V1", name="Sparks Ltd", email="vendor@sparks.test", client=site.client
    )
    requester = person(site, name="Rita Requester", email="rita@facility.test")
    person(site, name="Victor Verifier", email="victor@facility.test")
    person(site, name="Anna Approver", email="anna@facility.test")

    page.sign_in(requester)
    page.open("/permits/")
    page.press("New permit or SLA report")
    page.click(f"a[href='?type={hot_work.pk}']")
    page.choose("site", site.name)
    page.choose("vendor", "Sparks Ltd")
    page.tick("verifiers", "Victor Verifier")
    page.tick("approvers", "Anna Approver")
    page.fill("a-1-1", "Boiler room")
    page.fill("a-2-1", "guard@facility.test")
    page.press("Raise permit")
    assert "verifiers are asked by mail" in page.wait_for(".messages").text
    page.sign_out()

    # The verifier opens the mailed link, signed out, in the browser: the link is the person.
    (to_verifier,) = mails_to(mail_sink, "victor@facility.test")
    link = link_in(to_verifier, "/permits/decide/")
    assert link.startswith(page.base_url + "/permits/decide/")
    page.open(link)
    assert "Victor Verifier, you are asked to verify this permit" in page.text()
    page.press("Approve")
    assert "your decision is recorded" in page.wait_for("article").text.lower()

    (to_approver,) = mails_to(mail_sink, "anna@facility.test")
    page.open(link_in(to_approver, "/permits/decide/"))
    page.fill("remark", "Keep a fire blanket over the cables")
    page.press("Approve")
    page.wait_for("article")

    (to_vendor,) = mails_to(mail_sink, "vendor@sparks.test")
    assert to_vendor["Subject"] == f"Hot Work Permit-1-{site.name}-In progress"
    assert "Anna Approver: Keep a fire blanket over the cables" in plain_text(to_vendor)
    (attachment,) = list(to_vendor.iter_attachments())
    text = pdf_text(attachment.get_content())
    assert "Keep a fire blanket over the cables" in text
    assert text.index("Victor Verifier") < text.index("Anna Approver")  # verifier first
    (to_requester,) = mails_to(mail_sink, "rita@facility.test")
    assert "your work permit is approved by Anna Approver" in plain_text(to_requester)

    # Opening a used link changes nothing and says so.
    page.open(link)
    assert "used already" in page.text()
    page.sign_in(requester)
    page.open(f"/permits/{WorkPermit.objects.get().pk}")
    steps = [row.text for row in page.find_all("#steps tbody tr")]
    assert steps[0].startswith("Verifier Victor Verifier Approved")
    assert steps[1].startswith("Approver Anna Approver Approved")
    assert "Conditions of approval" in page.text()


def test_a_report_from_its_request_through_the_progress_bar_to_the_download(
    page, site, worker, mail_sink
) -> None:
    analyst = person(site, name="Asha Analyst", email="asha@facility.test")
    for day, status in ((1, "COMPLETED"), (2, "AUTOCLOSED")):
        plan = datetime(2026, 6, day, 3, 30, tzinfo=UTC)
        Jobneed.objects.create(
            identifier="PPM",
            description=f"Chiller visit {day}",
            plan_at=plan,
            expiry_at=plan + timedelta(hours=2),
            site=site,
            client=site.client,
            status=status,
        )
    page.sign_in(analyst)
    page.open("/reports/")
    assert page.find("[name=date_from]").get_attribute("type") == "date"
    page.choose("report_type", "PPM compliance")
    page.choose("site", site.name)
    page.set_value("date_from", "2026-06-30")
    page.set_value("date_to", "2026-06-01")
    page.press("Request report")
    error = page.wait_for("#id_date_to_error")
    assert error.text == "The end date is before the start date: the range must run forwards."

    page.set_value("date_from", "2026-06-01")
    page.set_value("date_to", "2026-06-30")
    page.press("Request report")
    download = page.wait_for("#download", timeout=60)
    assert page.find("#bar").get_attribute("value") == "100"
    assert page.find("#state").text == "Ready"
    content = page.fetch_bytes(download.get_attribute("href"))
    text = pdf_text(content)
    assert "PPM compliance" in text and "Chiller visit 2" in text and "Missed" in text

    (mail,) = mails_to(mail_sink, "asha@facility.test")
    assert mail["Subject"] == f"Your report is ready: PPM compliance for {site.name}"
    assert link_in(mail, "/download").startswith(page.base_url + "/reports/")


def test_a_pdf_job_prints_any_text_and_shows_its_progress(page, site, worker) -> None:
    writer = person(site, name="Wen Writer")
    page.sign_in(writer)
    document = [
        {
            "heading": "Readings \u2013 week 23 ✓",
            "paragraphs": ["Pump room 日本 checked; all within range ✓"],
            "rows": [["Pump", "Pressure"], ["P-1", "2.4 bar"]],
        }
    ]
    answer = page.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const token = document.cookie.split("; ").find(c => c.startsWith("csrftoken="));
        fetch("/reports/pdf", {
          method: "POST",
          headers: {"Content-Type": "application/json", "X-CSRFToken": token.split("=")[1]},
          body: JSON.stringify({title: "Weekly readings \u2013 日本", document: arguments[0]}),
        }).then(r => r.json()).then(done).catch(e => done({error: String(e)}));
        """,
        document,
    )
    assert "job" in answer, json.dumps(answer)
    page.open(f"/reports/pdf/{answer['job']}")
    assert "Weekly readings \u2013 日本" in page.find("h1").text
    download = page.wait_for("#download", timeout=60)
    assert page.find("#bar").get_attribute("value") == "100"
    text = pdf_text(page.fetch_bytes(download.get_attribute("href")))
    for written in ("Readings \u2013 week 23 ✓", "日本", "2.4 bar"):
        assert written in text
    assert "?" not in text


def test_the_decision_page_on_a_phone(page, site, worker) -> None:
    hot_work, _ = factories.permit_types(site.client)
    vendor = Vendor.objects.create(
        code="V2", name="Sparks Ltd", email="vendor@sparks.test", client=site.client
    )
    requester = person(site, name="Rita Requester")
    approver = person(site, name="Anna Approver")
    permit = actions.create_permit(
        permit_type=hot_work,
        site=site,
        vendor=vendor,
        requester=requester,
        answers={1: {1: "Roof"}},
        approvers=[approver],
    )
    link = decision_url(permit.steps.get())
    page.resize(PHONE)
    page.open("/permits/decide/" + link.rsplit("/permits/decide/", 1)[1])
    assert "Anna Approver, you are asked to approve this permit" in page.text()
    metrics = page.driver.execute_script(
        """
        const buttons = [...document.querySelectorAll(".decision-buttons button")];
        return {
          heights: buttons.map(b => b.getBoundingClientRect().height),
          widths: buttons.map(b => b.getBoundingClientRect().width),
          font: parseFloat(getComputedStyle(document.body).fontSize),
          scroll: document.documentElement.scrollWidth,
          viewport: window.innerWidth,
        };
        """
    )
    assert metrics["viewport"] <= PHONE[0]
    assert all(height >= 44 for height in metrics["heights"]), metrics
    assert all(width >= 120 for width in metrics["widths"]), metrics
    assert metrics["font"] >= 16 and metrics["scroll"] <= metrics["viewport"], metrics
    page.readme_shot("decision-phone")

    page.press("Reject")  # without a remark: the requester would learn no reason
    assert "Say why you reject it" in page.wait_for("#remark-error").text
    permit.refresh_from_db()
    assert permit.status == "PENDING_APPROVAL"
    page.fill("remark", "No fire watch on the roof")
    page.press("Reject")
    assert "requester is told why" in page.wait_for("article").text
    permit.refresh_from_db()
    assert permit.status == "REJECTED"


def test_graphiql_renders_and_answers_offline(page, site) -> None:
    developer = person(site, name="Dev Eloper")
    page.sign_in(developer)
    page.open("/graphql")
    page.wait_for(".graphiql-container .CodeMirror", timeout=30)
    page.driver.execute_script(
        "document.querySelector('.graphiql-query-editor .CodeMirror')"
        ".CodeMirror.setValue('{ mySite { name timeZone } }');"
    )
    page.click(".graphiql-execute-button")
    result = page.wait_until(
        lambda: "Asia/Kolkata" in page.find(".result-window").text and page.find(".result-window"),
        what="the query's result",
    )
    assert site.name in result.text
    loaded = page.driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert loaded and all(url.startswith(page.base_url) for url in loaded), loaded


def test_the_dashboard_counts_the_sites_own_day_in_its_time(page, worker) -> None:
    _, auckland = factories.client_and_site("Pacific/Auckland")
    auckland.name = "Harbour Tower"
    auckland.save()
    manager = person(auckland, name="Mere Manager", is_client_admin=True)
    for description, priority in (("Door sensor", "LOW"), ("Lift stuck", "HIGH")):
        Ticket.objects.create(description=description, site=auckland, priority=priority)
    local_now = timezone.localtime(timezone.now(), auckland.tzinfo)
    midday = local_now.replace(hour=12, minute=0, second=0, microsecond=0)
    for hour, status in ((8, "COMPLETED"), (10, "COMPLETED"), (14, "ASSIGNED")):
        plan = midday.replace(hour=hour)
        Jobneed.objects.create(
            identifier="PPM",
            description=f"Round {hour}",
            plan_at=plan,
            expiry_at=plan + timedelta(hours=1),
            site=auckland,
            client=auckland.client,
            status=status,
        )
    page.sign_in(manager)
    page.open("/dashboard/")
    board = page.find(".site-board").text.replace("\n", " ")
    assert local_now.strftime("%A") in board and "Pacific/Auckland" in board
    assert "Today's jobs 3" in board and "Completed 2" in board and "Assigned 1" in board
    assert "High 1" in board and "Low 1" in board and "HIGH" not in board
    page.readme_shot("dashboard")
