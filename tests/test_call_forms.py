"""Every upstream call form of every task, replayed through a real worker.

The forms are upstream's argument lists (../shared/reference/upstream-tasks.md §5, and the
report tasks of upstream's background_tasks/tasks.py), called as its producers called them:
positionally, by keyword, or mixed. Each must be accepted by ``.delay()``; on the worker it
either runs as the current form (its side effect is checked: a mail, a row, a message) or is
refused with the documented error as a dead letter. Either way the worker logs exactly one
``task_legacy_call`` line for the run. MIGRATING.md lists the same forms.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.utils import timezone

import background_tasks as tasks
from apps.activity.models import Jobneed, JobneedDetails, Reminder
from apps.attendance.models import AttendanceEvent
from apps.core.models import DeadLetter, WorkerHeartbeat
from apps.core.tasks.base import BaseTask
from apps.integrations.bulk_sync import UPSTREAM_TABLES
from apps.reports.models import PdfJob, ReportHistory
from apps.work_order_management import actions
from apps.work_order_management.models import ApprovalStep, Vendor, WorkPermit
from apps.y_helpdesk.models import Ticket
from intelliwiz_config.celery import app
from tests import factories
from tests.conftest import ManagedProcess, SmtpSink
from tests.support.mqtt import Subscriber
from tests.support.waiting import patience

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

REFUSED = "apps.core.tasks.legacy.LegacyCallRefused"
UPSTREAM_PDF = "/var/tmp/youtility4_media/Hot Work Permit-1.pdf"


# --- Sending a form and reading its outcome ---------------------------------------------------


def legacy_lines(worker: ManagedProcess, task_id: str) -> list[str]:
    return [
        line
        for line in worker.log().splitlines()
        if "task_legacy_call " in line and f" id={task_id} " in line
    ]


def runs(worker: ManagedProcess, task, *args: Any, **kwargs: Any) -> Any:
    """Send an upstream form; it runs as the current form. Its result."""
    result = task.apply_async(args, kwargs, ignore_result=False)
    outcome = result.get(timeout=patience(60))
    (line,) = legacy_lines(worker, result.id)
    assert f"task={task.name} " in line and " use=" in line and "refused" not in line
    return outcome


def refused(worker: ManagedProcess, task, reason: str, *args: Any, **kwargs: Any) -> DeadLetter:
    """Send an upstream form; it is refused with `reason` and left as a dead letter."""
    result = task.apply_async(args, kwargs, ignore_result=False)
    result.get(timeout=60, propagate=False)
    deadline = time.monotonic() + patience(30)
    while (letter := DeadLetter.objects.filter(task_id=result.id).first()) is None:
        assert time.monotonic() < deadline, f"no dead letter for {task.name}"
        time.sleep(0.1)
    assert letter.exception_type == REFUSED and letter.retries == 0
    assert f"{task.name} refuses the upstream call" in letter.error
    assert reason in letter.error and "; use " in letter.error
    (line,) = legacy_lines(worker, result.id)
    assert f"task={task.name} " in line and " refused use=" in line
    return letter


def mails_to(sink: SmtpSink, address: str) -> list[EmailMessage]:
    deadline = time.monotonic() + patience(30)
    while time.monotonic() < deadline:
        found = [message for rcpt, message in sink.messages if address in rcpt]
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no mail to {address} arrived")


@contextmanager
def nothing_enqueued() -> Iterator[None]:
    """Build the world without its producers' own tasks, so the form under test does the work."""
    with (
        mock.patch.object(BaseTask, "delay_on_commit"),
        mock.patch.object(BaseTask, "apply_async_on_commit"),
    ):
        yield


def by_name(names: tuple[str, ...], values: tuple) -> dict[str, Any]:
    return dict(zip(names, values, strict=True))


# --- Work permits and SLA reports: the permit id (or the SLA report's uuid) first -------------

VERIFIER = (
    "womid",
    "verifiers",
    "sitename",
    "workpermit_status",
    "permit_name",
    "vendor_name",
    "client_id",
    "workpermit_attachment",
)
APPROVAL = (
    "womid",
    "approvers",
    "approvers_code",
    "sitename",
    "workpermit_status",
    "permit_name",
    "workpermit_attachment",
    "vendor_name",
    "client_id",
)
REMINDER = (
    "womid",
    "qsetid",
    "approvers",
    "client_id",
    "bu_id",
    "sitename",
    "workpermit_status",
    "vendor_name",
)
CANCELLATION = (
    "wom_id",
    "sitename",
    "workpermit_status",
    "vendor_name",
    "permit_name",
    "permit_no",
    "submit_work_permit",
    "submit_work_permit_from_mobile",
)
CONTACTS = (
    "wom_id",
    "sitename",
    "workpermit_status",
    "vendor_name",
    "pdf_path",
    "permit_name",
    "permit_no",
)
SLA_VENDOR = ("wom_id", "report_attachment", "sitename")
SLA_REPORT = ("slaid", "sitename")


def upstream_values(names: tuple[str, ...], permit: WorkPermit) -> tuple:
    """What upstream's producers passed: the permit's id (its uuid for the SLA vendor mail)
    first, then the details its mails showed."""
    example = {
        "womid": permit.pk,
        "wom_id": str(permit.uuid) if names == SLA_VENDOR else permit.pk,
        "slaid": permit.pk,
        "verifiers": ["VERIFIER1"],
        "approvers": ["APPROVER1"],
        "approvers_code": ["APPROVER1"],
        "qsetid": 7,
        "client_id": permit.client_id,
        "bu_id": permit.site_id,
        "sitename": permit.site.name,
        "workpermit_status": "PENDING",
        "permit_name": "Hot Work Permit",
        "permit_no": permit.number,
        "vendor_name": "Sparks Ltd",
        "workpermit_attachment": UPSTREAM_PDF,
        "pdf_path": UPSTREAM_PDF,
        "report_attachment": UPSTREAM_PDF,
        "submit_work_permit": False,
        "submit_work_permit_from_mobile": False,
    }
    return tuple(example[name] for name in names)


def permit_in(state: str) -> tuple[WorkPermit, dict[str, Any]]:
    """A permit (or SLA report) brought to `state` by the current flow, its own mails held."""
    client, site = factories.client_and_site("Asia/Dubai")
    hot_work, sla = factories.permit_types(client)
    people = {role: factories.person(site) for role in ("requester", "verifier", "approver")}
    vendor = Vendor.objects.create(
        code="V1", name="Sparks Ltd", email=f"vendor{site.pk}@sparks.test", client=client
    )
    is_sla = state.startswith("sla")
    with nothing_enqueued():
        permit = actions.create_permit(
            permit_type=sla if is_sla else hot_work,
            site=site,
            vendor=vendor,
            requester=people["requester"],
            answers={1: {1: "8"}} if is_sla else {1: {1: "Boiler room"}, 2: {1: ""}},
            verifiers=[] if is_sla else [people["verifier"]],
            approvers=[people["approver"]],
        )
        steps = {step.role: step for step in permit.steps.all()}
        if state in ("approval", "in_progress", "completed"):
            actions.decide(steps[ApprovalStep.Role.VERIFIER].pk, people["verifier"], approve=True)
        if state in ("in_progress", "completed", "sla_approved"):
            actions.decide(steps[ApprovalStep.Role.APPROVER].pk, people["approver"], approve=True)
        if state == "completed":
            actions.submit_return(permit.pk, {3: {1: "Yes"}})
        if state == "cancelled":
            actions.cancel(permit.pk, people["requester"], "Rain")
    permit.refresh_from_db()
    return permit, {**people, "vendor": vendor}


# task: its upstream parameters, the permit's state, who is mailed, the subject's end, and how
# upstream's producers called it
PERMIT_MAILS: dict[str, tuple[tuple[str, ...], str, str, str, tuple[str, ...]]] = {
    "send_email_notification_for_wp_verifier": (
        VERIFIER, "verification", "verifier", "Verification Pending", ("positional", "keywords")
    ),
    "send_email_notification_for_wp_from_mobile_for_verifier": (
        VERIFIER, "verification", "verifier", "Verification Pending", ("attachment by keyword",)
    ),
    "send_email_notification_for_workpermit_approval": (
        APPROVAL, "approval", "approver", "Approval Pending", ("positional", "keywords")
    ),
    "send_email_notification_for_wp": (
        REMINDER, "verification", "verifier", "Verification Pending", ("positional",)
    ),
    "send_email_notification_for_vendor_and_security_of_wp_cancellation": (
        CANCELLATION, "cancelled", "vendor", "Cancelled", ("positional", "keywords")
    ),
    "send_email_notification_for_vendor_and_security_for_rwp": (
        CONTACTS, "completed", "vendor", "Completed", ("positional",)
    ),
    "send_email_notification_for_vendor_and_security_after_approval": (
        CONTACTS, "in_progress", "vendor", "In progress", ("positional", "keywords")
    ),
    "send_email_notification_for_sla_report": (
        SLA_REPORT, "sla_pending", "approver", "Approval Pending", ("positional",)
    ),
    "send_email_notification_for_sla_vendor": (
        SLA_VENDOR, "sla_approved", "vendor", "", ("positional",)
    ),
}  # fmt: skip
PERMIT_FORMS = [(name, style) for name, mail in PERMIT_MAILS.items() for style in mail[-1]]


@pytest.mark.parametrize(("name", "style"), PERMIT_FORMS, ids=[f"{n}-{s}" for n, s in PERMIT_FORMS])
def test_permit_mail_forms_run_as_the_current_form(worker, mail_sink, name, style) -> None:
    params, state, recipient, subject_end, _ = PERMIT_MAILS[name]
    permit, people = permit_in(state)
    values = upstream_values(params, permit)
    if style == "keywords":
        call: tuple[tuple, dict] = ((), by_name(params, values))
    elif style == "attachment by keyword":  # the mobile sync's producer
        call = (values[:-1], {params[-1]: values[-1]})
    else:
        call = (values, {})
    outcome = runs(worker, getattr(tasks, name), *call[0], **call[1])
    assert outcome["sent"] >= 1, outcome
    (mail,) = mails_to(mail_sink, people[recipient].email)
    assert mail["Subject"].endswith(subject_end)
    assert (permit.permit_type.name if permit.kind == "WP" else "Vendor Performance") in mail[
        "Subject"
    ]


# --- Jobs, reminders, tickets and alerts -------------------------------------------------------


@pytest.fixture
def site_world() -> dict[str, Any]:
    client, site = factories.client_and_site("Asia/Kolkata")
    in_charge = factories.person(site, designation="SITEINCHARGE")
    return {
        "client": client,
        "site": site,
        "in_charge": in_charge,
        "worker": factories.person(site),
    }


def expired_jobneed(world: dict[str, Any], **fields: Any) -> Jobneed:
    return factories.jobneed(world["site"], people=world["worker"], **fields)


def test_auto_close_by_jobneedid(worker, site_world) -> None:
    jobneed = expired_jobneed(site_world)
    assert runs(worker, tasks.autoclose_job, jobneedid=jobneed.pk)["closed"] == 1
    jobneed.refresh_from_db()
    assert jobneed.status == "AUTOCLOSED"


def test_create_ppm_job_by_jobid(worker, site_world) -> None:
    with nothing_enqueued():
        job = factories.job(site_world["site"], site_world["worker"])
    outcome = runs(worker, tasks.create_ppm_job, jobid=job.pk)
    assert outcome["jobs"] == 1 and outcome["instances_created"] > 0
    assert Jobneed.objects.filter(job=job).count() == outcome["instances_created"]


def test_forms_without_arguments_run_as_they_are(worker, site_world, mail_sink) -> None:
    """Upstream's no-argument tasks (beat's) have the current argument list: nothing to log."""
    Reminder.objects.create(
        description="Chiller service",
        site=site_world["site"],
        due_at=timezone.now() - timedelta(minutes=1),
        people=site_world["worker"],
    )
    PdfJob.objects.create(
        title="Old",
        document={},
        requested_by=site_world["worker"],
        expires_at=timezone.now() - timedelta(hours=1),
    )
    for task in (
        tasks.autoclose_job,
        tasks.create_ppm_job,
        tasks.send_reminder_email,
        tasks.task_every_min,
        tasks.ticket_escalation,
        tasks.cache_warming_scheduled,
        tasks.cleanup_expired_pdf_tasks,
        tasks.create_scheduled_reports,
        tasks.send_generated_report_on_mail,
        tasks.move_media_to_cloud_storage,
    ):
        result = task.delay()  # beat's tasks store no result: their run's log line says it ended
        worker.wait_for_log(f"id={result.id} outcome=success")
        assert not legacy_lines(worker, result.id)
    assert mails_to(mail_sink, site_world["worker"].email)[0]["Subject"] == (
        "Reminder for Chiller service"
    )
    assert WorkerHeartbeat.objects.exists()
    assert not PdfJob.objects.exists()


@pytest.mark.parametrize("style", ["id keyword", "ticket and id keywords"])
def test_send_ticket_email_by_id(worker, site_world, mail_sink, style) -> None:
    with nothing_enqueued():
        ticket = Ticket.objects.create(
            description="Leak in the boiler room",
            site=site_world["site"],
            assigned_people=site_world["worker"],
        )
    kwargs = {"id": ticket.pk} if style == "id keyword" else {"ticket": None, "id": ticket.pk}
    outcome = runs(worker, tasks.send_ticket_email, **kwargs)
    assert outcome == {"ticket": ticket.pk, "sent": True, "recipients": 1}
    (mail,) = mails_to(mail_sink, site_world["worker"].email)
    assert f"#{ticket.number}" in mail["Subject"]


def test_send_ticket_email_without_an_id_is_refused(worker) -> None:
    refused(worker, tasks.send_ticket_email, "it does not identify ticket_id")


def test_send_ticket_email_positionally_is_told_by_its_shape(worker, site_world, mail_sink) -> None:
    """Upstream's (ticket=None, id=None) called positionally, (None, 5), also fits the current
    (ticket_id, version): a current call never gives the required ticket_id as None."""
    with nothing_enqueued():
        ticket = Ticket.objects.create(
            description="Leak", site=site_world["site"], assigned_people=site_world["worker"]
        )
    result = tasks.send_ticket_email.apply_async((None, ticket.pk), ignore_result=False)
    assert result.get(timeout=patience(60)) == {"ticket": ticket.pk, "sent": True, "recipients": 1}
    (line,) = legacy_lines(worker, result.id)
    assert " form=ticket,id use=send_ticket_email(ticket_id,version)" in line
    (mail,) = mails_to(mail_sink, site_world["worker"].email)
    assert f"#{ticket.number} " in mail["Subject"]


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [
        ("alert_sendmail", (), {}),  # required jobneed_id / id and event missing
        ("alert_sendmail", (7,), {}),
        ("alert_sendmail", (), {"jobneed_id": 7, "atts": True}),  # forms mixed
        ("send_ticket_email", (1, 2, 3), {}),
        ("send_email_notification_for_sla_vendor", (), {}),
        ("insert_json_records_async", ([],), {}),
        ("generate_pdf_async", (), {"template_name": "x.html"}),
        ("create_report_history", ({}, 1), {}),
    ],
)
def test_a_call_that_fits_no_form_fails_in_the_producer(name, args, kwargs) -> None:
    with pytest.raises(TypeError, match="fits none of them"):
        app.tasks[name].delay(*args, **kwargs)


def test_every_task_refuses_an_argument_no_form_of_it_has_when_sent() -> None:
    project = [task for task in app.tasks.values() if task.__module__.startswith("background_")]
    assert len(project) > 30
    for task in project:
        with pytest.raises(TypeError):
            task.delay(no_such_argument=1)


def test_alert_sendmail_with_atts(worker, site_world, mail_sink) -> None:
    jobneed = expired_jobneed(site_world, status="COMPLETED", has_alerts=True)
    # Every upstream producer: alert_sendmail.delay(jobneed.id, "observation", atts=True)
    outcome = runs(worker, tasks.alert_sendmail, jobneed.pk, "observation", atts=True)
    assert outcome["sent"] is True
    (mail,) = mails_to(mail_sink, site_world["in_charge"].email)
    assert mail["Subject"].startswith("[READINGS ALERT]")
    runs(worker, tasks.alert_sendmail, id=jobneed.pk, event="observation", atts=False)


# --- Integrations --------------------------------------------------------------------------


def test_publish_mqtt_with_upstreams_json_string_payload(worker, worker_mqtt_broker) -> None:
    subscriber = Subscriber(worker_mqtt_broker.url, "intelliwiz/legacy/#")
    try:
        payload = json.dumps({"operation": "UPDATE", "models": "Asset", "payload": {"a": "<b>"}})
        tasks.publish_mqtt.apply_async(
            ("intelliwiz/legacy/asset", payload), ignore_result=False
        ).get(timeout=patience(60))
        ((topic, body),) = subscriber.wait_for(1)
    finally:
        subscriber.close()
    assert (topic, body) == ("intelliwiz/legacy/asset", payload.encode())  # never escaped


def test_publish_mqtt_to_upstreams_change_topic_is_refused(worker) -> None:
    envelope = json.dumps({"operation": "CREATE", "app": "Activity", "models": "Asset"})
    refused(
        worker,
        tasks.publish_mqtt,
        "change capture is published after commit",
        "redmine_to_noc",
        envelope,
    )


@pytest.mark.parametrize(
    ("task", "payload"),
    [
        ("process_graphql_mutation_async", {"mutation": "mutation { x }", "variables": {"a": 1}}),
        ("process_graphql_download_async", {"query": "{ mySite { name } }"}),
    ],
)
def test_graphql_documents_without_a_person_are_refused(worker, task, payload) -> None:
    kind = "mutation" if "mutation" in task else "download"
    refused(
        worker, getattr(tasks, task), f"an unauthenticated {kind} document", json.dumps(payload)
    )


class Partner(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Partner.received.append(("POST", self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')


def test_external_api_call_with_upstreams_arguments(worker) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Partner)
    Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://localhost:{server.server_port}/hook"
    try:
        # AsyncExternalAPIService: apply_async with its own task id and queue, upstream's six
        # parameters by keyword; the same by position.
        sent = tasks.external_api_call_async.apply_async(
            kwargs={"url": url, "method": "POST", "headers": {"X-Trace": "1"},
                    "data": {"n": 1}, "timeout": 10, "user_id": 7},
            task_id=f"api-{time.time_ns()}", queue="high_priority",
        )  # fmt: skip
        assert sent.get(timeout=patience(60))["status"] == 200
        args = (url, "POST", None, {"n": 2}, 10, 7)
        assert tasks.external_api_call_async.delay(*args).get(timeout=patience(60))["status"] == 200
    finally:
        server.shutdown()
    assert [json.loads(body) for _, _, body in Partner.received[-2:]] == [{"n": 1}, {"n": 2}]


@pytest.mark.parametrize("style", ["positional", "keywords"])
def test_bulk_sync_without_a_person_is_refused(worker, style) -> None:
    records = [json.dumps({"uuid": "5f0e6c1e-0000-4000-8000-000000000001", "answer": "7"})]
    call = ((records, "jobneeddetails"), {}) if style == "positional" else (
        (), {"records": records, "tablename": "jobneeddetails"})  # fmt: skip
    refused(worker, tasks.insert_json_records_async, "it names no person", *call[0], **call[1])


@pytest.mark.parametrize("table", sorted(UPSTREAM_TABLES))
def test_bulk_sync_of_upstreams_other_tables_is_refused_with_the_replacement(
    worker, site_world, table
) -> None:
    records = [{"uuid": "5f0e6c1e-0000-4000-8000-000000000003"}]
    letter = refused(worker, tasks.insert_json_records_async, "is not synced in bulk here",
                     records, table, site_world["worker"].pk)  # fmt: skip
    assert f"use {UPSTREAM_TABLES[table]}" in letter.error


@pytest.mark.parametrize(
    "topic", ["graphql/mutation/status", "response/acknowledgement", "site/S1"]
)
def test_publish_mqtt_to_upstreams_topics_is_refused_outside_the_allowed_prefixes(
    worker, topic
) -> None:
    letter = refused(worker, tasks.publish_mqtt, "outside MQTT_ALLOWED_TOPIC_PREFIXES", topic, "{}")
    assert "add the topic's first level to that setting" in letter.error


@pytest.mark.parametrize("data", [{"device": "D1", "expected": 3, "got": 2}, "count mismatch"])
def test_plain_json_mismatch_is_refused(worker, data) -> None:
    refused(worker, tasks.send_mismatch_notification, "a NOC alert needs an object", data)


# --- Media ------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["two positional", "db positional", "keywords"])
def test_face_recognition_forms(worker, site_world, style) -> None:
    event = AttendanceEvent.objects.create(
        person=site_world["worker"], site=site_world["site"], kind="PUNCH_IN", at=timezone.now()
    )
    args = {
        "two positional": ((str(event.uuid), site_world["worker"].pk), {}),
        "db positional": ((str(event.uuid), site_world["worker"].pk, "default"), {}),
        "keywords": ((), {"pel_uuid": str(event.uuid), "peopleid": site_world["worker"].pk}),
    }[style]
    # The current argument list: it runs as it is (no selfie: a recorded outcome, no retry).
    result = tasks.perform_facerecognition_bgt.apply_async(*args, ignore_result=False)
    result.get(timeout=patience(60))
    assert not legacy_lines(worker, result.id)
    event.refresh_from_db()
    assert event.face_outcome == "NO_SELFIE"


def test_face_recognition_on_a_tenant_database_is_refused(worker, site_world) -> None:
    refused(
        worker,
        tasks.perform_facerecognition_bgt,
        "this alias is not one of them",
        "6d2c1f00-0000-4000-8000-000000000002",
        site_world["worker"].pk,
        db="icicibank",
    )


def test_audio_transcript_runs_as_it_is(worker, site_world) -> None:
    jobneed = expired_jobneed(site_world)
    detail = JobneedDetails.objects.create(jobneed=jobneed, seqno=1, question="Say it")
    result = tasks.process_audio_transcript.apply_async((detail.pk,), ignore_result=False)
    assert result.get(timeout=patience(60))["reason"] == "the answer has no audio attachment"
    assert not legacy_lines(worker, result.id)


# --- Reports ----------------------------------------------------------------------------------

UPSTREAM_FORMDATA = {
    "report_name": "TASKSUMMARY",
    "format": "pdf",
    "export_type": "SEND",
    "ctzoffset": 330,
    "cc": [],
    "to_addr": ["ops@facility.test"],
    "email_body": "Monthly",
    "fromdate": "2026-10-01",
    "uptodate": "2026-10-31",
}


def test_report_history_with_upstreams_exception_info(worker, site_world) -> None:
    person = site_world["worker"]
    runs(worker, tasks.create_report_history, UPSTREAM_FORMDATA, person.pk, site_world["site"].pk,
         [False, None, None])  # fmt: skip
    entry = ReportHistory.objects.get()
    assert (entry.person_id, entry.site_id) == (person.pk, site_world["site"].pk)
    # One code per report type: upstream's TASKSUMMARY is recorded as the page's task_summary.
    assert (entry.report_type, entry.file_format) == ("task_summary", "pdf")


def test_upstream_report_requests_are_refused(worker, site_world) -> None:
    person = site_world["worker"]
    refused(worker, tasks.create_save_report_async, "names an upstream report design",
            UPSTREAM_FORMDATA, site_world["client"].pk, person.email, person.pk)  # fmt: skip
    rendered = json.dumps({"report": "JVBERi0xLjQK"})
    refused(worker, tasks.send_report_on_email, "a file rendered by the caller",
            UPSTREAM_FORMDATA, rendered)  # fmt: skip
    refused(worker, tasks.generate_pdf_async, "a template the caller names",
            "a1b2", "reports/pdf/base.html", {"title": "x"}, person.pk)  # fmt: skip
    refused(worker, tasks.generate_pdf_async, "a template the caller names",
            task_id="a1b2", template_name="reports/pdf/base.html", context_data={},
            user_id=person.pk, filename="x", css_files=[], output_format="pdf")  # fmt: skip


def test_report_files_outside_the_reports_area_are_refused(worker, tmp_path) -> None:
    outside = tmp_path / "TEMP_REPORTS_GENERATED"
    outside.mkdir()
    (outside / "TaskSummary.pdf").write_bytes(b"%PDF")
    refused(worker, tasks.cleanup_reports_which_are_12hrs_old, "outside the reports area",
            str(outside), hours_old=0)  # fmt: skip
    refused(worker, tasks.send_generated_report_onfly_email, "outside the reports area",
            str(outside / "TaskSummary.pdf"), settings.DEFAULT_FROM_EMAIL,
            ["ops@facility.test"], [], 330)  # fmt: skip
    assert (outside / "TaskSummary.pdf").exists()


def test_a_report_mailed_from_a_persons_address_goes_from_ours_with_theirs_to_reply_to(
    worker, site_world, mail_sink
) -> None:
    """Upstream sent from the requesting person's own address (forged, to other mail servers)."""
    folder = Path(settings.MEDIA_ROOT) / "reports" / f"sender-{time.time_ns()}"
    folder.mkdir(parents=True)
    report = folder / "TaskSummary.pdf"
    report.write_bytes(b"%PDF")
    person = site_world["worker"]
    try:
        runs(worker, tasks.send_generated_report_onfly_email, str(report), person.email,
             ["ops@facility.test"], [], 330)  # fmt: skip
        (mail,) = mails_to(mail_sink, "ops@facility.test")
        assert settings.DEFAULT_FROM_EMAIL in mail["From"] and mail["Reply-To"] == person.email
        refused(worker, tasks.send_generated_report_onfly_email, "neither an allowed sender",
                str(report), "someone@elsewhere.test", ["ops@facility.test"], [], 330)  # fmt: skip
    finally:
        report.unlink()
        folder.rmdir()


def test_report_files_inside_the_reports_area_run_as_they_are(worker, mail_sink) -> None:
    folder = Path(settings.MEDIA_ROOT) / "reports" / f"legacy-{time.time_ns()}"
    folder.mkdir(parents=True)
    old, fresh = folder / "old.pdf", folder / "TaskSummary.pdf"
    old.write_bytes(b"%PDF old")
    fresh.write_bytes(b"%PDF fresh")
    os.utime(old, (time.time() - 13 * 3600,) * 2)
    upstream_call = (str(fresh), settings.DEFAULT_FROM_EMAIL, ["ops@facility.test"], [], 330)
    for task, args in (
        (tasks.cleanup_reports_which_are_12hrs_old, (str(folder), 12)),
        (tasks.send_generated_report_onfly_email, upstream_call),
    ):
        result = task.apply_async(args, ignore_result=False)
        result.get(timeout=patience(60))
        assert not legacy_lines(worker, result.id)
    assert not old.exists() and fresh.exists()
    (mail,) = mails_to(mail_sink, "ops@facility.test")
    assert [a.get_filename() for a in mail.iter_attachments()] == ["TaskSummary.pdf"]
    fresh.unlink()
    folder.rmdir()
