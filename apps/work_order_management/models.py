from __future__ import annotations

import secrets
import uuid
from datetime import date

from django.db import models
from django.db.models import Q

from apps.activity.models import QuestionRules, QuestionSet
from apps.onboarding.models import BusinessUnit
from apps.peoples.access import visible
from apps.peoples.models import People


class Vendor(models.Model):
    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    email = models.EmailField()
    mobile = models.CharField(max_length=32, blank=True)
    client = models.ForeignKey(BusinessUnit, on_delete=models.PROTECT, related_name="vendors")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PermitKind(models.TextChoices):
    WORK_PERMIT = "WP", "Work permit"
    SLA = "SLA", "Vendor performance (SLA) report"


class PermitType(models.Model):
    """A form: 'Hot Work Permit', 'Vendor performance report'... made of checklist sections."""

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=4, choices=PermitKind.choices)
    client = models.ForeignKey(BusinessUnit, on_delete=models.PROTECT, related_name="+")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PermitSection(models.Model):
    class Role(models.TextChoices):
        FORM = "FORM", "Form"
        CONTACTS = "CONTACTS", "Vendor and security contacts (e-mail answers)"
        RETURN = "RETURN", "Return work permit"

    permit_type = models.ForeignKey(PermitType, on_delete=models.CASCADE, related_name="sections")
    seqno = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    question_set = models.ForeignKey(QuestionSet, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.FORM)
    weight = models.DecimalField(
        max_digits=5, decimal_places=2, default=0, help_text="Share of the SLA score (0 to 1)"
    )

    class Meta:
        ordering = ["permit_type", "seqno"]
        constraints = [
            models.UniqueConstraint(fields=["permit_type", "seqno"], name="section_unique_seqno")
        ]

    def __str__(self) -> str:
        return f"{self.permit_type}: {self.name}"


class PermitStatus(models.TextChoices):
    PENDING_VERIFICATION = "PENDING_VERIFICATION", "Verification pending"
    PENDING_APPROVAL = "PENDING_APPROVAL", "Approval pending"
    REJECTED = "REJECTED", "Rejected"
    INPROGRESS = "INPROGRESS", "In progress"
    APPROVED = "APPROVED", "Approved"
    COMPLETED = "COMPLETED", "Completed"
    CANCELLED = "CANCELLED", "Cancelled"


class WorkPermitQuerySet(models.QuerySet):
    def visible_to(self, person) -> WorkPermitQuerySet:
        """Permits and SLA reports `person` may see (apps.peoples.access): besides their role's
        reach, those they raised and those with a step of theirs."""
        return visible(
            self,
            person,
            own=lambda scope: (
                Q(requested_by=scope.person_id)
                | Q(pk__in=ApprovalStep.objects.filter(person=scope.person_id).values("permit_id"))
            ),
        )


class WorkPermit(models.Model):
    """A work permit or an SLA report: its answers, approval steps and remarks hang off it."""

    class Source(models.TextChoices):
        WEB = "WEB", "Web"
        MOBILE = "MOBILE", "Mobile"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    permit_type = models.ForeignKey(PermitType, on_delete=models.PROTECT, related_name="permits")
    kind = models.CharField(max_length=4, choices=PermitKind.choices, editable=False)
    number = models.PositiveIntegerField(editable=False, help_text="Sequence per site and kind")
    site = models.ForeignKey(BusinessUnit, on_delete=models.PROTECT, related_name="permits")
    client = models.ForeignKey(BusinessUnit, on_delete=models.PROTECT, related_name="+")
    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="permits")
    status = models.CharField(max_length=24, choices=PermitStatus.choices)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.WEB)
    requested_by = models.ForeignKey(People, on_delete=models.PROTECT, related_name="+")
    service_month = models.DateField(null=True, blank=True, help_text="SLA: first of the month")
    score = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)

    objects = WorkPermitQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["site", "kind", "number"], name="permit_unique_number")
        ]
        indexes = [
            # The permit list, newest first: everyone's (operators), a client's, a site's.
            models.Index(fields=["-created_at", "-id"], name="permit_newest"),
            models.Index(fields=["client", "-created_at", "-id"], name="permit_client_newest"),
            models.Index(fields=["site", "-created_at", "-id"], name="permit_site_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.permit_type.name}-{self.number}"

    @property
    def month_label(self) -> str:
        month: date | None = self.service_month
        return month.strftime("%B %Y") if month else ""


class PermitAnswer(QuestionRules):
    permit = models.ForeignKey(WorkPermit, on_delete=models.CASCADE, related_name="answers")
    section = models.ForeignKey(PermitSection, on_delete=models.PROTECT, related_name="+")
    answer = models.TextField(blank=True)

    class Meta:
        ordering = ["permit", "section__seqno", "seqno"]
        constraints = [
            models.UniqueConstraint(
                fields=["permit", "section", "seqno"], name="permit_answer_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.question}: {self.answer}"


def new_link_nonce() -> str:
    return secrets.token_urlsafe(12)


class ApprovalStep(models.Model):
    class Role(models.TextChoices):
        VERIFIER = "VERIFIER", "Verifier"
        APPROVER = "APPROVER", "Approver"

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        APPROVED = "APPROVED", "Approved"
        REJECTED = "REJECTED", "Rejected"

    permit = models.ForeignKey(WorkPermit, on_delete=models.CASCADE, related_name="steps")
    person = models.ForeignKey(People, on_delete=models.PROTECT, related_name="approval_steps")
    role = models.CharField(max_length=8, choices=Role.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    decided_at = models.DateTimeField(null=True, blank=True)
    remark = models.TextField(blank=True)
    # Part of the signed link: a link from before a reset of this step no longer verifies.
    link_nonce = models.CharField(max_length=32, default=new_link_nonce, editable=False)

    class Meta:
        ordering = ["permit", "role", "id"]
        constraints = [
            models.UniqueConstraint(fields=["permit", "person", "role"], name="step_unique")
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} {self.person} on {self.permit}: {self.status}"

    @property
    def asked_now(self) -> bool:
        """Whether the permit waits for this step's role to decide now."""
        return self.permit.status == PHASE_OF_ROLE[ApprovalStep.Role(self.role)]

    @property
    def outcome(self) -> str:
        """What the step stands at, as a person reads it: a pending step of a cancelled or
        rejected permit is no longer waited for."""
        if self.status != ApprovalStep.Status.PENDING:
            return self.get_status_display()
        if self.asked_now:
            return "Pending"
        status = self.permit.status
        if status == PermitStatus.PENDING_VERIFICATION:
            return "After verification"
        if status == PermitStatus.CANCELLED:
            return "Not needed: cancelled"
        if status == PermitStatus.REJECTED:
            return "Not needed: rejected"
        return "Not needed"


# The permit status in which each role's decisions are asked for.
PHASE_OF_ROLE = {
    ApprovalStep.Role.VERIFIER: PermitStatus.PENDING_VERIFICATION,
    ApprovalStep.Role.APPROVER: PermitStatus.PENDING_APPROVAL,
}


class PermitRemark(models.Model):
    permit = models.ForeignKey(WorkPermit, on_delete=models.CASCADE, related_name="remarks")
    person = models.ForeignKey(People, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["permit", "at", "id"]

    def __str__(self) -> str:
        return f"{self.person}: {self.text[:60]}"
