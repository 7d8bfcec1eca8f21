"""E-mail tasks: work-permit and SLA notifications, reminders and NOC mismatch alerts."""

from __future__ import annotations

from celery import shared_task

from apps.activity.reminders import send_due_reminders
from apps.core.tasks.base import ExternalServiceTask
from apps.core.tasks.utils import task_retry_policy
from apps.integrations.mqtt import publish
from apps.integrations.noc import notify_noc, record_mismatch, validate_mismatch
from apps.work_order_management.models import ApprovalStep
from apps.work_order_management.notifications import (
    notify_contacts,
    notify_rejection,
    notify_sla_vendor,
    remind_pending,
    request_decisions,
)


@shared_task(name="send_reminder_email", bind=True, **task_retry_policy("bulk_email"))
def send_reminder_email(self) -> dict[str, int]:
    """Mail each due, unsent reminder to its people, group and extra addresses, once."""
    return send_due_reminders(task_id=self.request.id or "").as_dict()


# --- Work permits and SLA reports. Each task takes the permit id; the mails go to each recipient
# once per event, and the PDF is rendered by the worker that sends them.

_EMAIL = task_retry_policy("email")


@shared_task(name="send_email_notification_for_wp_verifier", **_EMAIL)
def send_email_notification_for_wp_verifier(permit_id: int) -> dict[str, object]:
    """A permit created on the web: each verifier gets their decision link and the PDF."""
    return request_decisions(permit_id, ApprovalStep.Role.VERIFIER)


@shared_task(name="send_email_notification_for_wp_from_mobile_for_verifier", **_EMAIL)
def send_email_notification_for_wp_from_mobile_for_verifier(permit_id: int) -> dict[str, object]:
    """A permit created through the mobile sync: the same mail as from the web."""
    return request_decisions(permit_id, ApprovalStep.Role.VERIFIER)


@shared_task(name="send_email_notification_for_workpermit_approval", **_EMAIL)
def send_email_notification_for_workpermit_approval(permit_id: int) -> dict[str, object]:
    """Every verifier approved: each approver gets their decision link and the PDF."""
    return request_decisions(permit_id, ApprovalStep.Role.APPROVER)


@shared_task(name="send_email_notification_for_wp", **_EMAIL)
def send_email_notification_for_wp(permit_id: int | None = None) -> dict[str, object]:
    """Remind pending verifiers or approvers: of one permit, or (beat) of every permit pending
    longer than WP_REMINDER_INTERVAL_HOURS; at most once per person per interval."""
    return remind_pending(permit_id)


@shared_task(name="send_email_notification_for_vendor_and_security_after_approval", **_EMAIL)
def send_email_notification_for_vendor_and_security_after_approval(
    permit_id: int,
) -> dict[str, object]:
    """Every approver approved (permit in progress): vendor and security contacts, with PDF."""
    return notify_contacts(permit_id, "approved")


@shared_task(name="send_email_notification_for_vendor_and_security_for_rwp", **_EMAIL)
def send_email_notification_for_vendor_and_security_for_rwp(permit_id: int) -> dict[str, object]:
    """The return work permit was submitted (completed): the same contacts, updated PDF."""
    return notify_contacts(permit_id, "completed")


@shared_task(name="send_email_notification_for_vendor_and_security_of_wp_cancellation", **_EMAIL)
def send_email_notification_for_vendor_and_security_of_wp_cancellation(
    permit_id: int,
) -> dict[str, object]:
    """The permit was cancelled: the same contacts, with who cancelled and the latest remark."""
    return notify_contacts(permit_id, "cancelled")


@shared_task(name="send_email_notification_for_sla_report", **_EMAIL)
def send_email_notification_for_sla_report(permit_id: int) -> dict[str, object]:
    """An SLA report was submitted: each approver gets the score, the PDF and their link."""
    return request_decisions(permit_id, ApprovalStep.Role.APPROVER)


@shared_task(name="send_email_notification_for_sla_vendor", **_EMAIL)
def send_email_notification_for_sla_vendor(permit_id: int) -> dict[str, object]:
    """Every approver approved the SLA report: the vendor gets it, approvers in CC."""
    return notify_sla_vendor(permit_id)


@shared_task(name="work_order_management.notify_permit_rejected", **_EMAIL)
def notify_permit_rejected(permit_id: int) -> dict[str, object]:
    """A verifier or approver rejected: the requester is told, with the remark."""
    return notify_rejection(permit_id)


@shared_task(
    name="send_mismatch_notification",
    base=ExternalServiceTask,
    bind=True,
    service_name="mqtt-broker",
    **task_retry_policy("external_api"),
)
def send_mismatch_notification(self, mismatch_data: dict) -> dict[str, object]:
    """A data mismatch (sync, devices): one NOC alert per window, published and mailed once."""
    alert, new = record_mismatch(validate_mismatch(mismatch_data))

    def publish_through_circuit(topic: str, payload: object) -> None:
        with self.external_call():
            publish(topic, payload)

    outcome = notify_noc(alert, publish_through_circuit, task_id=self.request.id or "")
    return {"alert": alert.pk, "new": new, "occurrences": alert.occurrences, **outcome}
