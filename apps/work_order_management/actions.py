"""The permit and SLA flow: each step changes state in one transaction and enqueues its mail
after commit. Decisions lock the permit row, so concurrent approvals cannot both complete a
phase (and its mail is keyed per permit and event anyway)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from django.db import transaction
from django.utils import timezone

from apps.core.enqueue import enqueue_on_commit
from apps.onboarding.models import BusinessUnit
from apps.peoples.models import People
from apps.work_order_management import services
from apps.work_order_management.models import (
    ApprovalStep,
    PermitAnswer,
    PermitKind,
    PermitRemark,
    PermitSection,
    PermitStatus,
    PermitType,
    Vendor,
    WorkPermit,
)
from apps.work_order_management.services import Answers, PermitError

Role = ApprovalStep.Role


def create_permit(
    *,
    permit_type: PermitType,
    site: BusinessUnit,
    vendor: Vendor,
    requester: People,
    answers: Answers,
    verifiers: Iterable[People] = (),
    approvers: Iterable[People],
    source: str = WorkPermit.Source.WEB,
    service_month: date | None = None,
) -> WorkPermit:
    verifiers, approvers = list(verifiers), list(approvers)
    if not approvers:
        raise PermitError("at least one approver is needed")
    if permit_type.kind == PermitKind.SLA and verifiers:
        raise PermitError("an SLA report has approvers only")
    if site.client_id != permit_type.client_id or vendor.client_id != permit_type.client_id:
        raise PermitError("site, vendor and permit type must belong to the same client")
    with transaction.atomic():
        services.lock_site(site)
        permit = WorkPermit(
            permit_type=permit_type,
            kind=permit_type.kind,
            number=services.next_number(site, permit_type.kind),
            site=site,
            client_id=site.client_id,
            vendor=vendor,
            requested_by=requester,
            source=source,
            status=PermitStatus.PENDING_VERIFICATION
            if verifiers
            else PermitStatus.PENDING_APPROVAL,
        )
        sections = services.sections_of(
            permit_type, PermitSection.Role.FORM, PermitSection.Role.CONTACTS
        )
        rows = services.build_answers(permit, sections, answers)
        if permit_type.kind == PermitKind.SLA:
            permit.service_month = service_month or services.previous_month(timezone.localdate())
        permit.save()
        PermitAnswer.objects.bulk_create(rows)
        ApprovalStep.objects.bulk_create(
            [ApprovalStep(permit=permit, person=p, role=Role.VERIFIER) for p in verifiers]
            + [ApprovalStep(permit=permit, person=p, role=Role.APPROVER) for p in approvers]
        )
        if permit_type.kind == PermitKind.SLA:
            permit.score = services.sla_score(permit)
            permit.save(update_fields=["score"])
            enqueue_on_commit("send_email_notification_for_sla_report", permit.pk)
        elif verifiers and source == WorkPermit.Source.MOBILE:
            enqueue_on_commit("send_email_notification_for_wp_from_mobile_for_verifier", permit.pk)
        elif verifiers:
            enqueue_on_commit("send_email_notification_for_wp_verifier", permit.pk)
        else:
            enqueue_on_commit("send_email_notification_for_workpermit_approval", permit.pk)
    return permit


def decide(step_id: int, actor: People, *, approve: bool, remark: str = "") -> ApprovalStep:
    """Record `actor`'s decision on their step and move the permit along."""
    with transaction.atomic():
        step = ApprovalStep.objects.select_related("permit").get(pk=step_id)
        permit = WorkPermit.objects.select_for_update().get(pk=step.permit_id)
        step = ApprovalStep.objects.select_for_update().get(pk=step_id)
        if step.person_id != actor.pk:
            raise PermitError("this step belongs to someone else")
        if step.status != ApprovalStep.Status.PENDING:
            raise PermitError(f"this step was decided already ({step.status.lower()})")
        phase = (
            PermitStatus.PENDING_VERIFICATION
            if step.role == Role.VERIFIER
            else PermitStatus.PENDING_APPROVAL
        )
        if permit.status != phase:
            raise PermitError(f"the permit is {permit.get_status_display().lower()}")
        if not approve and not remark.strip():
            raise PermitError("a rejection needs a remark: it tells the requester why")
        step.status = ApprovalStep.Status.APPROVED if approve else ApprovalStep.Status.REJECTED
        step.decided_at = timezone.now()
        step.remark = remark.strip()
        step.save(update_fields=["status", "decided_at", "remark"])
        if not approve:
            _move(permit, PermitStatus.REJECTED, "work_order_management.notify_permit_rejected")
        elif (
            not permit.steps.filter(role=step.role)
            .exclude(status=ApprovalStep.Status.APPROVED)
            .exists()
        ):
            if step.role == Role.VERIFIER:
                _move(
                    permit,
                    PermitStatus.PENDING_APPROVAL,
                    "send_email_notification_for_workpermit_approval",
                )
            elif permit.kind == PermitKind.SLA:
                _move(
                    permit,
                    PermitStatus.APPROVED,
                    "send_email_notification_for_sla_vendor",
                )
            else:
                _move(
                    permit,
                    PermitStatus.INPROGRESS,
                    "send_email_notification_for_vendor_and_security_after_approval",
                )
    return step


def cancel(permit_id: int, actor: People, remark: str) -> WorkPermit:
    if not remark.strip():
        raise PermitError("a cancellation needs a remark")
    with transaction.atomic():
        permit = WorkPermit.objects.select_for_update().get(pk=permit_id)
        if permit.kind != PermitKind.WORK_PERMIT or permit.status in (
            PermitStatus.CANCELLED,
            PermitStatus.COMPLETED,
            PermitStatus.REJECTED,
        ):
            raise PermitError(
                f"a permit that is {permit.get_status_display().lower()} cannot be cancelled"
            )
        PermitRemark.objects.create(permit=permit, person=actor, text=remark.strip())
        _move(
            permit,
            PermitStatus.CANCELLED,
            "send_email_notification_for_vendor_and_security_of_wp_cancellation",
        )
    return permit


def submit_return(permit_id: int, answers: Answers) -> WorkPermit:
    """The return work permit: the work is done; its section is answered and the permit closes."""
    with transaction.atomic():
        permit = (
            WorkPermit.objects.select_for_update().select_related("permit_type").get(pk=permit_id)
        )
        if permit.status != PermitStatus.INPROGRESS:
            state = permit.get_status_display().lower()
            raise PermitError(f"only a permit in progress can be returned; this one is {state}")
        sections = services.sections_of(permit.permit_type, PermitSection.Role.RETURN)
        if not sections:
            raise PermitError("this permit type has no return section")
        PermitAnswer.objects.bulk_create(services.build_answers(permit, sections, answers))
        _move(
            permit,
            PermitStatus.COMPLETED,
            "send_email_notification_for_vendor_and_security_for_rwp",
        )
    return permit


def _move(permit: WorkPermit, status: str, notify: str) -> None:
    permit.status = status
    permit.save(update_fields=["status", "modified_at"])
    enqueue_on_commit(notify, permit.pk)
