from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from croniter import croniter
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from apps.onboarding.models import BusinessUnit, TypeAssist
from apps.peoples.access import assigned_to, visible
from apps.peoples.models import People, PeopleGroup


def validate_cron(value: str) -> None:
    if not croniter.is_valid(value):
        raise ValidationError(f"{value!r} is not a valid cron expression (e.g. '0 9 * * 1-5')")


class Priority(models.TextChoices):
    LOW = "LOW", "Low"
    MEDIUM = "MEDIUM", "Medium"
    HIGH = "HIGH", "High"


class Asset(models.Model):
    class Status(models.TextChoices):
        WORKING = "WORKING", "Working"
        MAINTENANCE = "MAINTENANCE", "Under maintenance"
        STANDBY = "STANDBY", "Standby"
        SCRAPPED = "SCRAPPED", "Scrapped"

    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    site = models.ForeignKey(BusinessUnit, on_delete=models.PROTECT, related_name="assets")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WORKING)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class QuestionSet(models.Model):
    """A checklist: the questions a job's instances are answered against."""

    name = models.CharField(max_length=200)
    client = models.ForeignKey(BusinessUnit, on_delete=models.CASCADE, related_name="+")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AnswerType(models.TextChoices):
    NUMERIC = "NUMERIC", "Numeric"
    RATING = "RATING", "Rating"
    CHECKBOX = "CHECKBOX", "Checkbox"
    DROPDOWN = "DROPDOWN", "Dropdown"
    MULTISELECT = "MULTISELECT", "Multi-select"
    SINGLELINE = "SINGLELINE", "Single line"
    MULTILINE = "MULTILINE", "Multi line"
    DATE = "DATE", "Date"
    TIME = "TIME", "Time"
    EMAILID = "EMAILID", "E-mail address"
    SIGNATURE = "SIGNATURE", "Signature"
    AUDIO = "AUDIO", "Audio"


class QuestionRules(models.Model):
    """Answer type, bounds and alert rule, shared by a question and its answered copies."""

    seqno = models.PositiveIntegerField()
    question = models.CharField(max_length=300)
    answer_type = models.CharField(max_length=16, choices=AnswerType.choices)
    options = models.CharField(max_length=500, blank=True, help_text="Comma-separated choices")
    min_value = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    max_value = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    alert_on = models.CharField(
        max_length=500, blank=True, help_text="Comma-separated choices that raise an alert"
    )
    is_mandatory = models.BooleanField(default=False)

    # The fields copied from a question into each answered copy of it.
    RULE_FIELDS = (
        "seqno",
        "question",
        "answer_type",
        "options",
        "min_value",
        "max_value",
        "alert_on",
        "is_mandatory",
    )

    class Meta:
        abstract = True

    def raises_alert(self, answer: str) -> bool:
        """True when `answer` is out of range (numbers) or one of the alerting choices."""
        answer = (answer or "").strip()
        if not answer:
            return False
        if self.answer_type in (AnswerType.NUMERIC, AnswerType.RATING):
            try:
                value = Decimal(answer)
            except InvalidOperation:
                return False
            return (self.min_value is not None and value < self.min_value) or (
                self.max_value is not None and value > self.max_value
            )
        alerting = {item.strip().lower() for item in self.alert_on.split(",") if item.strip()}
        chosen = {item.strip().lower() for item in answer.split(",")}
        return bool(alerting & chosen)


class Question(QuestionRules):
    question_set = models.ForeignKey(
        QuestionSet, on_delete=models.CASCADE, related_name="questions"
    )

    class Meta:
        ordering = ["question_set", "seqno"]
        constraints = [
            models.UniqueConstraint(fields=["question_set", "seqno"], name="question_unique_seqno")
        ]

    def __str__(self) -> str:
        return f"{self.seqno}. {self.question}"


class Identifier(models.TextChoices):
    TASK = "TASK", "Task"
    PPM = "PPM", "Preventive maintenance"
    INTERNALTOUR = "INTERNALTOUR", "Internal tour"
    EXTERNALTOUR = "EXTERNALTOUR", "External tour"
    SITEREPORT = "SITEREPORT", "Site report"
    OTHER = "OTHER", "Other"


TOURS = (Identifier.INTERNALTOUR, Identifier.EXTERNALTOUR)


class JobQuerySet(models.QuerySet):
    def visible_to(self, person) -> JobQuerySet:
        """Jobs `person` may see (apps.peoples.access): a technician's are those assigned to
        them or their group."""
        return visible(self, person, own=assigned_to)


class Job(models.Model):
    """A schedule template: its cron expands into Jobneeds inside the validity window."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    identifier = models.CharField(max_length=16, choices=Identifier.choices)
    cron = models.CharField(max_length=120, validators=[validate_cron], blank=True)
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField()
    plan_duration_minutes = models.PositiveIntegerField(default=60)
    grace_minutes = models.PositiveIntegerField(default=0)
    expiry_minutes = models.PositiveIntegerField(default=0)
    asset = models.ForeignKey(Asset, null=True, blank=True, on_delete=models.PROTECT)
    question_set = models.ForeignKey(QuestionSet, null=True, blank=True, on_delete=models.PROTECT)
    people = models.ForeignKey(
        People, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    group = models.ForeignKey(
        PeopleGroup, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    site = models.ForeignKey(
        BusinessUnit,
        on_delete=models.PROTECT,
        related_name="jobs",
        limit_choices_to={"kind": BusinessUnit.Kind.SITE},
    )
    client = models.ForeignKey(
        BusinessUnit, on_delete=models.PROTECT, related_name="+", editable=False
    )
    ticket_category = models.ForeignKey(
        TypeAssist,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"category": TypeAssist.Category.TICKETCATEGORY},
    )
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.MEDIUM)
    # A tour's checkpoints are child jobs, visited in seqno order.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="checkpoints"
    )
    seqno = models.PositiveIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    last_generated_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Who planned the job and who last changed it: its reminders go to them too.
    created_by = models.ForeignKey(
        People, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    modified_by = models.ForeignKey(
        People, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["identifier", "enabled"]),
            # The job list by name: a client's jobs (checkpoints are listed on their tour).
            models.Index(
                fields=["client", "name", "id"],
                condition=Q(parent__isnull=True),
                name="job_client_name",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.client_id = self.site.client_id or self.site_id
        super().save(*args, **kwargs)

    def clean(self) -> None:
        errors = {}
        if self.parent_id is None and not self.cron:
            errors["cron"] = "A scheduled job needs a cron expression."
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            errors["valid_to"] = "The validity window must end after it starts."
        if self.parent_id is None and not (self.people_id or self.group_id):
            errors["people"] = "Assign the job to a person or a group."
        if errors:
            raise ValidationError(errors)

    @property
    def expiry_offset(self) -> timedelta:
        """From plan time to expiry: the planned duration, the grace and the expiry minutes."""
        return timedelta(
            minutes=self.plan_duration_minutes + self.grace_minutes + self.expiry_minutes
        )


class JobneedStatus(models.TextChoices):
    ASSIGNED = "ASSIGNED", "Assigned"
    INPROGRESS = "INPROGRESS", "In progress"
    WORKING = "WORKING", "Working"
    STANDBY = "STANDBY", "Standby"
    MAINTENANCE = "MAINTENANCE", "Maintenance"
    COMPLETED = "COMPLETED", "Completed"
    PARTIALLYCOMPLETED = "PARTIALLYCOMPLETED", "Partially completed"
    AUTOCLOSED = "AUTOCLOSED", "Auto-closed"


class JobneedQuerySet(models.QuerySet):
    def visible_to(self, person) -> JobneedQuerySet:
        """Planned work `person` may see (apps.peoples.access), like jobs."""
        return visible(self, person, own=assigned_to)


class Jobneed(models.Model):
    """One planned instance of a job; a tour's checkpoints are child Jobneeds."""

    class JobType(models.TextChoices):
        SCHEDULE = "SCHEDULE", "Scheduled"
        ADHOC = "ADHOC", "Ad hoc"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.CASCADE, related_name="jobneeds"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="checkpoints"
    )
    identifier = models.CharField(max_length=16, choices=Identifier.choices)
    description = models.CharField(max_length=300)
    plan_at = models.DateTimeField()
    expiry_at = models.DateTimeField()
    grace_minutes = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=20, choices=JobneedStatus.choices, default=JobneedStatus.ASSIGNED
    )
    job_type = models.CharField(max_length=8, choices=JobType.choices, default=JobType.SCHEDULE)
    people = models.ForeignKey(
        People, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    group = models.ForeignKey(
        PeopleGroup, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    asset = models.ForeignKey(Asset, null=True, blank=True, on_delete=models.PROTECT)
    question_set = models.ForeignKey(QuestionSet, null=True, blank=True, on_delete=models.PROTECT)
    site = models.ForeignKey(BusinessUnit, on_delete=models.PROTECT, related_name="jobneeds")
    client = models.ForeignKey(BusinessUnit, on_delete=models.PROTECT, related_name="+")
    ticket_category = models.ForeignKey(
        TypeAssist, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.MEDIUM)
    seqno = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    performed_by = models.ForeignKey(
        People, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    has_alerts = models.BooleanField(default=False)
    alert_mail_sent_at = models.DateTimeField(null=True, blank=True)
    deviation = models.BooleanField(default=False, help_text="Finished outside its planned window")
    deviation_mail_sent_at = models.DateTimeField(null=True, blank=True)
    autoclosed_at = models.DateTimeField(null=True, blank=True)
    autoclose_notified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)

    objects = JobneedQuerySet.as_manager()

    class Meta:
        ordering = ["plan_at", "seqno"]
        constraints = [
            # The database, not a read-then-write, guarantees one instance per job and time.
            models.UniqueConstraint(
                fields=["job", "plan_at"],
                condition=Q(parent__isnull=True),
                name="jobneed_unique_job_plan_at",
            ),
            models.UniqueConstraint(
                fields=["parent", "seqno"],
                condition=Q(parent__isnull=False),
                name="jobneed_unique_checkpoint",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "expiry_at"]),
            models.Index(fields=["autoclosed_at", "autoclose_notified_at"]),
            # The planned-work list by plan time (everyone's, a client's, a site's), and the
            # site's day the dashboard and reports count: instances, never checkpoints.
            models.Index(
                fields=["plan_at", "id"], condition=Q(parent__isnull=True), name="jobneed_plan"
            ),
            models.Index(
                fields=["client", "plan_at", "id"],
                condition=Q(parent__isnull=True),
                name="jobneed_client_plan",
            ),
            models.Index(
                fields=["site", "plan_at", "id"],
                condition=Q(parent__isnull=True),
                name="jobneed_site_plan",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.description} @ {self.plan_at:%Y-%m-%d %H:%M}"


# The longest answer kept (a long remark fits, a pasted document does not): refused beyond it
# wherever answers come in (the submitJobneedAnswers mutation, bulk sync).
MAX_ANSWER_CHARS = 4000


class JobneedDetails(QuestionRules):
    """One answer of a Jobneed's checklist, with a copy of the question's rules."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    class TranscriptStatus(models.TextChoices):
        PENDING = "PENDING", "Pending"
        PROCESSING = "PROCESSING", "Processing"
        COMPLETED = "COMPLETED", "Completed"
        FAILED = "FAILED", "Failed"

    jobneed = models.ForeignKey(Jobneed, on_delete=models.CASCADE, related_name="details")
    answer = models.TextField(blank=True)
    is_alert = models.BooleanField(default=False)
    # Audio answers: their transcript (process_audio_transcript).
    transcript = models.TextField(blank=True)
    transcript_status = models.CharField(
        max_length=10, choices=TranscriptStatus.choices, blank=True
    )
    transcript_language = models.CharField(max_length=16, default="en-US")
    transcript_error = models.CharField(max_length=300, blank=True)
    transcript_started_at = models.DateTimeField(null=True, blank=True)
    transcript_processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["jobneed", "seqno"]
        constraints = [
            models.UniqueConstraint(fields=["jobneed", "seqno"], name="jobneeddetails_unique_seqno")
        ]

    def __str__(self) -> str:
        return f"{self.seqno}. {self.question}: {self.answer}"


class Reminder(models.Model):
    """A reminder mail due before a planned Jobneed, created from the job's escalation rules."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        SENT = "SENT", "Sent"
        FAILED = "FAILED", "Failed"

    description = models.CharField(max_length=300)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.CASCADE)
    jobneed = models.ForeignKey(
        Jobneed, null=True, blank=True, on_delete=models.CASCADE, related_name="reminders"
    )
    rule = models.ForeignKey(
        "y_helpdesk.EscalationMatrix", null=True, blank=True, on_delete=models.CASCADE
    )
    site = models.ForeignKey(BusinessUnit, on_delete=models.PROTECT, related_name="+")
    due_at = models.DateTimeField()
    plan_at = models.DateTimeField(null=True, blank=True)
    people = models.ForeignKey(
        People, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    group = models.ForeignKey(
        PeopleGroup, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    extra_emails = models.TextField(blank=True, help_text="Comma-separated addresses")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["jobneed", "rule"],
                condition=Q(jobneed__isnull=False, rule__isnull=False),
                name="reminder_unique_jobneed_rule",
            )
        ]
        indexes = [models.Index(fields=["status", "due_at"])]

    def __str__(self) -> str:
        return f"{self.description} due {self.due_at:%Y-%m-%d %H:%M}"
