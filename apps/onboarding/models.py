from __future__ import annotations

import zoneinfo
from functools import cache

from django.core.exceptions import ValidationError
from django.db import models


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in _time_zones():
        raise ValidationError(f"{value!r} is not an IANA time zone name (e.g. Asia/Kolkata)")


class TypeAssist(models.Model):
    """A lookup code: a category (DESIGNATION, WORKTYPE, TICKETCATEGORY, ...) and a code."""

    class Category(models.TextChoices):
        DESIGNATION = "DESIGNATION", "Designation"
        WORKTYPE = "WORKTYPE", "Work type"
        TICKETCATEGORY = "TICKETCATEGORY", "Ticket category"
        EVENTTYPE = "EVENTTYPE", "Attendance event type"
        PRIORITY = "PRIORITY", "Priority"
        OTHER = "OTHER", "Other"

    category = models.CharField(max_length=32, choices=Category.choices, db_index=True)
    code = models.CharField(max_length=64)
    name = models.CharField(max_length=128)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["category", "code"]
        constraints = [
            models.UniqueConstraint(fields=["category", "code"], name="typeassist_unique_code")
        ]

    def __str__(self) -> str:
        return self.name  # what people read in choices and the admin, never the raw code


class BusinessUnit(models.Model):
    """A node of the business-unit tree: a client at the root, its sites below it."""

    class Kind(models.TextChoices):
        CLIENT = "CLIENT", "Client"
        DIVISION = "DIVISION", "Division"
        SITE = "SITE", "Site"

    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    # Denormalised root of the tree, so "all sites of a client" is one indexed query.
    client = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="client_units",
        editable=False,
    )
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    # A site's geofence: a circle around its location (all three set, or none).
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    geofence_radius_m = models.PositiveIntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]
        indexes = [models.Index(fields=["client", "kind"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def save(self, *args, **kwargs) -> None:
        if self.parent is None:
            self.client = None
        else:
            self.client = self.parent if self.parent.client_id is None else self.parent.client
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.kind == self.Kind.CLIENT and self.parent_id is not None:
            raise ValidationError({"parent": "A client is the root of its tree; it has no parent."})
        if self.kind != self.Kind.CLIENT and self.parent_id is None:
            kind = self.get_kind_display().lower()
            raise ValidationError({"parent": f"A {kind} needs a parent."})

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class SiteGroup(models.Model):
    """A named set of sites of one client (for assignment and reporting)."""

    name = models.CharField(max_length=200)
    client = models.ForeignKey(BusinessUnit, on_delete=models.CASCADE, related_name="site_groups")
    sites = models.ManyToManyField(
        BusinessUnit,
        related_name="in_site_groups",
        limit_choices_to={"kind": BusinessUnit.Kind.SITE},
        blank=True,
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["client", "name"], name="sitegroup_unique_name")
        ]

    def __str__(self) -> str:
        return self.name
