from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from apps.onboarding.models import BusinessUnit
from apps.peoples.access import visible
from apps.peoples.models import People


class FaceOutcome(models.TextChoices):
    MATCH = "MATCH", "Matched"
    NO_MATCH = "NO_MATCH", "Did not match"
    NO_FACE = "NO_FACE", "No face in the selfie"
    MULTIPLE_FACES = "MULTIPLE_FACES", "Several faces in the selfie"
    UNREADABLE = "UNREADABLE", "Selfie unreadable"
    NO_SELFIE = "NO_SELFIE", "No selfie"
    NO_REFERENCE = "NO_REFERENCE", "No usable reference photo"


class AttendanceEventQuerySet(models.QuerySet):
    def visible_to(self, person) -> AttendanceEventQuerySet:
        """Punches `person` may see (apps.peoples.access): a technician's own."""
        return visible(
            self, person, client="site__client", own=lambda scope: Q(person=scope.person_id)
        )


class AttendanceEvent(models.Model):
    """A punch in or out of a person at a site, with where it was made."""

    class Kind(models.TextChoices):
        PUNCH_IN = "PUNCH_IN", "Punch in"
        PUNCH_OUT = "PUNCH_OUT", "Punch out"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    person = models.ForeignKey(People, on_delete=models.PROTECT, related_name="attendance")
    site = models.ForeignKey(BusinessUnit, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    at = models.DateTimeField()
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    inside_geofence = models.BooleanField(null=True, blank=True)
    # Face verification of the punch's selfie (perform_facerecognition_bgt).
    face_outcome = models.CharField(max_length=16, choices=FaceOutcome.choices, blank=True)
    face_matched = models.BooleanField(null=True, blank=True)
    face_distance = models.FloatField(null=True, blank=True)
    face_threshold = models.FloatField(null=True, blank=True)
    face_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AttendanceEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["person", "at"])]

    def __str__(self) -> str:
        return f"{self.person} {self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M}"


class FaceReference(models.Model):
    """The face encoding of one reference photo, computed once and reused for every punch."""

    attachment = models.OneToOneField(
        "core.Attachment", on_delete=models.CASCADE, related_name="face_reference"
    )
    person = models.ForeignKey(People, on_delete=models.CASCADE, related_name="face_references")
    encoding = models.JSONField(null=True, help_text="128 numbers; empty when no single face")
    computed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"reference of {self.person}"
