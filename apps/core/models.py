from __future__ import annotations

import re
import uuid
from pathlib import PurePosixPath

from django.core.files import File
from django.core.validators import RegexValidator
from django.db import models

_SAFE_SUFFIX = re.compile(r"\.[a-z0-9]{1,8}")


class IdempotencyKey(models.Model):
    """One side effect (a mail, a publish, an upload), claimed before it happens, done after.

    The key names the business object and the effect, e.g. ``permit:12:approved:alice@x``.
    """

    class Status(models.TextChoices):
        IN_PROGRESS = "IN_PROGRESS", "In progress"
        DONE = "DONE", "Done"

    key = models.CharField(max_length=255, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    owner = models.CharField(max_length=64, help_text="Token of the claim that holds the key")
    task_id = models.CharField(max_length=255, blank=True)
    claims = models.PositiveIntegerField(default=1, help_text="How many times it was claimed")
    claimed_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "lease_expires_at"])]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"


class DeadLetter(models.Model):
    """A task that failed for good: retries exhausted or a failure that is not retried."""

    task_name = models.CharField(max_length=255, db_index=True)
    task_id = models.CharField(max_length=255)
    queue = models.CharField(max_length=64, blank=True)
    args = models.JSONField(default=list, help_text="Redacted for display")
    kwargs = models.JSONField(default=dict, help_text="Redacted for display")
    # The exact arguments, encrypted; only re-queueing opens them (apps.core.dead_letters).
    sealed_arguments = models.TextField(blank=True, editable=False)
    exception_type = models.CharField(max_length=255)
    error = models.TextField(blank=True)
    retries = models.PositiveIntegerField(default=0)
    failed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    requeued_at = models.DateTimeField(null=True, blank=True)
    requeued_task_id = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-failed_at"]

    def __str__(self) -> str:
        return f"{self.task_name} {self.task_id}"


class WorkerHeartbeat(models.Model):
    """The latest beat of ``task_every_min`` on each worker, stamped by the database's clock."""

    worker = models.CharField(max_length=255, unique=True)
    task_id = models.CharField(max_length=255, blank=True)
    ran_at = models.DateTimeField()
    scheduled_for = models.DateTimeField(null=True, blank=True)
    lateness_seconds = models.FloatField(null=True, blank=True)
    beats = models.PositiveBigIntegerField(default=1)
    clock_offset_seconds = models.FloatField(
        null=True,
        blank=True,
        help_text="How far the worker's clock was behind (-) or ahead of the database's",
    )

    class Meta:
        ordering = ["-ran_at"]

    def __str__(self) -> str:
        return f"{self.worker} at {self.ran_at:%Y-%m-%d %H:%M:%S}"


def attachment_storage_key(attachment: Attachment, filename: str) -> str:
    """Storage key from validated parts only: the owner's type and uuid, our uuid, a safe suffix."""
    suffix = PurePosixPath(filename).suffix.lower()
    if not _SAFE_SUFFIX.fullmatch(suffix):
        suffix = ""
    return f"attachments/{attachment.owner_type}/{attachment.owner_uuid}/{attachment.uuid}{suffix}"


class Attachment(models.Model):
    """A file owned by a domain object (a Jobneed, a checklist answer, an attendance event...)."""

    class Kind(models.TextChoices):
        ATTACHMENT = "ATTACHMENT", "Attachment"
        PHOTO = "PHOTO", "Photo"
        SELFIE = "SELFIE", "Selfie"
        SIGNATURE = "SIGNATURE", "Signature"
        AUDIO = "AUDIO", "Audio"

    class Location(models.TextChoices):
        LOCAL = "LOCAL", "Local disk"
        CLOUD = "CLOUD", "Cloud bucket"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner_type = models.CharField(
        max_length=64, validators=[RegexValidator(r"^[a-z_]+\.[a-z_]+$")], help_text="app.model"
    )
    owner_uuid = models.UUIDField(db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ATTACHMENT)
    file = models.FileField(upload_to=attachment_storage_key, max_length=255)
    filename = models.CharField(max_length=255, help_text="The name it was uploaded with")
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    checksum = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the content")
    location = models.CharField(max_length=8, choices=Location.choices, default=Location.LOCAL)
    moved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["owner_type", "owner_uuid"]),
            models.Index(fields=["location", "created_at"]),
        ]

    def __str__(self) -> str:
        return self.filename

    def open(self) -> File:
        """The content, from wherever it is stored now (local media or the cloud bucket)."""
        from django.core.files.storage import storages

        if not self.file.name:
            raise FileNotFoundError(f"attachment {self.uuid} has no file")
        storage = storages["cloud"] if self.location == self.Location.CLOUD else self.file.storage
        return storage.open(self.file.name, "rb")


class BeatLock(models.Model):
    """Which beat process sends the periodic tasks now; the others stand by until it expires."""

    name = models.CharField(max_length=64, unique=True)
    holder = models.CharField(max_length=255, help_text="host:pid:token of the leading beat")
    acquired_at = models.DateTimeField()
    renewed_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: {self.holder}"


class TaskMetric(models.Model):
    """One counter of the task metrics (apps.core.metrics): a name, its labels, its total.

    Worker processes add to these rows; /metrics reads them, so counts reach the web process
    wherever the workers run.
    """

    name = models.CharField(max_length=64)
    labels = models.CharField(max_length=512, help_text="JSON object, keys sorted")
    value = models.FloatField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "labels"], name="core_taskmetric_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name}{self.labels} = {self.value}"


class BrokerMarker(models.Model):
    """The marker key this deployment keeps in its Redis broker: a broker that comes back without
    it lost its data (restarted without its append-only file, flushed), and every message that
    waited in it with them."""

    broker = models.CharField(max_length=255, unique=True, help_text="host:port/db")
    marker = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    data_lost_at = models.DateTimeField(
        null=True, blank=True, help_text="When the marker was last found gone"
    )
    losses = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.broker
