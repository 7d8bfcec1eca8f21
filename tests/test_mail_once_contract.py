"""The mail contract: every task that sends mail, delivered twice with the same task id (a
redelivery after its side effect, as when a worker dies before the acknowledgement), mails each
recipient once.

Each case builds the world its task mails about, without its producers' own tasks, and names
who must get the mail. The task runs twice through a real worker and SMTP server; after the
second run has ended, each recipient holds exactly one mail.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from apps.activity.models import Reminder
from apps.reports.models import GeneratedReport, ScheduledReport
from apps.reports.services import reports_area_path, run_schedules
from apps.work_order_management import actions
from apps.work_order_management.models import ApprovalStep
from apps.y_helpdesk.models import EscalationMatrix, Ticket
from intelliwiz_config.celery import TASK_QUEUES, app
from tests import factories
from tests.conftest import ManagedProcess, SmtpSink
from tests.support.waiting import patience
from tests.test_call_forms import PERMIT_MAILS, nothing_enqueued, permit_in

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# A case: (args, kwargs) of the current call form, and the addresses that must get one mail.
Case = tuple[tuple[Any, ...], dict[str, Any], set[str]]


def _site_with_in_charge(tz: str = "Asia/Kolkata") -> tuple[Any, Any]:
    _, site = factories.client_and_site(tz)
    return site, factories.person(site, designation="SITEINCHARGE")


def permit_case(name: str) -> Callable[[], Case]:
    _, state, recipient, _, _ = PERMIT_MAILS[name]

    def build() -> Case:
        permit, people = permit_in(state)
        return (permit.pk,), {}, {people[recipient].email}

    return build


def rejected_permit() -> Case:
    permit, people = permit_in("verification")
    with nothing_enqueued():
        step = permit.steps.get(role=ApprovalStep.Role.VERIFIER)
        actions.decide(step.pk, people["verifier"], approve=False, remark="No fire watch")
    return (permit.pk,), {}, {people["requester"].email}


def ticket_mail() -> Case:
    site, _ = _site_with_in_charge()
    assignee = factories.person(site)
    with nothing_enqueued():
        ticket = Ticket.objects.create(description="Leak", site=site, assigned_people=assignee)
    return (ticket.pk, ticket.version), {}, {assignee.email}


def readings_alert() -> Case:
    site, in_charge = _site_with_in_charge()
    jobneed = factories.jobneed(site, status="COMPLETED", has_alerts=True)
    return (jobneed.pk, "observation"), {}, {in_charge.email}


def autoclose() -> Case:
    site, in_charge = _site_with_in_charge()
    factories.jobneed(site, ticket_category=factories.lookup("TICKETCATEGORY", "AUTOCLOSENOTIFY"))
    return (), {}, {in_charge.email}


def escalation() -> Case:
    site, _ = _site_with_in_charge()
    category = factories.lookup("TICKETCATEGORY", "PLUMBING")
    EscalationMatrix.objects.create(
        client=site.client,
        category=category,
        level=1,
        frequency="MINUTE",
        frequency_value=5,
        notify_email="noc-desk@facility.test",
    )
    with nothing_enqueued():
        ticket = Ticket.objects.create(description="Blocked drain", site=site, category=category)
    Ticket.objects.filter(pk=ticket.pk).update(created_at=timezone.now() - timedelta(minutes=6))
    return (), {}, {"noc-desk@facility.test"}


def reminder() -> Case:
    site, _ = _site_with_in_charge()
    person = factories.person(site)
    Reminder.objects.create(
        description="Chiller service",
        site=site,
        due_at=timezone.now() - timedelta(minutes=1),
        people=person,
    )
    return (), {}, {person.email}


def mismatch() -> Case:
    data = {"kind": "SYNC_COUNT_MISMATCH", "source": "device:D1", "subject": "batch:7"}
    return (data,), {}, {"noc@facility.test"}  # the worker's NOC_ALERT_EMAILS


def requested_report() -> Case:
    site, person = _site_with_in_charge()
    report = GeneratedReport.objects.create(
        report_type="tickets",
        site=site,
        date_from=date(2026, 6, 1),
        date_to=date(2026, 6, 30),
        file_format="xlsx",
        requested_by=person,
    )
    formdata = {
        "report_uuid": str(report.uuid),
        "report_type": "tickets",
        "date_from": "2026-06-01",
        "date_to": "2026-06-30",
        "format": "xlsx",
    }
    return (formdata, site.client_id, person.email, person.pk), {}, {person.email}


def report_data() -> Case:
    report = {"title": "Open tickets", "columns": ["Site", "Open"], "rows": [["S1", 3]]}
    return ({"emails": "owner@facility.test", "format": "pdf"}, report), {}, {"owner@facility.test"}


def _generated_report() -> GeneratedReport:
    site, _ = _site_with_in_charge()
    ScheduledReport.objects.create(
        name="Daily tickets",
        report_type="tickets",
        site=site,
        cron="* * * * *",
        working_days="0,1,2,3,4,5,6",
        file_format="xlsx",
        to_emails="boss@facility.test",
    )
    run_schedules()
    return GeneratedReport.objects.get(status="DONE")


def scheduled_report() -> Case:
    _generated_report()
    return (), {}, {"boss@facility.test"}


def report_file() -> Case:
    path = reports_area_path(_generated_report())
    return (
        (path, settings.DEFAULT_FROM_EMAIL, ["reader@facility.test"], []),
        {},
        {"reader@facility.test"},
    )


CASES: dict[str, Callable[[], Case]] = {
    **{name: permit_case(name) for name in PERMIT_MAILS},
    "work_order_management.notify_permit_rejected": rejected_permit,
    "send_ticket_email": ticket_mail,
    "alert_sendmail": readings_alert,
    "auto_close_jobs": autoclose,
    "ticket_escalation": escalation,
    "send_reminder_email": reminder,
    "send_mismatch_notification": mismatch,
    "create_save_report_async": requested_report,
    "send_report_on_email": report_data,
    "send_generated_report_on_mail": scheduled_report,
    "send_generated_report_onfly_email": report_file,
}


def test_every_task_on_the_mail_queue_is_a_case() -> None:
    assert {name for name, queue in TASK_QUEUES.items() if queue == "email"} - set(CASES) == set()


def runs_ended(worker: ManagedProcess, task_id: str) -> int:
    return worker.log().count(f" id={task_id} outcome=success")


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_redelivered_mail_task_mails_each_recipient_once(
    worker: ManagedProcess, mail_sink: SmtpSink, name: str
) -> None:
    args, kwargs, recipients = CASES[name]()
    task = app.tasks[name]
    task_id = f"contract-{uuid.uuid4()}"
    for delivery in (1, 2):
        task.apply_async(args, kwargs, task_id=task_id)
        deadline = time.monotonic() + patience(60)
        while runs_ended(worker, task_id) < delivery:
            assert time.monotonic() < deadline, f"{name}: run {delivery} did not succeed"
            time.sleep(0.1)
    received = Counter(address for rcpt, _ in mail_sink.messages for address in rcpt)
    assert {address: received[address] for address in recipients} == dict.fromkeys(recipients, 1)
