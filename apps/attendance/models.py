from __future__ import annotations

import uuid

from django.db import models

from apps.onboarding.models import BusinessUnit
from apps.peoples.models import People


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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["person", "at"])]

    def __str__(self) -> str:
        return f"{self.person} {self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M}"
