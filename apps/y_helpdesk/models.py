from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.activity.models import Asset, Job, Jobneed, Priority
from apps.onboarding.models import BusinessUnit, TypeAssist
from apps.peoples.access import assigned_to, visible
from apps.peoples.models import People, PeopleGroup

# The longest description or comment a ticket keeps; refused beyond it.
MAX_TICKET_TEXT_CHARS = 4000


class TicketQuerySet(models.QuerySet):
    def visible_to(self, person) -> TicketQuerySet:
        """Tickets `person` may see (apps.peoples.access): a technician's are those assigned
        to them or their group and those they raised."""
        return visible(
            self,
            person,
            own=lambda scope: (
                assigned_to(scope, people="assigned_people", group="assigned_group")
                | Q(created_by=scope.person_id)
            ),
        )


class Ticket(models.Model):
    class Status(models.TextChoices):
        NEW = "NEW", "New"
        OPEN = "OPEN", "Open"
        ONHOLD = "ONHOLD", "On hold"
        RESOLVED = "RESOLVED", "Resolved"
        CLOSED = "CLOSED", "Closed"
        CANCELLED = "CANCELLED", "Cancelled"

    class Source(models.TextChoices):
        SYSTEM = "SYSTEM", "System generated"
        USER = "USER", "User defined"

    description = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.MEDIUM)
    category = models.ForeignKey(
        TypeAssist,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"category": TypeAssist.Category.TICKETCATEGORY},
    )
    site = models.ForeignKey(
        BusinessUnit,
        on_delete=models.PROTECT,
        related_name="tickets",
        limit_choices_to={"kind": BusinessUnit.Kind.SITE},
    )
    client = models.ForeignKey(
        BusinessUnit, on_delete=models.PROTECT, related_name="+", editable=False
    )
    asset = models.ForeignKey(Asset, null=True, blank=True, on_delete=models.PROTECT)
    assigned_people = models.ForeignKey(
        People, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    assigned_group = models.ForeignKey(
        PeopleGroup, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.USER)
    # The system ticket raised when this Jobneed was auto-closed: at most one per Jobneed.
    jobneed = models.OneToOneField(
        Jobneed, null=True, blank=True, on_delete=models.SET_NULL, related_name="ticket"
    )
    escalation_level = models.PositiveSmallIntegerField(default=0, editable=False)
    escalated_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Escalations up to this level have been mailed; a higher escalation_level still owes a mail.
    escalation_notified_level = models.PositiveSmallIntegerField(default=0, editable=False)
    created_by = models.ForeignKey(
        People, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    modified_by = models.ForeignKey(
        People, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)

    objects = TicketQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "client", "category", "escalation_level"]),
            # The ticket list, newest first: everyone's (operators), a client's, a site's.
            models.Index(fields=["-created_at", "-id"], name="ticket_newest"),
            models.Index(fields=["client", "-created_at", "-id"], name="ticket_client_newest"),
            models.Index(fields=["site", "-created_at", "-id"], name="ticket_site_newest"),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.description[:60]}"

    def save(self, *args, **kwargs) -> None:
        self.client_id = self.site.client_id or self.site_id
        super().save(*args, **kwargs)

    @property
    def number(self) -> int:
        return self.pk


OPEN_TICKET_STATUSES = (Ticket.Status.NEW, Ticket.Status.OPEN)


class TicketEvent(models.Model):
    """The history of a ticket: created, updated, escalated, ..."""

    class Action(models.TextChoices):
        CREATED = "CREATED", "Created"
        UPDATED = "UPDATED", "Updated"
        ESCALATED = "ESCALATED", "Escalated"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    actor = models.ForeignKey(
        People, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["ticket", "at"]

    def __str__(self) -> str:
        return f"#{self.ticket_id} {self.action} at {self.at:%Y-%m-%d %H:%M}"


class TicketComment(models.Model):
    """One message of a ticket's conversation: appended, never edited."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        People, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["ticket", "at", "id"]
        indexes = [models.Index(fields=["ticket", "at"])]

    def __str__(self) -> str:
        return f"#{self.ticket_id} {self.author}: {self.text[:60]}"


class EscalationMatrix(models.Model):
    """An escalation or reminder rule.

    Ticket rules (no job) are scoped by client, site (blank: every site of the client) and
    category: a ticket moves to `level` once `frequency_value` x `frequency` has passed since it
    was created. Job rules (with a job) make the reminders of that PPM job's instances, due that
    long before each plan time.
    """

    class Frequency(models.TextChoices):
        MINUTE = "MINUTE", "Minutes"
        HOUR = "HOUR", "Hours"
        DAY = "DAY", "Days"
        WEEK = "WEEK", "Weeks"

    MINUTES = {"MINUTE": 1, "HOUR": 60, "DAY": 1440, "WEEK": 10080}

    client = models.ForeignKey(BusinessUnit, on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey(
        BusinessUnit, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    category = models.ForeignKey(
        TypeAssist, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.CASCADE, related_name="escalation_rules"
    )
    level = models.PositiveSmallIntegerField(default=1)
    frequency = models.CharField(max_length=8, choices=Frequency.choices)
    frequency_value = models.PositiveIntegerField()
    assign_people = models.ForeignKey(
        People, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assign_group = models.ForeignKey(
        PeopleGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    notify_email = models.EmailField(blank=True)
    body = models.TextField(blank=True)

    class Meta:
        ordering = ["client", "category", "level"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "site", "category", "level"],
                condition=Q(job__isnull=True, site__isnull=False),
                name="escalation_unique_site_rule",
            ),
            models.UniqueConstraint(
                fields=["client", "category", "level"],
                condition=Q(job__isnull=True, site__isnull=True),
                name="escalation_unique_client_rule",
            ),
            models.UniqueConstraint(
                fields=["job", "level"],
                condition=Q(job__isnull=False),
                name="escalation_unique_job_rule",
            ),
        ]
        verbose_name_plural = "escalation matrix"

    def __str__(self) -> str:
        return f"level {self.level} after {self.frequency_value} {self.get_frequency_display()}"

    @property
    def delay(self) -> timedelta:
        return timedelta(minutes=self.frequency_value * self.MINUTES[self.frequency])

    @property
    def delay_text(self) -> str:
        return f"{self.frequency_value} {self.get_frequency_display().lower()}"
