"""Demo data for the embedded default: one client, two sites, people and groups.

Safe to run again: everything is looked up by its code and updated in place; passwords are
set only when a person is created.
"""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand
from django.db import transaction

from apps.onboarding.models import BusinessUnit, SiteGroup, TypeAssist
from apps.peoples.models import GroupMembership, People, PeopleGroup

DEMO_PASSWORD_ENV = "DEMO_ADMIN_PASSWORD"  # noqa: S105  (the variable's name)


class Command(BaseCommand):
    help = "Load demo data: a client, two sites, site in-charges, admins and groups (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        codes = {
            (category, code): TypeAssist.objects.update_or_create(
                category=category, code=code, defaults={"name": name}
            )[0]
            for category, code, name in [
                (TypeAssist.Category.DESIGNATION, "SITEINCHARGE", "Site in-charge"),
                (TypeAssist.Category.DESIGNATION, "SUPERVISOR", "Supervisor"),
                (TypeAssist.Category.DESIGNATION, "TECHNICIAN", "Technician"),
                (TypeAssist.Category.WORKTYPE, "SECURITY", "Security"),
                (TypeAssist.Category.WORKTYPE, "MAINTENANCE", "Maintenance"),
                (TypeAssist.Category.TICKETCATEGORY, "AUTOCLOSENOTIFY", "Auto-close: notify"),
                (TypeAssist.Category.TICKETCATEGORY, "RAISETICKETNOTIFY", "Auto-close: ticket"),
            ]
        }
        client, _ = BusinessUnit.objects.update_or_create(
            code="ACME",
            defaults={"name": "Acme Facilities", "kind": BusinessUnit.Kind.CLIENT},
        )
        sites = [
            BusinessUnit.objects.update_or_create(
                code=code,
                defaults={
                    "name": name,
                    "kind": BusinessUnit.Kind.SITE,
                    "parent": client,
                    "time_zone": tz,
                },
            )[0]
            for code, name, tz in [
                ("ACME-MUM", "Acme Mumbai Tower", "Asia/Kolkata"),
                ("ACME-NYC", "Acme New York Plaza", "America/New_York"),
            ]
        ]

        admin = self._person(
            "admin",
            code="ADMIN",
            name="Demo Administrator",
            email="admin@acme.example",
            client=client,
            is_staff=True,
            is_superuser=True,
            is_client_admin=True,
            is_verified=True,
            receives_alert_mails=True,
        )
        incharge_designation = codes[(TypeAssist.Category.DESIGNATION, "SITEINCHARGE")]
        technician = codes[(TypeAssist.Category.DESIGNATION, "TECHNICIAN")]
        maintenance = codes[(TypeAssist.Category.WORKTYPE, "MAINTENANCE")]
        in_charges = [
            self._person(
                f"incharge.{site.code.split('-')[-1].lower()}",
                code=f"INCH-{site.code}",
                name=f"In-charge {site.name}",
                email=f"incharge.{site.code.lower()}@acme.example",
                client=client,
                site=site,
                designation=incharge_designation,
                is_verified=True,
                receives_alert_mails=True,
            )
            for site in sites
        ]
        technicians = [
            self._person(
                f"tech.{site.code.split('-')[-1].lower()}",
                code=f"TECH-{site.code}",
                name=f"Technician {site.name}",
                email=f"tech.{site.code.lower()}@acme.example",
                client=client,
                site=site,
                designation=technician,
                work_type=maintenance,
                is_verified=True,
            )
            for site in sites
        ]

        team, _ = PeopleGroup.objects.get_or_create(client=client, name="Maintenance team")
        for person in technicians:
            GroupMembership.objects.get_or_create(group=team, people=person)
        GroupMembership.objects.update_or_create(
            group=team, people=in_charges[0], defaults={"is_lead": True}
        )
        all_sites, _ = SiteGroup.objects.get_or_create(client=client, name="All Acme sites")
        all_sites.sites.set(sites)

        self.stdout.write(
            f"Demo data ready: client {client.code}, sites {', '.join(s.code for s in sites)}, "
            f"{People.objects.filter(client=client).count()} people; admin login: {admin.loginid}"
        )

    def _person(self, loginid: str, **fields) -> People:
        person = People.objects.filter(loginid=loginid).first()
        if person is None:
            # Only the admin can log in; the others get an unusable password.
            password = os.environ.get(DEMO_PASSWORD_ENV, "admin") if loginid == "admin" else None
            return People.objects.create_user(loginid, password, **fields)
        for name, value in fields.items():
            setattr(person, name, value)
        person.save()
        return person
