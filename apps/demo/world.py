"""The demo world: one client with two sites, a sign-in for every role, permit types and
vendors, work planned for today and a month of history, so every page and report has something
to show on the first `./dev up`.

Safe to run again: rows are looked up by their code (or their day and time) and updated in
place; a person's password is set when the person is created or still has none.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.activity.models import (
    Asset,
    Identifier,
    Job,
    Jobneed,
    JobneedDetails,
    JobneedStatus,
    Question,
    QuestionSet,
)
from apps.activity.ppm import generate_jobneeds, plan_between
from apps.attendance.models import AttendanceEvent, FaceOutcome
from apps.onboarding.models import BusinessUnit, SiteGroup, TypeAssist
from apps.peoples.access import role_of
from apps.peoples.models import GroupMembership, People, PeopleGroup
from apps.reports.freshness import forget_site_dashboard
from apps.work_order_management import actions
from apps.work_order_management.models import PermitSection, PermitType, Vendor, WorkPermit
from apps.y_helpdesk.models import EscalationMatrix, Ticket, TicketComment, TicketEvent

HISTORY_DAYS = 30
# Names the demo's deterministic row ids (punches) are derived from.
DEMO_NAMESPACE = uuid.UUID("5d1c0e2a-6f1e-4f7b-9a57-0d3c9a1e7b42")
Category = TypeAssist.Category

# What the people of some demo tickets said to each other (the raiser, then the assignee).
CONVERSATIONS = {
    "Water leaking under the chiller plant room door": [
        ("raiser", "Water is pooling near the electrical panel; I put a caution sign up."),
        ("assignee", "The condensate drain is blocked. Clearing it now; back in 30 minutes."),
    ],
    "Meeting room 4 too warm: AC blows at 27 °C": [
        ("raiser", "The 3 pm client meeting is in this room."),
        ("assignee", "Compressor relay needs replacing; part ordered from CoolAir, due Friday."),
    ],
    "Basement pump tripping the breaker": [
        ("assignee", "Motor winding insulation was low; replaced the pump with the standby."),
    ],
}


@dataclass(frozen=True)
class SignIn:
    loginid: str
    role: str
    where: str


def load(password: str, now: datetime | None = None) -> list[SignIn]:
    """Build (or bring up to date) the demo world; the sign-ins it offers, one per role."""
    now = now or timezone.now()
    with transaction.atomic():
        world = _World(password, now)
        world.build()
    return world.sign_ins


class _World:
    def __init__(self, password: str, now: datetime) -> None:
        self.password = password
        self.now = now

    # --- who and where ---------------------------------------------------------------------
    def build(self) -> None:
        self.codes = {
            (category, code): TypeAssist.objects.update_or_create(
                category=category, code=code, defaults={"name": name}
            )[0]
            for category, code, name in [
                (Category.DESIGNATION, "SITEINCHARGE", "Site in-charge"),
                (Category.DESIGNATION, "SUPERVISOR", "Supervisor"),
                (Category.DESIGNATION, "TECHNICIAN", "Technician"),
                (Category.DESIGNATION, "SAFETYOFFICER", "Safety officer"),
                (Category.DESIGNATION, "FACILITYMANAGER", "Facility manager"),
                (Category.WORKTYPE, "SECURITY", "Security"),
                (Category.WORKTYPE, "MAINTENANCE", "Maintenance"),
                (Category.TICKETCATEGORY, "AUTOCLOSENOTIFY", "Auto-close: notify"),
                (Category.TICKETCATEGORY, "RAISETICKETNOTIFY", "Auto-close: ticket"),
                (Category.TICKETCATEGORY, "ELECTRICAL", "Electrical"),
                (Category.TICKETCATEGORY, "PLUMBING", "Plumbing"),
                (Category.TICKETCATEGORY, "HVAC", "Air conditioning"),
                (Category.TICKETCATEGORY, "HOUSEKEEPING", "Housekeeping"),
            ]
        }
        self.client, _ = BusinessUnit.objects.update_or_create(
            code="ACME",
            # Head office in Mumbai: the zone of the pages of people without a site.
            defaults={
                "name": "Acme Facilities",
                "kind": BusinessUnit.Kind.CLIENT,
                "time_zone": "Asia/Kolkata",
            },
        )
        self.mumbai, self.new_york = (
            BusinessUnit.objects.update_or_create(
                code=code,
                defaults={
                    "name": name,
                    "kind": BusinessUnit.Kind.SITE,
                    "parent": self.client,
                    "time_zone": tz,
                    "latitude": Decimal(lat),
                    "longitude": Decimal(lon),
                    "geofence_radius_m": 300,
                },
            )[0]
            for code, name, tz, lat, lon in [
                ("ACME-MUM", "Acme Mumbai Tower", "Asia/Kolkata", "19.076000", "72.877700"),
                ("ACME-NYC", "Acme New York Plaza", "America/New_York", "40.758000", "-73.985500"),
            ]
        )
        self.sites = [self.mumbai, self.new_york]
        self._people()
        self._groups()
        self._permit_types()
        self._jobs()
        self._history()
        self._tickets()
        self._attendance()
        self._permits()
        for site in self.sites:
            transaction.on_commit(functools.partial(forget_site_dashboard, site))

    def _person(self, loginid: str, **fields) -> People:
        person = People.objects.filter(loginid=loginid).first()
        if person is None:
            return People.objects.create_user(loginid, self.password, **fields)
        for name, value in fields.items():
            setattr(person, name, value)
        if not person.has_usable_password():  # demo people of an older load had none
            person.set_password(self.password)
        person.save()
        return person

    def _people(self) -> None:
        designation = {
            code: ta for (cat, code), ta in self.codes.items() if cat == Category.DESIGNATION
        }
        maintenance = self.codes[(Category.WORKTYPE, "MAINTENANCE")]
        self.admin = self._person(
            "admin",
            code="ADMIN",
            name="Demo Administrator",
            email="admin@acme.example",
            client=self.client,
            is_staff=True,
            is_superuser=True,
            is_client_admin=True,
            is_verified=True,
            receives_alert_mails=True,
        )
        self.client_admin = self._person(
            "clientadmin",
            code="ACME-CADMIN",
            name="Chandra Rao",
            email="chandra.rao@acme.example",
            client=self.client,
            is_client_admin=True,
            is_verified=True,
            receives_alert_mails=True,
        )
        self.in_charges = [
            self._person(
                f"incharge.{short}",
                code=f"INCH-{site.code}",
                name=name,
                email=f"incharge.{site.code.lower()}@acme.example",
                client=self.client,
                site=site,
                designation=designation["SITEINCHARGE"],
                is_verified=True,
                receives_alert_mails=True,
            )
            for site, short, name in [
                (self.mumbai, "mum", "Imran Shaikh"),
                (self.new_york, "nyc", "Isabel Ortiz"),
            ]
        ]
        self.technicians = [
            self._person(
                f"tech.{short}",
                code=f"TECH-{site.code}",
                name=name,
                email=f"tech.{site.code.lower()}@acme.example",
                client=self.client,
                site=site,
                designation=designation["TECHNICIAN"],
                work_type=maintenance,
                is_verified=True,
            )
            for site, short, name in [
                (self.mumbai, "mum", "Tanvi Patil"),
                (self.new_york, "nyc", "Tom Becker"),
            ]
        ]
        self.verifier = self._person(
            "verifier",
            code="ACME-VERIFIER",
            name="Vikram Nair",
            email="vikram.nair@acme.example",
            client=self.client,
            site=self.mumbai,
            designation=designation["SAFETYOFFICER"],
            is_verified=True,
        )
        self.approver = self._person(
            "approver",
            code="ACME-APPROVER",
            name="Anita Desai",
            email="anita.desai@acme.example",
            client=self.client,
            site=self.mumbai,
            designation=designation["FACILITYMANAGER"],
            is_verified=True,
        )
        self.sign_ins = [
            SignIn(self.admin.loginid, "operator", "every client; the admin too"),
            SignIn(self.client_admin.loginid, "client admin", self.client.name),
            *(
                SignIn(p.loginid, str(role_of(p)), site.name)
                for p, site in zip(self.in_charges + self.technicians, self.sites * 2, strict=True)
            ),
            SignIn(self.verifier.loginid, "verifier", f"permits at {self.mumbai.name}"),
            SignIn(self.approver.loginid, "approver", f"permits at {self.mumbai.name}"),
        ]

    def _groups(self) -> None:
        self.team, _ = PeopleGroup.objects.get_or_create(
            client=self.client, name="Maintenance team"
        )
        for person in self.technicians:
            GroupMembership.objects.get_or_create(group=self.team, people=person)
        GroupMembership.objects.update_or_create(
            group=self.team, people=self.in_charges[0], defaults={"is_lead": True}
        )
        all_sites, _ = SiteGroup.objects.get_or_create(client=self.client, name="All Acme sites")
        all_sites.sites.set(self.sites)

    # --- permits ---------------------------------------------------------------------------
    def _checklist(self, name: str, *questions: tuple) -> QuestionSet:
        """A question set of the client; each question (text, type, mandatory, extra rules)."""
        checklist, _ = QuestionSet.objects.get_or_create(client=self.client, name=name)
        for seqno, (text, answer_type, mandatory, extra) in enumerate(questions, start=1):
            Question.objects.update_or_create(
                question_set=checklist,
                seqno=seqno,
                defaults={
                    "question": text,
                    "answer_type": answer_type,
                    "is_mandatory": mandatory,
                    **extra,
                },
            )
        return checklist

    def _permit_type(self, name: str, kind: str, sections: list[tuple]) -> PermitType:
        permit_type, _ = PermitType.objects.update_or_create(
            client=self.client, name=name, defaults={"kind": kind}
        )
        for seqno, (section, role, weight, checklist) in enumerate(sections, start=1):
            PermitSection.objects.update_or_create(
                permit_type=permit_type,
                seqno=seqno,
                defaults={
                    "name": section,
                    "role": role,
                    "weight": weight,
                    "question_set": checklist,
                },
            )
        return permit_type

    def _permit_types(self) -> None:
        yes_no = {"options": "Yes,No"}
        contacts = self._checklist(
            "Permit contacts",
            ("Security contacts", "EMAILID", True, {}),
        )
        self.hot_work = self._permit_type(
            "Hot Work Permit",
            "WP",
            [
                (
                    "Work details",
                    PermitSection.Role.FORM,
                    0,
                    self._checklist(
                        "Hot work",
                        ("Work location", "SINGLELINE", True, {}),
                        ("Description of the work", "MULTILINE", True, {}),
                        ("Fire watch assigned?", "DROPDOWN", True, yes_no),
                        ("Fire extinguisher within 10 m?", "DROPDOWN", True, yes_no),
                    ),
                ),
                ("Contacts", PermitSection.Role.CONTACTS, 0, contacts),
                (
                    "Return",
                    PermitSection.Role.RETURN,
                    0,
                    self._checklist(
                        "Hot work return",
                        ("Area left safe and clean?", "DROPDOWN", True, yes_no),
                    ),
                ),
            ],
        )
        self._permit_type(
            "Work at Height Permit",
            "WP",
            [
                (
                    "Work details",
                    PermitSection.Role.FORM,
                    0,
                    self._checklist(
                        "Work at height",
                        ("Work location", "SINGLELINE", True, {}),
                        ("Height (m)", "NUMERIC", True, {}),
                        ("Harness inspected?", "DROPDOWN", True, yes_no),
                    ),
                ),
                ("Contacts", PermitSection.Role.CONTACTS, 0, contacts),
                (
                    "Return",
                    PermitSection.Role.RETURN,
                    0,
                    self._checklist(
                        "Work at height return",
                        ("Scaffolding removed?", "DROPDOWN", True, yes_no),
                    ),
                ),
            ],
        )
        self._permit_type(
            "Vendor performance report",
            "SLA",
            [
                (
                    "Quality",
                    PermitSection.Role.FORM,
                    Decimal("0.6"),
                    self._checklist(
                        "Vendor quality",
                        ("Cleanliness (0-10)", "NUMERIC", True, {}),
                        ("Punctuality (0-10)", "NUMERIC", True, {}),
                    ),
                ),
                (
                    "Safety",
                    PermitSection.Role.FORM,
                    Decimal("0.4"),
                    self._checklist("Vendor safety", ("PPE worn (0-10)", "NUMERIC", True, {})),
                ),
            ],
        )
        self.vendors = [
            Vendor.objects.update_or_create(
                code=code, defaults={"name": name, "email": email, "client": self.client}
            )[0]
            for code, name, email in [
                ("V-SPARKS", "Sparks Electrical", "works@sparks-electrical.example"),
                ("V-COOLAIR", "CoolAir HVAC Services", "service@coolair.example"),
            ]
        ]

    def _permits(self) -> None:
        """A hot-work permit waiting for the verifier, so the verifier lands on a decision."""
        if WorkPermit.objects.filter(client=self.client).exists():
            return
        actions.create_permit(
            permit_type=self.hot_work,
            site=self.mumbai,
            vendor=self.vendors[0],
            requester=self.technicians[0],
            answers={
                1: {1: "Basement pump room", 2: "Weld a cracked pipe bracket", 3: "Yes", 4: "Yes"},
                2: {1: "security.mum@acme.example"},
            },
            verifiers=[self.verifier],
            approvers=[self.approver],
        )

    # --- planned work ------------------------------------------------------------------------
    def _job(self, name: str, site: BusinessUnit, **fields) -> Job:
        job, _ = Job.objects.update_or_create(
            name=name,
            site=site,
            parent=None,
            defaults={
                "valid_from": self.now.replace(month=1, day=1, hour=0, minute=0),
                "valid_to": self.now.replace(year=self.now.year + 1, month=12, day=31),
                **fields,
            },
        )
        return job

    def _tour(
        self, name: str, site: BusinessUnit, cron: str, person: People, points: tuple[str, ...]
    ) -> Job:
        tour = self._job(name, site, identifier=Identifier.INTERNALTOUR, cron=cron, people=person)
        for seqno, point in enumerate(points, start=1):
            Job.objects.update_or_create(
                parent=tour,
                seqno=seqno,
                defaults={
                    "name": point,
                    "identifier": Identifier.INTERNALTOUR,
                    "site": site,
                    "valid_from": tour.valid_from,
                    "valid_to": tour.valid_to,
                    "people": person,
                },
            )
        return tour

    def _jobs(self) -> None:
        raise_ticket = self.codes[(Category.TICKETCATEGORY, "RAISETICKETNOTIFY")]
        chiller_checklist = self._checklist(
            "Chiller PPM",
            ("Condenser pressure (bar)", "NUMERIC", False, {"min_value": 8, "max_value": 12}),
            ("Oil leak visible?", "DROPDOWN", False, {"options": "Yes,No", "alert_on": "Yes"}),
        )
        boiler_checklist = self._checklist(
            "Boiler PPM",
            ("Flue temperature (°C)", "NUMERIC", False, {"min_value": 120, "max_value": 220}),
            ("Water level normal?", "DROPDOWN", False, {"options": "Yes,No", "alert_on": "No"}),
        )
        chiller, _ = Asset.objects.update_or_create(
            code="ACME-MUM-CH1", defaults={"name": "Chiller 1", "site": self.mumbai}
        )
        boiler, _ = Asset.objects.update_or_create(
            code="ACME-NYC-B1", defaults={"name": "Boiler 1", "site": self.new_york}
        )
        mumbai_tech, new_york_tech = self.technicians
        self.chiller_job = self._job(
            "Daily chiller PPM",
            self.mumbai,
            identifier=Identifier.PPM,
            cron="0 9 * * *",
            asset=chiller,
            question_set=chiller_checklist,
            group=self.team,
            ticket_category=raise_ticket,
        )
        round_job = self._tour(
            "Night security round",
            self.mumbai,
            "0 21 * * *",
            mumbai_tech,
            ("Main gate", "Basement parking", "Roof access"),
        )
        patrol_job = self._tour(
            "Evening lobby patrol",
            self.new_york,
            "0 19 * * *",
            new_york_tech,
            ("Revolving doors", "Loading dock"),
        )
        hygiene_job = self._job(
            "Washroom hygiene check",
            self.mumbai,
            identifier=Identifier.TASK,
            cron="0 11,16 * * *",
            people=mumbai_tech,
        )
        boiler_job = self._job(
            "Daily boiler PPM",
            self.new_york,
            identifier=Identifier.PPM,
            cron="0 8 * * *",
            asset=boiler,
            question_set=boiler_checklist,
            people=new_york_tech,
        )
        lobby_job = self._job(
            "Lobby and entrance check",
            self.new_york,
            identifier=Identifier.TASK,
            cron="30 10 * * *",
            people=new_york_tech,
        )
        self.jobs = [self.chiller_job, round_job, hygiene_job, boiler_job, patrol_job, lobby_job]
        EscalationMatrix.objects.update_or_create(
            job=self.chiller_job,
            level=1,
            client=self.client,
            defaults={"frequency": "HOUR", "frequency_value": 1},
        )
        for level, minutes, assignee in [(1, 30, mumbai_tech), (2, 120, None)]:
            EscalationMatrix.objects.update_or_create(
                client=self.client,
                site=None,
                job=None,
                category=raise_ticket,
                level=level,
                defaults={
                    "frequency": "MINUTE",
                    "frequency_value": minutes,
                    "assign_people": assignee,
                    "notify_email": "noc@acme.example",
                },
            )

    def _history(self) -> None:
        """Each job's instances from a month ago to the end of the site's today: done, a few
        missed (auto-closed) or partly done, one under way; then the PPM jobs' future."""
        for index, job in enumerate(self.jobs):
            today = timezone.localtime(self.now, job.site.tzinfo).date()
            start = datetime.combine(
                today - timedelta(days=HISTORY_DAYS), time.min, tzinfo=job.site.tzinfo
            )
            end = datetime.combine(today + timedelta(days=1), time.min, tzinfo=job.site.tzinfo)
            plan_between(job, start - timedelta(seconds=1), end - timedelta(seconds=1))
            self._settle_past(job, index)
        for job in self.jobs:
            generate_jobneeds(job_id=job.pk, now=self.now)

    def _settle_past(self, job: Job, index: int) -> None:
        untouched = Jobneed.objects.filter(
            job=job,
            parent__isnull=True,
            status=JobneedStatus.ASSIGNED,
            started_at__isnull=True,
            plan_at__lt=self.now,
        )
        done, missed, partly = [], [], []
        for need in untouched.order_by("plan_at"):
            if need.expiry_at > self.now:  # under way now
                Jobneed.objects.filter(pk=need.pk).update(
                    status=JobneedStatus.INPROGRESS,
                    started_at=need.plan_at + timedelta(minutes=5),
                    performed_by=job.people,
                )
                continue
            bucket = (need.plan_at.toordinal() + index) % 9
            if bucket == 4:
                missed.append(need.pk)
            elif bucket == 7 and job.identifier == Identifier.INTERNALTOUR:
                partly.append(need.pk)
            else:
                done.append(need.pk)
        for need in Jobneed.objects.filter(pk__in=done + partly):
            Jobneed.objects.filter(pk=need.pk).update(
                status=JobneedStatus.COMPLETED
                if need.pk in done
                else JobneedStatus.PARTIALLYCOMPLETED,
                started_at=need.plan_at + timedelta(minutes=7),
                ended_at=need.plan_at + timedelta(minutes=38),
                performed_by=job.people or self.technicians[0],
            )
        Jobneed.objects.filter(pk__in=missed).update(
            status=JobneedStatus.AUTOCLOSED,
            autoclosed_at=self.now,
            autoclose_notified_at=self.now,  # history: nobody is mailed about it now
        )
        checkpoints = Jobneed.objects.filter(parent__in=done + partly)
        checkpoints.filter(Q(parent__in=done) | Q(seqno=1)).update(
            status=JobneedStatus.COMPLETED, ended_at=self.now
        )
        checkpoints.filter(parent__in=partly, seqno__gt=1).update(status=JobneedStatus.AUTOCLOSED)
        Jobneed.objects.filter(parent__in=missed).update(status=JobneedStatus.AUTOCLOSED)
        for seqno, answer in ((1, "10.4"), (2, "No")):
            JobneedDetails.objects.filter(jobneed__in=done, seqno=seqno, answer="").update(
                answer=answer if job.site == self.mumbai else {1: "176", 2: "Yes"}[seqno]
            )

    # --- tickets and punches -------------------------------------------------------------------
    def _tickets(self) -> None:
        """Tickets of the last weeks, some still open, with their history."""
        category = {
            code: ta for (cat, code), ta in self.codes.items() if cat == Category.TICKETCATEGORY
        }
        mum_tech, nyc_tech = self.technicians
        mum_lead, nyc_lead = self.in_charges
        for days_ago, site, raiser, assignee, code, priority, status, description in [
            (0, self.mumbai, mum_tech, mum_tech, "PLUMBING", "HIGH", "OPEN",
             "Water leaking under the chiller plant room door"),
            (0, self.new_york, nyc_tech, nyc_tech, "ELECTRICAL", "MEDIUM", "NEW",
             "Lobby light flickering near the east entrance"),
            (1, self.mumbai, mum_lead, mum_tech, "HVAC", "MEDIUM", "ONHOLD",
             "Meeting room 4 too warm: AC blows at 27 °C"),
            (2, self.new_york, nyc_lead, nyc_tech, "HOUSEKEEPING", "LOW", "RESOLVED",
             "Spill on the 3rd-floor corridor carpet"),
            (4, self.mumbai, mum_tech, mum_tech, "ELECTRICAL", "HIGH", "CLOSED",
             "Basement pump tripping the breaker"),
            (6, self.mumbai, mum_lead, mum_tech, "HOUSEKEEPING", "LOW", "CLOSED",
             "Pantry bins not emptied on weekends"),
            (9, self.new_york, nyc_tech, nyc_tech, "PLUMBING", "MEDIUM", "CLOSED",
             "Slow drain in the 2nd-floor washroom"),
            (13, self.mumbai, mum_tech, mum_tech, "HVAC", "HIGH", "CLOSED",
             "Server room AC alarm at night"),
            (20, self.new_york, nyc_lead, nyc_tech, "ELECTRICAL", "LOW", "CANCELLED",
             "Replace exit sign bulb (duplicate)"),
        ]:  # fmt: skip
            ticket = Ticket.objects.filter(site=site, description=description).first()
            if ticket is not None:
                continue
            # Today's tickets are raised today in the site's day, however early it is there.
            local = timezone.localtime(self.now, site.tzinfo)
            since_midnight = local - local.replace(hour=0, minute=0, second=0, microsecond=0)
            raised_at = (
                self.now - timedelta(days=days_ago) - min(timedelta(hours=3), since_midnight / 2)
            )
            ticket = Ticket.objects.create(
                site=site,
                description=description,
                category=category[code],
                priority=priority,
                status=status,
                assigned_people=assignee,
                created_by=raiser,
                modified_by=assignee,
            )
            step = min(timedelta(hours=1), (self.now - raised_at) / 4)
            Ticket.objects.filter(pk=ticket.pk).update(
                created_at=raised_at, modified_at=raised_at + 2 * step
            )
            TicketEvent.objects.create(
                ticket=ticket,
                at=raised_at,
                actor=raiser,
                action=TicketEvent.Action.CREATED,
                details={"status": "NEW", "version": 1},
            )
            said = CONVERSATIONS.get(description, [])
            for n, (speaker, text) in enumerate(said, start=1):
                TicketComment.objects.create(
                    ticket=ticket,
                    author=raiser if speaker == "raiser" else assignee,
                    text=text,
                    at=raised_at + step * n / (len(said) + 1),
                )
            if status != "NEW":
                TicketEvent.objects.create(
                    ticket=ticket,
                    at=raised_at + 2 * step,
                    actor=assignee,
                    action=TicketEvent.Action.UPDATED,
                    details={
                        "status": status,
                        "version": 2,
                        "changes": [
                            {
                                "field": "status",
                                "from": "New",
                                "to": Ticket.Status(status).label,
                            }
                        ],
                    },
                )
                Ticket.objects.filter(pk=ticket.pk).update(version=2)

    def _attendance(self) -> None:
        """Every site person's punch in at 08:55 and out at 17:05, site time, each day of the
        month up to now."""
        for person, site in zip(self.in_charges + self.technicians, self.sites * 2, strict=True):
            today = timezone.localtime(self.now, site.tzinfo).date()
            for days_ago in range(HISTORY_DAYS, -1, -1):
                day = today - timedelta(days=days_ago)
                for kind, clock in (("PUNCH_IN", time(8, 55)), ("PUNCH_OUT", time(17, 5))):
                    at = datetime.combine(day, clock, tzinfo=site.tzinfo)
                    if at > self.now:
                        continue
                    AttendanceEvent.objects.get_or_create(
                        uuid=uuid.uuid5(DEMO_NAMESPACE, f"{person.loginid}:{day}:{kind}"),
                        defaults={
                            "person": person,
                            "site": site,
                            "kind": kind,
                            "at": at,
                            "latitude": site.latitude,
                            "longitude": site.longitude,
                            "inside_geofence": True,
                            "face_outcome": FaceOutcome.MATCH,
                            "face_matched": True,
                        },
                    )
