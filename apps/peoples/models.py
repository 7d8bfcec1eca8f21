from __future__ import annotations

import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils import timezone

from apps.onboarding.models import BusinessUnit, TypeAssist


class PeopleManager(BaseUserManager["People"]):
    use_in_migrations = True

    def create_user(self, loginid: str, password: str | None = None, **fields) -> People:
        if not loginid:
            raise ValueError("loginid is required")
        fields.setdefault("code", loginid.upper())
        fields.setdefault("name", loginid)
        if "email" in fields:
            fields["email"] = self.normalize_email(fields["email"])
        person = self.model(loginid=loginid, **fields)
        person.set_password(password)
        person.save(using=self._db)
        return person

    def create_superuser(self, loginid: str, password: str | None = None, **fields) -> People:
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(loginid, password, **fields)


class People(AbstractBaseUser, PermissionsMixin):
    """A person of a client: the login user of the web, the mobile app and the admin."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    loginid = models.CharField("login id", max_length=150, unique=True)
    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True, db_index=True)
    mobile = models.CharField(max_length=32, blank=True)
    designation = models.ForeignKey(
        TypeAssist,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"category": TypeAssist.Category.DESIGNATION},
    )
    work_type = models.ForeignKey(
        TypeAssist,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"category": TypeAssist.Category.WORKTYPE},
    )
    client = models.ForeignKey(
        BusinessUnit,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="client_people",
        limit_choices_to={"kind": BusinessUnit.Kind.CLIENT},
    )
    site = models.ForeignKey(
        BusinessUnit,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="site_people",
        limit_choices_to={"kind": BusinessUnit.Kind.SITE},
    )
    is_verified = models.BooleanField(default=False)
    is_active = models.BooleanField("enabled", default=True)
    is_staff = models.BooleanField(default=False, help_text="Can log into the admin")
    is_client_admin = models.BooleanField(default=False)
    supervised_site_groups = models.ManyToManyField(
        "onboarding.SiteGroup",
        blank=True,
        related_name="supervisors",
        help_text="A site in-charge also oversees the sites of these groups",
    )
    receives_alert_mails = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = PeopleManager()

    USERNAME_FIELD = "loginid"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        verbose_name = "person"
        verbose_name_plural = "people"
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class PeopleGroup(models.Model):
    """A named group of people of a client (assignment and notification target)."""

    name = models.CharField(max_length=200)
    client = models.ForeignKey(BusinessUnit, on_delete=models.CASCADE, related_name="people_groups")
    site = models.ForeignKey(
        BusinessUnit, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    members = models.ManyToManyField(People, through="GroupMembership", related_name="groups_in")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["client", "name"], name="peoplegroup_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class GroupMembership(models.Model):
    group = models.ForeignKey(PeopleGroup, on_delete=models.CASCADE, related_name="memberships")
    people = models.ForeignKey(People, on_delete=models.CASCADE, related_name="memberships")
    is_lead = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "people"], name="membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.people} in {self.group}"
