"""E-mail tasks: work-permit and SLA notifications, reminders and NOC mismatch alerts.

Upstream called the permit mails with the permit's id first (`womid`, `wom_id`, `slaid`) and
the details the mail showed after it; the current tasks read those details from the permit, so
an upstream call runs as the current one with the id alone (MIGRATING.md).
"""

from __future__ import annotations

import uuid

from celery import shared_task

from apps.activity.reminders import send_due_reminders
from apps.activity.results import ReminderResult
from apps.core.tasks.base import ExternalServiceTask
from apps.core.tasks.legacy import Arguments, UpstreamForm, accepts_upstream, refuse, rename
from apps.core.tasks.utils import task_retry_policy
from apps.integrations.mqtt import publish
from apps.integrations.noc import notify_noc, record_mismatch, validate_mismatch
from apps.integrations.results import MismatchResult
from apps.work_order_management.models import ApprovalStep, WorkPermit
from apps.work_order_management.notifications import (
    PermitMailResult,
    PermitReminderResult,
    notify_contacts,
    notify_rejection,
    notify_sla_vendor,
    remind_pending,
    request_decisions,
)


@shared_task(name="send_reminder_email", bind=True, **task_retry_policy("bulk_email"))
def send_reminder_email(self) -> ReminderResult:
    """Mail each due, unsent reminder to its people, group and extra addresses, once."""
    return send_due_reminders(task_id=self.request.id or "")


# --- Work permits and SLA reports. Each task takes the permit id; the mails go to each recipient
# once per event, and the PDF is rendered by the worker that sends them.

_EMAIL = task_retry_policy("email")
_VERIFIER_FORM = UpstreamForm(
    "womid, verifiers, sitename, workpermit_status, permit_name, vendor_name, client_id, "
    "workpermit_attachment=None",
    rename(permit_id="womid"),
)
_CONTACTS_FORM = UpstreamForm(
    "wom_id, sitename, workpermit_status, vendor_name, pdf_path, permit_name, permit_no",
    rename(permit_id="wom_id"),
)


def _sla_by_uuid(arguments: Arguments) -> Arguments:
    """Upstream passed the SLA report's uuid as `wom_id`."""
    try:
        report_uuid = uuid.UUID(str(arguments["wom_id"]))
    except ValueError:
        return {}
    found = WorkPermit.objects.filter(uuid=report_uuid).values_list("pk", flat=True).first()
    return {} if found is None else {"permit_id": found}


@shared_task(name="send_email_notification_for_wp_verifier", **_EMAIL)
@accepts_upstream(_VERIFIER_FORM)
def send_email_notification_for_wp_verifier(permit_id: int) -> PermitMailResult:
    """A permit created on the web: each verifier gets their decision link and the PDF."""
    return request_decisions(permit_id, ApprovalStep.Role.VERIFIER)


@shared_task(name="send_email_notification_for_wp_from_mobile_for_verifier", **_EMAIL)
@accepts_upstream(_VERIFIER_FORM)
def send_email_notification_for_wp_from_mobile_for_verifier(permit_id: int) -> PermitMailResult:
    """A permit created through the mobile sync: the same mail as from the web."""
    return request_decisions(permit_id, ApprovalStep.Role.VERIFIER)


@shared_task(name="send_email_notification_for_workpermit_approval", **_EMAIL)
@accepts_upstream(
    UpstreamForm(
        "womid, approvers, approvers_code, sitename, workpermit_status, permit_name, "
        "workpermit_attachment, vendor_name, client_id",
        rename(permit_id="womid"),
    )
)
def send_email_notification_for_workpermit_approval(permit_id: int) -> PermitMailResult:
    """Every verifier approved: each approver gets their decision link and the PDF."""
    return request_decisions(permit_id, ApprovalStep.Role.APPROVER)


@shared_task(name="send_email_notification_for_wp", **_EMAIL)
@accepts_upstream(
    UpstreamForm(
        "womid, qsetid, approvers, client_id, bu_id, sitename, workpermit_status, vendor_name",
        rename(permit_id="womid"),
    )
)
def send_email_notification_for_wp(permit_id: int | None = None) -> PermitReminderResult:
    """Remind pending verifiers or approvers: of one permit, or (beat) of every permit pending
    longer than WP_REMINDER_INTERVAL_HOURS; at most once per person per interval."""
    return remind_pending(permit_id)


@shared_task(name="send_email_notification_for_vendor_and_security_after_approval", **_EMAIL)
@accepts_upstream(_CONTACTS_FORM)
def send_email_notification_for_vendor_and_security_after_approval(
    permit_id: int,
) -> PermitMailResult:
    """Every approver approved (permit in progress): vendor and security contacts, with PDF."""
    return notify_contacts(permit_id, "approved")


@shared_task(name="send_email_notification_for_vendor_and_security_for_rwp", **_EMAIL)
@accepts_upstream(_CONTACTS_FORM)
def send_email_notification_for_vendor_and_security_for_rwp(permit_id: int) -> PermitMailResult:
    """The return work permit was submitted (completed): the same contacts, updated PDF."""
    return notify_contacts(permit_id, "completed")


@shared_task(name="send_email_notification_for_vendor_and_security_of_wp_cancellation", **_EMAIL)
@accepts_upstream(
    UpstreamForm(
        "wom_id, sitename, workpermit_status, vendor_name, permit_name, permit_no, "
        "submit_work_permit=False, submit_work_permit_from_mobile=False",
        rename(permit_id="wom_id"),
    )
)
def send_email_notification_for_vendor_and_security_of_wp_cancellation(
    permit_id: int,
) -> PermitMailResult:
    """The permit was cancelled: the same contacts, with who cancelled and the latest remark."""
    return notify_contacts(permit_id, "cancelled")


@shared_task(name="send_email_notification_for_sla_report", **_EMAIL)
@accepts_upstream(UpstreamForm("slaid, sitename", rename(permit_id="slaid")))
def send_email_notification_for_sla_report(permit_id: int) -> PermitMailResult:
    """An SLA report was submitted: each approver gets the score, the PDF and their link."""
    return request_decisions(permit_id, ApprovalStep.Role.APPROVER)


@shared_task(name="send_email_notification_for_sla_vendor", **_EMAIL)
@accepts_upstream(UpstreamForm("wom_id, report_attachment, sitename", _sla_by_uuid))
def send_email_notification_for_sla_vendor(permit_id: int) -> PermitMailResult:
    """Every approver approved the SLA report: the vendor gets it, approvers in CC."""
    return notify_sla_vendor(permit_id)


@shared_task(name="work_order_management.notify_permit_rejected", **_EMAIL)
def notify_permit_rejected(permit_id: int) -> PermitMailResult:
    """A verifier or approver rejected: the requester is told, with the remark."""
    return notify_rejection(permit_id)


@shared_task(
    name="send_mismatch_notification",
    base=ExternalServiceTask,
    bind=True,
    service_name="mqtt-broker",
    **task_retry_policy("external_api"),
)
@accepts_upstream(
    UpstreamForm(
        "mismatch_data",
        refuse("upstream sent any JSON; a NOC alert needs an object with kind, source and subject"),
        matches=lambda arguments: not _names_a_kind(arguments["mismatch_data"]),
        label="mismatch_data:any-json",
    )
)
def send_mismatch_notification(self, mismatch_data: dict) -> MismatchResult:
    """A data mismatch (sync, devices): one NOC alert per window, published and mailed once."""
    alert, new = record_mismatch(validate_mismatch(mismatch_data))

    def publish_through_circuit(topic: str, payload: object) -> None:
        with self.external_call():
            publish(topic, payload)

    outcome = notify_noc(alert, publish_through_circuit, task_id=self.request.id or "")
    return {"alert": alert.pk, "new": new, "occurrences": alert.occurrences, **outcome}


def _names_a_kind(data: object) -> bool:
    """A current report names its kind; validate_mismatch checks it and every other field."""
    return isinstance(data, dict) and "kind" in data
