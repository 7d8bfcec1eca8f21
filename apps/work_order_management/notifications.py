"""The mails of the permit and SLA flow. Each goes to each recipient once per event (the
idempotency key names permit, event and recipient); results carry counts, never addresses."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Required, TypedDict

from django.conf import settings
from django.utils import timezone

from apps.core.mail import Mail, clean_recipients, deliver
from apps.work_order_management.links import decision_url
from apps.work_order_management.models import (
    PHASE_OF_ROLE,
    ApprovalStep,
    PermitKind,
    PermitSection,
    PermitStatus,
    WorkPermit,
)
from apps.work_order_management.pdf import (
    approval_conditions,
    ordered_steps,
    pdf_filename,
    render_permit_pdf,
)

CONTACT_EVENTS = {
    "approved": (PermitStatus.INPROGRESS, True),
    "completed": (PermitStatus.COMPLETED, True),
    "cancelled": (PermitStatus.CANCELLED, False),
}


class PermitMailResult(TypedDict, total=False):
    """The counts once mails went to delivery; `reason` when the permit is past this event."""

    permit: Required[int]
    sent: Required[int]
    already_sent: int
    invalid_addresses: int
    reason: str


class PermitReminderResult(TypedDict):
    permits: int
    sent: int


def load_permit(permit_id: int) -> WorkPermit:
    return WorkPermit.objects.select_related("permit_type", "site", "vendor", "requested_by").get(
        pk=permit_id
    )


def subject_for(permit: WorkPermit, state: str) -> str:
    if permit.kind == PermitKind.SLA:
        return (
            f"{permit.site.name} Vendor Performance {permit.vendor.name} of "
            f"{permit.month_label}: {state}"
        )
    return f"{permit.permit_type.name}-{permit.number}-{permit.site.name}-{state}"


def _pdf(permit: WorkPermit) -> tuple[str, bytes, str]:
    return (pdf_filename(permit), render_permit_pdf(permit), "application/pdf")


def _result(permit: WorkPermit, mails: list[Mail], invalid: int = 0) -> PermitMailResult:
    delivery = deliver(mails)
    delivery.raise_error()
    return {
        "permit": permit.pk,
        "sent": len(delivery.sent),
        "already_sent": len([m for m in mails if m.key in delivery.settled]) - len(delivery.sent),
        "invalid_addresses": invalid,
    }


def request_decisions(
    permit_id: int, role: ApprovalStep.Role, *, reminder_slot: int | None = None
) -> PermitMailResult:
    """Mail each pending verifier or approver their own decision link (and the PDF)."""
    permit = load_permit(permit_id)
    if permit.status != PHASE_OF_ROLE[role]:
        return {"permit": permit.pk, "sent": 0, "reason": f"permit is {permit.status}"}
    steps = list(
        permit.steps.filter(role=role, status=ApprovalStep.Status.PENDING).select_related("person")
    )
    state = "Verification Pending" if role == ApprovalStep.Role.VERIFIER else "Approval Pending"
    attachment = _pdf(permit)
    event = (
        f"{role.lower()}-requested"
        if reminder_slot is None
        else f"{role.lower()}-reminder-{reminder_slot}"
    )
    mails = [
        Mail(
            key=f"permit:{permit.pk}:{event}:{step.person_id}",
            subject=subject_for(permit, state),
            to=clean_recipients([step.person.email]),
            template="work_order_management/mail/decision_request",
            context={
                "permit": permit,
                "step": step,
                "link": decision_url(step),
                "link_hours": settings.APPROVAL_LINK_MAX_AGE_HOURS,
                "reminder": reminder_slot is not None,
                "attached": True,
                "time_zone": permit.site.time_zone,
            },
            attachments=[attachment],
        )
        for step in steps
    ]
    return _result(permit, mails, invalid=sum(1 for m in mails if not m.to))


def contact_addresses(permit: WorkPermit) -> tuple[list[str], int]:
    """The vendor and the permit's security contacts; and how many given addresses were bad."""
    given = [permit.vendor.email] + [
        part.strip()
        for answer in permit.answers.filter(section__role=PermitSection.Role.CONTACTS)
        for part in answer.answer.split(",")
        if part.strip()
    ]
    cleaned = clean_recipients(given)
    distinct_given = {address.lower() for address in given}
    return cleaned, len(distinct_given) - len(cleaned)


def notify_contacts(permit_id: int, event: str) -> PermitMailResult:
    """Vendor and security contacts: the permit is approved (with the approvers' conditions),
    completed (RWP) or cancelled. An approval is also told to the requester; a cancellation to
    the verifiers or approvers who were still asked to decide (their links stop working)."""
    status, with_pdf = CONTACT_EVENTS[event]
    permit = load_permit(permit_id)
    if permit.status != status:
        return {"permit": permit.pk, "sent": 0, "reason": f"permit is {permit.status}"}
    recipients, invalid = contact_addresses(permit)
    steps = ordered_steps(permit)
    context: dict[str, object] = {
        "permit": permit,
        "event": event,
        "attached": with_pdf,
        "conditions": approval_conditions(steps),
        "time_zone": permit.site.time_zone,
    }
    if event == "cancelled":
        latest = permit.remarks.select_related("person").order_by("-at", "-id").first()
        context |= {
            "ended_by": latest.person.name if latest else "",
            "remark": latest.text if latest else "",
        }
    attachments = [_pdf(permit)] if with_pdf else []
    subject = subject_for(permit, permit.get_status_display())
    mails = [
        Mail(
            key=f"permit:{permit.pk}:{event}:{address.lower()}",
            subject=subject,
            to=[address],
            template="work_order_management/mail/contacts",
            context=context,
            attachments=attachments,
        )
        for address in recipients
    ]
    if event == "approved":
        mails.append(_requester_approval_mail(permit, steps, context, subject, attachments))
    elif event == "cancelled":
        mails += _withdrawn_requests(permit, steps, context, subject)
    return _result(permit, [m for m in mails if m.to], invalid)


def _requester_approval_mail(
    permit: WorkPermit,
    steps: list[ApprovalStep],
    context: dict[str, object],
    subject: str,
    attachments: list,
) -> Mail:
    return Mail(
        key=f"permit:{permit.pk}:approved:requester:{permit.requested_by_id}",
        subject=subject,
        to=clean_recipients([permit.requested_by.email]),
        template="work_order_management/mail/approved_requester",
        context=context
        | {"approvers": [s.person.name for s in steps if s.role == ApprovalStep.Role.APPROVER]},
        attachments=attachments,
    )


def _withdrawn_requests(
    permit: WorkPermit,
    steps: list[ApprovalStep],
    context: dict[str, object],
    subject: str,
    event: str = "cancelled",
) -> list[Mail]:
    """The people whose decision was still asked for when the permit was cancelled or
    rejected: the pending verifiers, or (once every verifier had approved) the pending
    approvers. Their links no longer work; the mail says who ended it and why."""
    pending = [s for s in steps if s.status == ApprovalStep.Status.PENDING]
    asked_role = (
        ApprovalStep.Role.VERIFIER
        if any(s.role == ApprovalStep.Role.VERIFIER for s in pending)
        else ApprovalStep.Role.APPROVER
    )
    return [
        Mail(
            key=f"permit:{permit.pk}:{event}:step:{step.pk}",
            subject=subject,
            to=clean_recipients([step.person.email]),
            template="work_order_management/mail/withdrawn",
            context=context | {"step": step, "event": event},
        )
        for step in pending
        if step.role == asked_role
    ]


def notify_rejection(permit_id: int) -> PermitMailResult:
    """The requester learns who rejected the permit and why; the others still asked to decide
    alongside the rejecter learn that their decision is no longer needed, and why."""
    permit = load_permit(permit_id)
    steps = ordered_steps(permit)
    step = next((s for s in steps if s.status == ApprovalStep.Status.REJECTED), None)
    if permit.status != PermitStatus.REJECTED or step is None:
        return {"permit": permit.pk, "sent": 0, "reason": f"permit is {permit.status}"}
    subject = subject_for(permit, "Rejected")
    mail = Mail(
        key=f"permit:{permit.pk}:rejected:{permit.requested_by_id}",
        subject=subject,
        to=clean_recipients([permit.requested_by.email]),
        template="work_order_management/mail/rejected",
        context={"permit": permit, "step": step, "time_zone": permit.site.time_zone},
    )
    told = _withdrawn_requests(
        permit,
        [s for s in steps if s.role == step.role],
        {
            "permit": permit,
            "ended_by": f"{step.person.name} ({step.get_role_display().lower()})",
            "remark": step.remark,
            "time_zone": permit.site.time_zone,
        },
        subject,
        event="rejected",
    )
    return _result(permit, [mail] + [m for m in told if m.to], invalid=0 if mail.to else 1)


def notify_sla_vendor(permit_id: int) -> PermitMailResult:
    """The approved SLA report to the vendor, with its approvers in CC."""
    permit = load_permit(permit_id)
    if permit.kind != PermitKind.SLA or permit.status != PermitStatus.APPROVED:
        return {"permit": permit.pk, "sent": 0, "reason": f"report is {permit.status}"}
    approvers = [
        s.person
        for s in permit.steps.filter(role=ApprovalStep.Role.APPROVER).select_related("person")
    ]
    mail = Mail(
        key=f"sla:{permit.pk}:approved:vendor",
        subject=(
            f"{permit.site.name}: Vendor Performance of {permit.vendor.name} "
            f"of {permit.month_label}"
        ),
        to=clean_recipients([permit.vendor.email]),
        cc=clean_recipients([p.email for p in approvers]),
        template="work_order_management/mail/sla_vendor",
        context={
            "permit": permit,
            "approvers": [p.name for p in approvers],
            "time_zone": permit.site.time_zone,
        },
        attachments=[_pdf(permit)],
    )
    return _result(permit, [mail], invalid=0 if mail.to else 1)


def remind_pending(
    permit_id: int | None = None, now: datetime | None = None
) -> PermitReminderResult:
    """Re-send pending requests: for one permit (an operator's action), or for every permit
    pending longer than the reminder interval; at most once per person per interval."""
    now = now or timezone.now()
    interval = settings.WP_REMINDER_INTERVAL_HOURS * 3600
    slot = int(now.timestamp() // interval)
    permits = WorkPermit.objects.filter(status__in=PHASE_OF_ROLE.values())
    if permit_id is not None:
        permits = permits.filter(pk=permit_id)
    else:
        permits = permits.filter(modified_at__lte=now - timedelta(seconds=interval))
    role_of = {status: role for role, status in PHASE_OF_ROLE.items()}
    pending = list(permits.values_list("pk", "status"))
    sent = sum(
        request_decisions(pk, role_of[PermitStatus(status)], reminder_slot=slot)["sent"]
        for pk, status in pending
    )
    return {"permits": len(pending), "sent": sent}
