"""What people meet, without a browser: error pages, times in the site's zone, links that
follow the port, development mail as .eml files, fresh dashboards, the permit flow's remarks,
conditions and cancellations, and the report files' formatting."""

from __future__ import annotations

import html
import io
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.test import Client
from openpyxl import load_workbook
from pypdf import PdfReader

from apps.activity.models import Jobneed
from apps.reports.builders import build, render
from apps.reports.dashboard import site_dashboard
from apps.work_order_management import actions
from apps.work_order_management.links import decision_url
from apps.work_order_management.notifications import notify_contacts
from apps.work_order_management.pdf import render_permit_pdf
from apps.work_order_management.services import PermitError
from apps.y_helpdesk.models import Ticket, TicketEvent
from tests import factories
from tests.conftest import BASE_DIR
from tests.test_permits import new_permit, permit_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return permit_world()


def signed_in(person) -> Client:
    browser = Client()
    browser.force_login(person)
    return browser


def text_of(pdf: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


# --- pages --------------------------------------------------------------------------------------


def test_error_pages_are_the_products_own(client, world) -> None:
    browser = signed_in(world["requester"])
    missing = browser.get("/jobs/424242")
    assert missing.status_code == 404 and b"Page not found" in missing.content
    assert b'name="viewport"' in missing.content and b"Sign out" in missing.content
    refused = browser.get("/jobs/new")  # a technician does not plan jobs
    assert refused.status_code == 403
    assert b"Only site in-charges and client admins plan jobs." in refused.content
    assert client.get("/nowhere").status_code == 404


def test_the_server_error_page_renders_without_a_request_context() -> None:
    from django.template.loader import render_to_string

    html = render_to_string("500.html")
    assert "Something went wrong" in html and "Intelliwiz" in html


def test_pages_and_the_admin_show_the_persons_site_time(world) -> None:
    ticket = Ticket.objects.create(
        description="Leak", site=world["site"], priority="HIGH", created_by=world["requester"]
    )
    Ticket.objects.filter(pk=ticket.pk).update(created_at=datetime(2026, 3, 1, 6, 0, tzinfo=UTC))
    page = signed_in(world["requester"]).get("/tickets/").content.decode()
    assert ">1 Mar 2026, 10:00</time>" in page  # 06:00 UTC
    assert "Raised times are in the site's time zone, Asia/Dubai." in html.unescape(page)
    assert "others in yours, Asia/Dubai." in page
    assert ">High</span>" in page and ">HIGH<" not in page
    TicketEvent.objects.create(
        ticket=ticket, at=datetime(2026, 3, 1, 6, 0, tzinfo=UTC), action="CREATED"
    )
    staff = factories.person(world["site"], is_staff=True, is_superuser=True)
    admin_page = signed_in(staff).get(f"/admin/y_helpdesk/ticket/{ticket.pk}/change/")
    assert b"01 Mar 2026, 10:00 (Asia/Dubai)" in admin_page.content  # the history, site time
    assert b"Intelliwiz administration" in admin_page.content


def test_the_dashboard_is_fresh_after_a_save_and_says_as_of_when(
    world, clean_cache, django_capture_on_commit_callbacks
) -> None:
    site = world["site"]
    assert site_dashboard(site)["open_tickets_by_priority"] == {}
    with django_capture_on_commit_callbacks(execute=True):
        Ticket.objects.create(description="Leak", site=site, priority="HIGH")
    assert site_dashboard(site)["open_tickets_by_priority"] == {"HIGH": 1}
    admin = factories.person(site, is_client_admin=True)
    page = signed_in(admin).get("/dashboard/").content.decode()
    assert "as of <time" in page and 'data-code="HIGH">High</span> 1' in page


def test_job_and_report_forms_use_the_browsers_date_pickers(world) -> None:
    in_charge = factories.person(world["site"], designation="SITEINCHARGE")
    browser = signed_in(in_charge)
    assert b'type="datetime-local" name="valid_from"' in browser.get("/jobs/new").content
    report_form = browser.get("/reports/").content
    assert b'type="date" name="date_from"' in report_form
    sla = browser.get(f"/permits/new?type={world['sla'].pk}").content
    assert b'type="month" name="service_month"' in sla


def test_a_reversed_report_range_is_refused_by_the_form_with_a_sentence(world) -> None:
    browser = signed_in(world["requester"])
    response = browser.post(
        "/reports/",
        {
            "report_type": "tickets",
            "site": world["site"].pk,
            "date_from": "2026-06-30",
            "date_to": "2026-06-01",
            "format": "pdf",
        },
    )
    assert response.status_code == 200
    assert b"The end date is before the start date: the range must run forwards." in (
        response.content
    )


# --- settings and mail files ----------------------------------------------------------------------


SITE_URL_PROBE = (
    "import django; from django.conf import settings; django.setup(); print(settings.SITE_URL)"
)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"WEB_PORT": "18080"}, "http://127.0.0.1:18080"),
        ({"WEB_HOST": "0.0.0.0", "WEB_PORT": "9000"}, "http://127.0.0.1:9000"),  # noqa: S104
        ({"WEB_PORT": "9000", "SITE_URL": "https://fm.example"}, "https://fm.example"),
    ],
)
def test_mailed_links_follow_the_port_the_web_serves_on(tmp_path, env, expected) -> None:
    clean = {k: v for k, v in os.environ.items() if k not in {"SITE_URL", "WEB_HOST", "WEB_PORT"}}
    completed = subprocess.run(
        [sys.executable, "-c", SITE_URL_PROBE],
        cwd=BASE_DIR,
        env=clean
        | {"DJANGO_SETTINGS_MODULE": "intelliwiz_config.settings"}
        | {"INTELLIWIZ_VAR_DIR": str(tmp_path)}
        | env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.stdout.strip() == expected, completed.stderr


def test_development_mail_is_one_eml_file_per_message(tmp_path, settings) -> None:
    settings.EMAIL_BACKEND = "intelliwiz_config.mail_files.EmlFileBackend"
    settings.EMAIL_FILE_PATH = tmp_path
    sent = mail.get_connection().send_messages(
        [
            EmailMessage("First \u2013 ✓", "body one", "a@x.test", ["b@x.test"]),
            EmailMessage("Second", "body two", "a@x.test", ["c@x.test"]),
        ]
    )
    with mail.get_connection() as connection:  # as apps.core.mail.deliver sends
        sent += connection.send_messages([EmailMessage("Third", "three", "a@x.test", ["d@x"])])
    files = sorted(tmp_path.iterdir())
    # Nothing beside the messages: no empty .log of Django's file backend.
    assert sent == 3 and [f.suffix for f in files] == [".eml", ".eml", ".eml"]
    subjects = {str(message_from_bytes(f.read_bytes())["Subject"]) for f in files}
    assert len(subjects) == 3


# --- the permit flow ------------------------------------------------------------------------------


def test_a_rejection_needs_a_remark(world) -> None:
    permit = new_permit(world, contacts="", verifiers=[])
    step = permit.steps.get(person=world["approver"])
    with pytest.raises(PermitError, match="a rejection needs a remark"):
        actions.decide(step.pk, world["approver"], approve=False, remark="  ")
    permit.refresh_from_db()
    assert permit.status == "PENDING_APPROVAL"


def test_the_decision_page_asks_for_a_reason_before_a_rejection(world) -> None:
    permit = new_permit(world, contacts="", verifiers=[])
    step = permit.steps.get(person=world["approver"])
    path = "/" + decision_url(step).split("://", 1)[1].split("/", 1)[1]
    response = Client().post(path, {"decision": "reject", "remark": ""})
    assert response.status_code == 400 and b"Say why you reject it" in response.content
    permit.refresh_from_db()
    assert permit.status == "PENDING_APPROVAL"


def test_conditions_reach_the_vendor_the_requester_and_the_pdf(world, mailoutbox) -> None:
    permit = new_permit(world, contacts="guard@facility.test", verifiers=[])
    actions.decide(
        permit.steps.get(person=world["approver"]).pk,
        world["approver"],
        approve=True,
        remark="Fire blanket over the cables",
    )
    actions.decide(permit.steps.get(person=world["approver2"]).pk, world["approver2"], approve=True)
    assert notify_contacts(permit.pk, "approved")["sent"] == 3
    by_address = {m.to[0]: m for m in mailoutbox}
    condition = f"{world['approver'].name}: Fire blanket over the cables"
    assert condition in by_address["vendor@sparks.test"].body
    assert "your work permit is approved" in by_address["requester@facility.test"].body
    assert condition in by_address["requester@facility.test"].body
    assert "Fire blanket over the cables" in text_of(render_permit_pdf(permit))


def test_a_cancellation_tells_the_pending_verifiers_and_their_link_offers_nothing(
    world, mailoutbox
) -> None:
    permit = new_permit(world, contacts="guard@facility.test")
    link_path = "/" + decision_url(permit.steps.get(role="VERIFIER")).split("/", 3)[3]
    actions.cancel(permit.pk, world["requester"], "Weather turned")
    notify_contacts(permit.pk, "cancelled")
    addresses = sorted(m.to[0] for m in mailoutbox)
    # The approvers were never asked (verification was still pending): only the verifier is told.
    assert addresses == ["guard@facility.test", "vendor@sparks.test", "verifier@facility.test"]
    notice = next(m for m in mailoutbox if m.to == ["verifier@facility.test"])
    assert "No decision is needed from you" in notice.body and "Weather turned" in notice.body
    page = Client().get(link_path)
    assert page.status_code == 409 and b"was cancelled" in page.content
    assert b"Approve" not in page.content and b"Weather turned" in page.content


def test_a_cancelled_permits_page_lists_verifier_first_with_what_each_step_stands_at(
    world,
) -> None:
    permit = new_permit(world, contacts="")
    actions.cancel(permit.pk, world["requester"], "Weather turned")
    page = signed_in(world["requester"]).get(f"/permits/{permit.pk}").content.decode()
    steps = page[page.index('id="steps"') :]
    assert steps.index("Verifier") < steps.index("Approver")
    assert "Not needed: cancelled" in steps and ">Pending<" not in steps
    assert "Weather turned" in page


# --- report files -------------------------------------------------------------------------------


@pytest.fixture
def ppm_site():
    _, site = factories.client_and_site("Pacific/Auckland")
    now = datetime.now(UTC)
    for offset, status in ((-2, "COMPLETED"), (-1, "AUTOCLOSED"), (1, "ASSIGNED")):
        plan = now + timedelta(days=offset)
        Jobneed.objects.create(
            identifier="PPM",
            description=f"Chiller {offset}",
            plan_at=plan,
            expiry_at=plan + timedelta(hours=2),
            site=site,
            client=site.client,
            status=status,
        )
    return site


def test_ppm_compliance_does_not_count_future_visits_as_missed(ppm_site) -> None:
    today = datetime.now(UTC).date()
    data = build("ppm_compliance", ppm_site, today - timedelta(days=5), today + timedelta(days=5))
    assert data.summary == {"Completed": 1, "Missed": 1, "Not due yet": 1}


def test_an_empty_report_says_so(ppm_site) -> None:
    data = build("tickets", ppm_site, date(2020, 1, 1), date(2020, 1, 31))
    text = text_of(render(data, "pdf"))
    assert f"No data for tickets at {ppm_site.name} from 01 Jan 2020 to 31 Jan 2020." in text
    book = load_workbook(io.BytesIO(render(data, "xlsx")))
    assert book["Report"]["A3"].value.startswith("No data for tickets")


def test_the_xlsx_has_dates_a_bold_frozen_header_widths_and_labels(ppm_site) -> None:
    today = datetime.now(UTC).date()
    data = build("ppm_compliance", ppm_site, today - timedelta(days=5), today + timedelta(days=5))
    sheet = load_workbook(io.BytesIO(render(data, "xlsx")))["Report"]
    assert sheet.freeze_panes == "A3"
    assert all(cell.font.bold for cell in sheet[2])
    assert isinstance(sheet["B3"].value, datetime)
    assert sheet["B3"].number_format == "yyyy-mm-dd hh:mm"
    assert sheet.column_dimensions["A"].width > 10
    assert {sheet.cell(row, 3).value for row in (3, 4, 5)} == {
        "Completed",
        "Auto-closed",
        "Assigned",
    }


def test_the_report_pdf_shows_outcomes_by_their_labels(
    ppm_site,
) -> None:
    today = datetime.now(UTC).date()
    data = build("ppm_compliance", ppm_site, today - timedelta(days=5), today + timedelta(days=5))
    content = render(data, "pdf")
    text = text_of(content)
    assert "Chiller -2" in text and "Not due yet" in text


def test_steps_of_a_cancelled_permit_no_longer_wait_and_approvals_wait_behind_verification(
    world,
) -> None:
    permit = new_permit(world, contacts="")
    approver = signed_in(world["approver"])
    listing = approver.get("/permits/").content.decode()
    assert "After verification" in listing and "Decide</a>" not in listing
    verifier = signed_in(world["verifier"])
    assert "Decide</a>" in verifier.get("/permits/").content.decode()
    actions.cancel(permit.pk, world["requester"], "Weather turned")
    for browser in (approver, verifier):
        assert b"Nothing waits for you." in browser.get("/permits/").content
        assert browser.get("/").url != "/permits/"  # they land on their usual work again


# --- sessions: private pages and forms sent after the session ended (issue 23, points 2, 3) ------


def test_every_signed_in_page_tells_the_browser_not_to_keep_it(world) -> None:
    browser = signed_in(factories.person(world["site"], is_client_admin=True, is_staff=True))
    permit = new_permit(world, contacts="")
    for path in (
        "/dashboard/",
        "/tickets/",
        "/tickets/new",
        "/jobs/",
        "/permits/",
        f"/permits/{permit.pk}",
        "/reports/",
        "/admin/",
    ):
        response = browser.get(path)
        assert response.status_code == 200, path
        assert "no-store" in response["Cache-Control"], path
    step = permit.steps.get(role="VERIFIER")
    decision = Client().get("/" + decision_url(step).split("/", 3)[3])
    assert "no-store" in decision["Cache-Control"]  # a permit's details, signed out


def test_a_form_sent_after_the_session_ended_is_kept_and_put_back_after_sign_in(world) -> None:
    person = world["requester"]
    person.set_password("pass-word-1")
    person.save()
    browser = Client()
    browser.force_login(person)
    assert browser.get("/tickets/new").status_code == 200
    browser.logout()  # the session ends while the form is open
    typed = {
        "description": "Lift stuck between floors 3 and 4",
        "site": world["site"].pk,
        "priority": "HIGH",
        "status": "NEW",
    }
    sent = browser.post("/tickets/new", typed)
    assert sent.status_code == 302 and sent["Location"] == "/accounts/login/?next=/tickets/new"
    assert not Ticket.objects.exists()  # nothing saved unseen
    sign_in_page = browser.get(sent["Location"]).content.decode()
    assert "Your session had ended" in sign_in_page

    signed = browser.post(
        "/accounts/login/",
        {"username": person.loginid, "password": "pass-word-1", "next": "/tickets/new"},
    )
    assert signed["Location"] == "/tickets/new"
    form_page = browser.get("/tickets/new").content.decode()
    assert "What you typed is back in the form" in form_page
    assert '"description": ["Lift stuck between floors 3 and 4"]' in form_page
    assert (
        '"priority": ["HIGH"]' in form_page
        and "csrfmiddlewaretoken"
        not in form_page.split('id="restored-draft"')[1].split("</script>")[0]
    )
    again = browser.get("/tickets/new").content.decode()
    assert "restored-draft" not in again  # put back once


def test_signing_out_keeps_no_draft(world) -> None:
    browser = signed_in(world["requester"])
    browser.post("/accounts/logout/")
    assert "Your session had ended" not in browser.get("/accounts/login/").content.decode()
    assert "form_draft" not in browser.session


# --- phone-first pages (issue 23, point 8) -------------------------------------------------------


def test_a_ready_reports_download_is_on_its_page_before_any_poll(world) -> None:
    from apps.reports.models import GeneratedReport

    report = GeneratedReport.objects.create(
        report_type="tickets",
        site=world["site"],
        date_from=date(2026, 6, 1),
        date_to=date(2026, 6, 30),
        file_format="pdf",
        requested_by=world["requester"],
        status="DONE",
        progress=100,
        file="reports/generated/ready.pdf",
    )
    page = signed_in(world["requester"]).get(f"/reports/{report.uuid}").content.decode()
    assert f'<a id="download" href="/reports/{report.uuid}/download" role="button">' in page
    assert '<p id="state">Ready</p>' in page
    GeneratedReport.objects.filter(pk=report.pk).update(status="PROGRESS", progress=50)
    waiting = signed_in(world["requester"]).get(f"/reports/{report.uuid}").content.decode()
    assert '<a id="download" href="#" role="button" hidden>' in waiting


# --- rough edges (issue 23, point 10) ------------------------------------------------------------


def test_an_error_answered_with_no_page_gets_the_products_page(client, world) -> None:
    browser = signed_in(world["requester"])
    wrong_method = browser.get("/reports/pdf", HTTP_ACCEPT="text/html")
    assert wrong_method.status_code == 405 and wrong_method["Allow"] == "POST"
    page = wrong_method.content.decode()
    assert '<p class="error-code">405</p>' in page and "Sign out" in page
    anonymous = client.get("/metrics", HTTP_ACCEPT="text/html,application/xhtml+xml")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"]
    assert '<p class="error-code">401</p>' in anonymous.content.decode()
    scraper = client.get("/metrics", HTTP_ACCEPT="text/plain;version=0.0.4")
    assert scraper.status_code == 401 and scraper.content == b""  # machines get no page
    json_error = browser.post("/reports/pdf", "{", content_type="application/json")
    assert json_error.status_code == 400 and json_error.json()["error"]  # bodies are kept


def test_a_cc_may_carry_display_names_and_a_bad_entry_is_named(world) -> None:
    from apps.reports.views import recipient_list

    assert recipient_list('Asha Rao <asha@facility.test>, "Desk, Audit" <audit@facility.test>') == [
        "asha@facility.test",
        "audit@facility.test",
    ]
    for bad in ("Asha Rao asha@facility.test", "Asha <asha@facility.test> x", "asha @x.test"):
        with pytest.raises(ValidationError, match="is not an e-mail address"):
            recipient_list(bad)


def justified(pdf: bytes) -> bool:
    """Whether any line of the PDF is justified: fpdf2 spreads a justified line's words with
    spacing adjustments between the strings of a TJ array."""
    reader = PdfReader(io.BytesIO(pdf))
    pattern = re.compile(rb"\)\s*-?\d+(?:\.\d+)?\s*\(")
    return any(pattern.search(page.get_contents().get_data()) for page in reader.pages)


def test_pdf_tables_and_paragraphs_are_left_aligned(world, ppm_site) -> None:
    from apps.reports.builders import ReportData
    from apps.reports.pdf_jobs import render_job, request_pdf

    long = "Checked the site; all pumps running and every valve closed after the alarm test"
    report = render(
        ReportData(title="Readings", columns=["What", "Note"], rows=[["Pump", long]], summary={}),
        "pdf",
    )
    assert long.split(";")[0] in text_of(report) and not justified(report)
    permit = new_permit(world, contacts="", answers={1: {1: long}, 2: {1: ""}})
    assert not justified(render_permit_pdf(permit))
    job = request_pdf(
        "Notes",
        [{"heading": "Round", "paragraphs": [long * 2], "rows": [["Pump", long]]}],
        world["requester"],
    )
    with render_job(str(job.uuid)).file.open("rb") as handle:
        assert not justified(handle.read())


# --- one wording for times (issue 23, point 7) ---------------------------------------------------


def test_a_jobs_validity_window_is_in_its_sites_time_like_its_cron(world) -> None:
    from apps.activity.models import Job

    _, kolkata = factories.client_and_site("Asia/Kolkata")
    admin = factories.person(kolkata, is_client_admin=True)
    admin.site = None  # no site of their own: their pages' zone is their client's (UTC)
    admin.save()
    worker = factories.person(kolkata)
    job = factories.job(kolkata, worker, valid_from=datetime(2026, 6, 1, 3, 30, tzinfo=UTC))
    browser = signed_in(admin)
    form = browser.get(f"/jobs/{job.pk}/edit").content.decode()
    assert 'value="2026-06-01T09:00"' in form  # 03:30 UTC is 09:00 in Kolkata
    assert form.count("In the site&#x27;s time zone") == 2 and "your time zone" not in form
    data = {
        "name": job.name,
        "identifier": job.identifier,
        "cron": job.cron,
        "valid_from": "2026-07-01T09:00",
        "valid_to": "2026-09-01T18:00",
        "plan_duration_minutes": 60,
        "grace_minutes": 0,
        "expiry_minutes": 0,
        "site": kolkata.pk,
        "people": worker.pk,
        "priority": "MEDIUM",
        "enabled": "on",
    }
    assert browser.post(f"/jobs/{job.pk}/edit", data).status_code == 302
    job = Job.objects.get(pk=job.pk)
    assert job.valid_from == datetime(2026, 7, 1, 3, 30, tzinfo=UTC)
    assert job.valid_to == datetime(2026, 9, 1, 12, 30, tzinfo=UTC)


def test_site_work_shows_site_time_everywhere_and_says_so(world) -> None:
    site = world["site"]  # Asia/Dubai
    operator = factories.person(site, is_superuser=True, is_staff=True)
    operator.site = None
    operator.save()
    ticket = Ticket.objects.create(description="Leak", site=site, created_by=world["requester"])
    Ticket.objects.filter(pk=ticket.pk).update(created_at=datetime(2026, 3, 1, 6, 0, tzinfo=UTC))
    need = Jobneed.objects.create(
        identifier="TASK",
        description="Round",
        plan_at=datetime(2026, 3, 1, 6, 0, tzinfo=UTC),
        expiry_at=datetime(2026, 3, 1, 7, 0, tzinfo=UTC),
        site=site,
        client=site.client,
    )
    browser = signed_in(operator)
    for path in ("/tickets/", f"/tickets/{ticket.pk}", "/jobs/planned?planned_from="):
        page = html.unescape(browser.get(path).content.decode())
        assert "1 Mar 2026, 10:00" in page, path  # 06:00 UTC in Dubai, not UTC
        assert "site's time zone, Asia/Dubai" in page, path
        assert "Times of site work are in the site's time zone; others in yours, UTC." in page
    admin_list = browser.get("/admin/activity/jobneed/").content.decode()
    assert "1 Mar 2026, 10:00 (Asia/Dubai)" in admin_list
    assert "Times in your time zone (UTC); site records in their site" in html.unescape(admin_list)
    assert need.pk


def test_select_boxes_are_written_as_djangos_templates_write_them() -> None:
    """FORM_RENDERER writes selects in Python (a select of a client's people was a template
    include per person); the markup is the templates', option for option."""
    import re as regex

    from django import forms
    from django.forms.renderers import DjangoTemplates, get_default_renderer

    from apps.core.form_rendering import FormRenderer

    class Choices(forms.Form):
        plain = forms.ChoiceField(choices=[("", "Any"), ("a&b", 'A "quoted" <b>'), ("c", "C")])
        grouped = forms.ChoiceField(
            choices=[("Near", [("n1", "One"), ("n2", "Two")]), ("Far", [("f1", "Three")])],
            widget=forms.Select(attrs={"class": "wide", "data-x": 'y"z', "autofocus": True}),
        )
        many = forms.MultipleChoiceField(choices=[(1, "1"), (2, "2"), (3, "3")])
        off = forms.ChoiceField(choices=[("x", "X")], disabled=True, required=False)

    assert isinstance(get_default_renderer(), FormRenderer)
    data = {"plain": "a&b", "grouped": "n2", "many": ["1", "3"]}

    def markup(renderer) -> str:
        form = Choices(data, renderer=renderer)
        html = "".join(str(form[name]) for name in form.fields)
        return regex.sub(r">\s+<", "><", html)

    ours, djangos = markup(FormRenderer()), markup(DjangoTemplates())
    assert ours == djangos
    assert '<option value="a&amp;b" selected>A &quot;quoted&quot; &lt;b&gt;</option>' in ours
    assert '<optgroup label="Near">' in ours and "multiple" in ours
