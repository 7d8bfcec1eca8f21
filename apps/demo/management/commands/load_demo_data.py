"""Demo data for the embedded default: one client, two sites, people and groups.

Safe to run again: everything is looked up by its code and updated in place; passwords are
set only when a person is created.
"""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from apps.activity.models import Asset, Identifier, Job, Question, QuestionSet
from apps.activity.ppm import generate_jobneeds
from apps.onboarding.models import BusinessUnit, SiteGroup, TypeAssist
from apps.peoples.models import GroupMembership, People, PeopleGroup
from apps.y_helpdesk.models import EscalationMatrix

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

        self._operations(client, sites[0], technicians[0], team, codes)

        self.stdout.write(
            f"Demo data ready: client {client.code}, sites {', '.join(s.code for s in sites)}, "
            f"{People.objects.filter(client=client).count()} people; admin login: {admin.loginid}"
        )

    def _operations(self, client, site, technician, team, codes) -> None:
        """A checklist, a daily PPM job with its instances, and escalation rules."""
        checklist, _ = QuestionSet.objects.get_or_create(client=client, name="Chiller PPM")
        for seqno, question, answer_type, extra in [
            (1, "Condenser pressure (bar)", "NUMERIC", {"min_value": 8, "max_value": 12}),
            (2, "Oil leak visible?", "DROPDOWN", {"options": "Yes,No", "alert_on": "Yes"}),
        ]:
            Question.objects.update_or_create(
                question_set=checklist,
                seqno=seqno,
                defaults={"question": question, "answer_type": answer_type, **extra},
            )
        chiller, _ = Asset.objects.update_or_create(
            code="ACME-MUM-CH1", defaults={"name": "Chiller 1", "site": site}
        )
        now = timezone.now()
        job, _ = Job.objects.update_or_create(
            name="Daily chiller PPM",
            site=site,
            defaults={
                "identifier": Identifier.PPM,
                "cron": "0 9 * * *",
                "valid_from": now.replace(month=1, day=1, hour=0, minute=0),
                "valid_to": now.replace(year=now.year + 1, month=12, day=31),
                "asset": chiller,
                "question_set": checklist,
                "group": team,
                "ticket_category": codes[(TypeAssist.Category.TICKETCATEGORY, "RAISETICKETNOTIFY")],
            },
        )
        EscalationMatrix.objects.update_or_create(
            job=job, level=1, client=client, defaults={"frequency": "HOUR", "frequency_value": 1}
        )
        for level, minutes, assignee in [(1, 30, technician), (2, 120, None)]:
            EscalationMatrix.objects.update_or_create(
                client=client,
                site=None,
                job=None,
                category=codes[(TypeAssist.Category.TICKETCATEGORY, "RAISETICKETNOTIFY")],
                level=level,
                defaults={
                    "frequency": "MINUTE",
                    "frequency_value": minutes,
                    "assign_people": assignee,
                    "notify_email": "noc@acme.example",
                },
            )
        generate_jobneeds(job_id=job.pk)

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
