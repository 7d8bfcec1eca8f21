from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import models

from apps.integrations.partner_api import (
    PartnerCallRefused,
    PartnerUnavailable,
    credentials_problem,
    resolve,
)


class NocAlert(models.Model):
    """A data mismatch reported to the NOC; repeats within one window count on the same row."""

    fingerprint = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    kind = models.CharField(max_length=64)
    source = models.CharField(max_length=128)
    subject = models.CharField(max_length=200)
    details = models.JSONField(default=dict, blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)
    mailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint", "window_start"], name="nocalert_one_per_window"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject} from {self.source} (x{self.occurrences})"


class RejectedSyncRecord(models.Model):
    """A record of a bulk sync that was not applied, kept with its reason for inspection."""

    table = models.CharField(max_length=64)
    record_uuid = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=300)
    record = models.JSONField()
    sender = models.ForeignKey(
        "peoples.People", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.table} {self.record_uuid}: {self.reason}"


class SyncBatch(models.Model):
    """One offline batch a device sent (syncRecords): queued, then applied with the outcome
    of every record, which the device reads back (mySyncBatch)."""

    class Status(models.TextChoices):
        QUEUED = "QUEUED", "Queued"
        DONE = "DONE", "Done"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    sender = models.ForeignKey("peoples.People", on_delete=models.CASCADE, related_name="+")
    table = models.CharField(max_length=64)
    records = models.PositiveIntegerField()
    task_id = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    applied = models.PositiveIntegerField(default=0)
    rejected = models.JSONField(default=list, blank=True, help_text="index, uuid and reason")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.table} x{self.records} ({self.status})"


class PartnerEvent(models.TextChoices):
    TICKET_CREATED = "ticket.created", "Ticket created"
    TICKET_ESCALATED = "ticket.escalated", "Ticket escalated"
    PERMIT_APPROVED = "permit.approved", "Work permit approved"
    PERMIT_COMPLETED = "permit.completed", "Work permit completed"
    JOB_AUTOCLOSED = "job.autoclosed", "Planned work auto-closed"


class PartnerSubscription(models.Model):
    """A partner system of a client told of one kind of event (a POST of JSON to its URL)."""

    client = models.ForeignKey(
        "onboarding.BusinessUnit", on_delete=models.CASCADE, related_name="partner_subscriptions"
    )
    name = models.CharField(max_length=100)
    event = models.CharField(max_length=32, choices=PartnerEvent.choices)
    url = models.URLField(help_text="Its host must be on PARTNER_API_ALLOWED_HOSTS")
    credentials = models.CharField(
        max_length=64, blank=True, help_text="A name in PARTNER_API_CREDENTIALS (not the secret)"
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["client", "event", "name"]

    def __str__(self) -> str:
        return f"{self.name}: {self.get_event_display()}"

    def clean(self) -> None:
        """Its URL must pass the partner checks; its credentials must be its client's."""
        try:
            resolve(self.url)
        except PartnerCallRefused as exc:
            raise ValidationError({"url": str(exc)}) from None
        except PartnerUnavailable:
            pass  # the host does not resolve right now; calls will retry
        client_code = self.client.code if self.client_id else None
        problem = credentials_problem(self.credentials, client_code)
        if problem:
            raise ValidationError({"credentials": problem})


class PartnerDelivery(models.Model):
    """One event sent to one subscription, through external_api_call_async, once."""

    class Status(models.TextChoices):
        QUEUED = "QUEUED", "Queued"
        RETRYING = "RETRYING", "Retrying"
        DELIVERED = "DELIVERED", "Delivered"
        FAILED = "FAILED", "Failed"

    subscription = models.ForeignKey(
        PartnerSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    subject = models.CharField(max_length=100, help_text="What the event is about, e.g. ticket:12")
    payload = models.JSONField()
    task_id = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "subject"], name="partnerdelivery_once_per_subject"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subscription} {self.subject} ({self.status})"
