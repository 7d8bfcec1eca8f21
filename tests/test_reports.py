"""Reports: figures in the PDF text and XLSX cells, schedules in a far-from-UTC zone, mails,
refused file paths and senders, and the request page through a real worker."""

from __future__ import annotations

import io
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from django.test import Client
from openpyxl import load_workbook
from pypdf import PdfReader

from apps.activity.models import Jobneed
from apps.reports.builders import ReportError, build, render
from apps.reports.cleanup import reports_root
from apps.reports.models import GeneratedReport, ReportHistory, ScheduledReport
from apps.reports.services import mail_file, mail_generated, run_schedules
from apps.y_helpdesk.models import Ticket
from tests import factories
from tests.support.waiting import patience


@pytest.fixture
def site(db):
    _, site = factories.client_and_site("Pacific/Auckland")
    for day, status in ((1, "COMPLETED"), (1, "AUTOCLOSED"), (2, "COMPLETED"), (9, "ASSIGNED")):
        plan = datetime(2026, 6, day, 21, 0, tzinfo=UTC)  # 09:00 next day in Auckland
        Jobneed.objects.create(
            identifier="PPM",
            description=f"Chiller {day}",
            plan_at=plan,
            expiry_at=plan + timedelta(hours=2),
            site=site,
            client=site.client,
            status=status,
        )
    Ticket.objects.create(description="Leak", site=site, priority="HIGH")
    return site


def test_the_pdf_text_and_the_xlsx_cells_hold_the_figures(site) -> None:
    data = build("ppm_compliance", site, date(2026, 6, 2), date(2026, 6, 3))
    assert data.summary == {"Completed": 2, "Missed": 1}
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(render(data, "pdf"))).pages)
    assert "PPM compliance" in text and "Chiller 1" in text and "Chiller 9" not in text
    assert "2026-06-02 09:00" in text  # planned time shown in Auckland time
    book = load_workbook(io.BytesIO(render(data, "xlsx")))
    rows = list(book["Report"].iter_rows(values_only=True))
    assert rows[1] == ("Description", "Planned", "Status", "Finished", "Outcome")
    assert [r[2] for r in rows[2:]] == ["Completed", "Auto-closed", "Completed"]
    assert rows[2][1] == datetime(2026, 6, 2, 9, 0)  # a real date cell, in Auckland time
    summary = list(book["Summary"].iter_rows(values_only=True))
    assert dict(summary[1:]) == {"Completed": 2, "Missed": 1}
    with pytest.raises(ReportError, match="Unknown report type 'payroll'"):
        build("payroll", site, date(2026, 6, 1), date(2026, 6, 2))


def test_schedules_fire_on_working_days_in_the_site_zone_once_per_period(site, mailoutbox) -> None:
    daily = ScheduledReport.objects.create(
        name="Daily PPM",
        report_type="ppm_compliance",
        site=site,
        cron="0 7 * * *",
        working_days="0,1,2,3,4",
        to_emails="boss@facility.test",
        cc_emails="ops@facility.test",
    )
    ScheduledReport.objects.create(
        name="Broken",
        report_type="payroll",
        site=site,
        cron="0 7 * * *",
        to_emails="x@facility.test",
    )
    saturday = datetime(2026, 6, 5, 20, 0, tzinfo=UTC)  # Saturday 08:00 in Auckland
    assert run_schedules(saturday)["generated"] == 0
    tuesday = datetime(2026, 6, 1, 19, 30, tzinfo=UTC)  # Tuesday 07:30 in Auckland
    first = run_schedules(tuesday)
    assert first["generated"] == 1 and first["failed"][0]["error"].startswith("Unknown report")
    assert run_schedules(tuesday + timedelta(minutes=10))["already"] == 1
    report = GeneratedReport.objects.get(schedule=daily)
    assert (report.date_from, report.date_to) == (date(2026, 6, 1), date(2026, 6, 1))
    assert mail_generated() == {"mailed": 1, "reports": 1}
    assert mail_generated() == {"mailed": 0, "reports": 0}
    (mail,) = mailoutbox
    assert mail.to == ["boss@facility.test"] and mail.cc == ["ops@facility.test"]
    assert mail.attachments[0][0] == "Daily PPM.pdf"


@pytest.mark.django_db
def test_files_outside_the_reports_area_and_other_senders_are_refused(
    settings, tmp_path, mailoutbox
):
    settings.MEDIA_ROOT = str(tmp_path)
    report_file = reports_root() / "daily" / "ppm.pdf"
    report_file.parent.mkdir(parents=True)
    report_file.write_bytes(b"%PDF-1.4 report")
    (tmp_path / "secret.txt").write_text("secret")
    for path in ("../secret.txt", str(tmp_path / "secret.txt"), "daily/../../secret.txt"):
        with pytest.raises(ValueError, match="outside the reports storage area"):
            mail_file(path, settings.DEFAULT_FROM_EMAIL, ["a@facility.test"], [], "t1")
    with pytest.raises(ReportError, match="may not send reports"):
        mail_file("daily/ppm.pdf", "spoof@evil.test", ["a@facility.test"], [], "t2")
    assert mail_file("daily/ppm.pdf", settings.DEFAULT_FROM_EMAIL, ["a@facility.test"], [], "t3")[
        "sent"
    ]
    assert mailoutbox[0].attachments == [("ppm.pdf", b"%PDF-1.4 report", "application/pdf")]


def request_through_the_page(browser: Client, site) -> tuple[str, dict, list[int]]:
    """Ask for June's PPM compliance as XLSX on the page, follow its progress to the end: the
    report page's URL, the last status and every progress figure seen."""
    response = browser.post(
        "/reports/",
        {
            "report_type": "ppm_compliance",
            "site": site.pk,
            "date_from": "2026-06-01",
            "date_to": "2026-06-30",
            "format": "xlsx",
        },
    )
    assert response.status_code == 302
    status_url = response["Location"] + "/status"
    assert status_url in browser.get(response["Location"]).content.decode()  # the page polls it
    seen, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        status = browser.get(status_url).json()
        seen.append(status["progress"])
        if status["status"] in ("DONE", "FAILED"):
            break
        time.sleep(0.05)
    return response["Location"], status, seen


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_report_page_through_the_worker(worker, mail_sink, site) -> None:
    person = factories.person(site, email="analyst@facility.test")
    browser = Client()
    browser.force_login(person)
    _, status, seen = request_through_the_page(browser, site)
    assert status["status"] == "DONE" and seen[-1] == 100
    book = load_workbook(
        io.BytesIO(b"".join(browser.get(status["download_url"]).streaming_content))
    )
    assert len(list(book["Report"].iter_rows())) == 2 + 4
    ((recipients, message),) = mail_sink.wait_for(1)
    assert (
        recipients == ["analyst@facility.test"]
        and "/download" in message.get_body(("plain",)).get_content()
    )
    deadline = time.monotonic() + patience(20)
    while not ReportHistory.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    history = ReportHistory.objects.get()
    assert (history.person, history.file_format, history.report_type) == (
        person,
        "xlsx",
        "ppm_compliance",
    )
    assert history.duration_ms is not None  # how long building it took, from generate()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_scheduled_reports_arrive_over_smtp_with_their_file(worker, mail_sink, site) -> None:
    from background_tasks import create_scheduled_reports, send_generated_report_on_mail

    ScheduledReport.objects.create(
        name="Daily tickets",
        report_type="tickets",
        site=site,
        cron="* * * * *",
        working_days="0,1,2,3,4,5,6",
        file_format="xlsx",
        to_emails="boss@facility.test",
    )
    assert (
        create_scheduled_reports.apply_async(ignore_result=False).get(timeout=patience(60))[
            "generated"
        ]
        == 1
    )
    assert send_generated_report_on_mail.apply_async(ignore_result=False).get(
        timeout=patience(60)
    ) == {
        "mailed": 1,
        "reports": 1,
    }
    ((recipients, message),) = mail_sink.wait_for(1)
    assert recipients == ["boss@facility.test"]
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "Daily tickets.xlsx"
    report = GeneratedReport.objects.get()
    with report.file.open("rb") as handle:
        assert attachment.get_content() == handle.read()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_send_the_generated_file_from_its_page(worker, mail_sink, site) -> None:
    person = factories.person(site, email="analyst@facility.test")
    browser = Client()
    browser.force_login(person)
    page, status, _ = request_through_the_page(browser, site)
    assert status["status"] == "DONE"
    mail_sink.wait_for(1)  # the requester's own "ready" mail
    mail_sink.messages.clear()
    assert f'href="{page}/send"' in browser.get(page).content.decode()

    refused = browser.post(f"{page}/send", {"to": "boss@facility.test, not-an-address"})
    assert refused.status_code == 200
    assert "“not-an-address” is not an e-mail address" in refused.content.decode()
    sent = browser.post(
        f"{page}/send",
        {"to": "boss@facility.test", "cc": '"Desk, Audit" <audit@facility.test>'},
        follow=True,
    )  # a Cc as a mail program copies it, with its display name
    assert sent.redirect_chain == [(page, 302)]
    assert "on its way to boss@facility.test, audit@facility.test" in sent.content.decode()

    ((recipients, message),) = mail_sink.wait_for(1)
    report = GeneratedReport.objects.get()
    assert sorted(recipients) == ["audit@facility.test", "boss@facility.test"]
    body = message.get_body(("plain",)).get_content()
    assert f"{person.name} (analyst@facility.test) sent you" in body  # who sent it
    assert message["Reply-To"] == "analyst@facility.test"
    assert message["Subject"] == f"PPM compliance, {site.name}, 01 Jun 2026 to 30 Jun 2026"
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == report.download_name
    with report.file.open("rb") as handle:
        assert attachment.get_content() == handle.read()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_mail_the_dashboard_as_a_workbook(worker, mail_sink, site) -> None:
    person = factories.person(site, email="manager@facility.test", name="Mira Manager")
    browser = Client()
    browser.force_login(person)
    assert 'href="/dashboard/mail"' in browser.get("/dashboard/").content.decode()
    assert "Enter at least one" in browser.post("/dashboard/mail", {"to": " , "}).content.decode()
    sent = browser.post(
        "/dashboard/mail", {"to": "owner@facility.test", "format": "xlsx"}, follow=True
    )
    assert sent.redirect_chain == [("/dashboard/", 302)]

    ((recipients, message),) = mail_sink.wait_for(1)
    assert recipients == ["owner@facility.test"]
    assert "Mira Manager (manager@facility.test) sent you this report" in (
        message.get_body(("plain",)).get_content()
    )
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename().endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(attachment.get_content()))["Report"]
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows[1][:5] == ["Site", "Day (site)", "As of (site time)", "Time zone", "Jobs today"]
    assert rows[2][0] == site.name and rows[2][6] == 1  # the open HIGH ticket
    # Real dates, not text, and the zone they are in named beside them.
    assert isinstance(rows[2][1], datetime) and isinstance(rows[2][2], datetime)
    assert sheet["B3"].number_format == "yyyy-mm-dd"
    assert sheet["C3"].number_format == "yyyy-mm-dd hh:mm"
    assert rows[2][3] == site.time_zone


@pytest.mark.django_db(transaction=True)
def test_rows_under_upstreams_code_of_a_report_type_take_its_one_code() -> None:
    """Before 0003, upstream-form history requests recorded TASKSUMMARY beside the page's
    task_summary: one report under two codes. The migration leaves one; other designs keep
    theirs."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("reports", "0002_reporthistory_scheduledreport_generatedreport")]
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    try:
        old = MigrationExecutor(connection).loader.project_state(before).apps
        history = old.get_model("reports", "ReportHistory")
        for code in ("TASKSUMMARY", "task_summary", "LISTOFTASKS", "LISTOFTICKETS"):
            history.objects.create(
                report_type=code, file_format="pdf", generated_at=datetime.now(UTC)
            )
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(leaves)
    assert sorted(ReportHistory.objects.values_list("report_type", flat=True)) == [
        "LISTOFTASKS",
        "task_summary",
        "task_summary",
        "tickets",
    ]


@pytest.mark.django_db
def test_mail_to_addresses_a_person_types_is_limited_per_person_and_hour(
    site, django_capture_on_commit_callbacks
) -> None:
    """The report: a technician mailed the dashboard to 10 outside addresses per request, as
    often as he liked. Now 30 addresses an hour per person, the dashboard and a report's
    "Send by mail" together; someone else has their own allowance."""
    from django.core.cache import cache

    cache.clear()
    tech, colleague = factories.person(site), factories.person(site)
    browser = Client()
    browser.force_login(tech)
    ten = ", ".join(f"buyer{n}@outside.test" for n in range(10))

    def mails_queued(callbacks) -> int:
        return sum(
            getattr(getattr(c, "func", None), "__self__", None) is not None for c in callbacks
        )

    with django_capture_on_commit_callbacks() as enqueued:
        for _ in range(3):
            assert browser.post("/dashboard/mail", {"to": ten, "format": "pdf"}).status_code == 302
        refused = browser.post("/dashboard/mail", {"to": ten, "format": "pdf"})
    assert refused.status_code == 200
    assert "at most 30 addresses an hour and have mailed 30 this hour" in refused.content.decode()
    assert mails_queued(enqueued) == 3
    report = GeneratedReport.objects.create(
        report_type="tickets",
        site=site,
        date_from=date(2026, 6, 1),
        date_to=date(2026, 6, 2),
        file_format="pdf",
        requested_by=tech,
        status=GeneratedReport.Status.DONE,
        file="reports/x.pdf",
    )
    with django_capture_on_commit_callbacks() as enqueued:
        send = browser.post(f"/reports/{report.uuid}/send", {"to": "one-more@outside.test"})
    assert "at most 30 addresses an hour" in send.content.decode() and mails_queued(enqueued) == 0
    browser.force_login(colleague)
    assert browser.post("/dashboard/mail", {"to": ten, "format": "pdf"}).status_code == 302
    cache.clear()
