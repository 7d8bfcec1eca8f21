"""Small builders for domain rows used across tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count

from django.utils import timezone

from apps.activity.models import Identifier, Job, Jobneed, Question, QuestionSet
from apps.onboarding.models import BusinessUnit, TypeAssist
from apps.peoples.models import GroupMembership, People, PeopleGroup

_seq = count(1)


def client_and_site(tz: str = "Asia/Kolkata") -> tuple[BusinessUnit, BusinessUnit]:
    n = next(_seq)
    client = BusinessUnit.objects.create(code=f"C{n}", name=f"Client {n}", kind="CLIENT")
    site = BusinessUnit.objects.create(
        code=f"S{n}", name=f"Site {n}", kind="SITE", parent=client, time_zone=tz
    )
    return client, site


def lookup(category: str, code: str) -> TypeAssist:
    return TypeAssist.objects.get_or_create(category=category, code=code, defaults={"name": code})[
        0
    ]


def person(site: BusinessUnit, *, designation: str = "", **fields) -> People:
    n = next(_seq)
    defaults = {
        "email": f"person{n}@facility.test",
        "client": site.client,
        "site": site,
        "is_verified": True,
        "name": f"Person {n}",
    }
    if designation:
        defaults["designation"] = lookup("DESIGNATION", designation)
    return People.objects.create_user(f"p{n}", None, **(defaults | fields))


def group(site: BusinessUnit, *members: People) -> PeopleGroup:
    team = PeopleGroup.objects.create(client=site.client, name=f"Group {next(_seq)}")
    for member in members:
        GroupMembership.objects.create(group=team, people=member)
    return team


def checklist(client: BusinessUnit) -> QuestionSet:
    qset = QuestionSet.objects.create(name=f"Checklist {next(_seq)}", client=client)
    Question.objects.create(
        question_set=qset,
        seqno=1,
        question="Pressure (bar)",
        answer_type="NUMERIC",
        min_value=1,
        max_value=5,
    )
    Question.objects.create(
        question_set=qset,
        seqno=2,
        question="Leak?",
        answer_type="DROPDOWN",
        options="Yes,No",
        alert_on="Yes",
    )
    return qset


def job(site: BusinessUnit, assignee: People, *, now: datetime | None = None, **fields) -> Job:
    now = now or timezone.now()
    defaults = {
        "name": f"Job {next(_seq)}",
        "identifier": Identifier.PPM,
        "cron": "0 9 * * *",
        "valid_from": now - timedelta(days=1),
        "valid_to": now + timedelta(days=60),
        "plan_duration_minutes": 60,
        "grace_minutes": 15,
        "expiry_minutes": 15,
        "people": assignee,
        "site": site,
    }
    return Job.objects.create(**(defaults | fields))


def jobneed(site: BusinessUnit, **fields) -> Jobneed:
    """An unfinished task of `site` planned three hours ago that expired half an hour ago."""
    now = timezone.now()
    defaults = {
        "identifier": Identifier.TASK,
        "description": "Boiler check",
        "plan_at": now - timedelta(hours=3),
        "expiry_at": now - timedelta(minutes=30),
        "site": site,
        "client": site.client,
    }
    return Jobneed.objects.create(**(defaults | fields))


def permit_types(client: BusinessUnit):
    """A work-permit type (form, contacts and return sections) and an SLA type (two weighted
    sections)."""
    from apps.work_order_management.models import PermitSection, PermitType

    def qset(name: str, *questions: tuple[str, str, bool]) -> QuestionSet:
        qs = QuestionSet.objects.create(name=name, client=client)
        for seqno, (text, answer_type, mandatory) in enumerate(questions, start=1):
            Question.objects.create(
                question_set=qs,
                seqno=seqno,
                question=text,
                answer_type=answer_type,
                is_mandatory=mandatory,
            )
        return qs

    hot_work = PermitType.objects.create(name="Hot Work Permit", kind="WP", client=client)
    PermitSection.objects.create(
        permit_type=hot_work,
        seqno=1,
        name="Work details",
        question_set=qset(
            "Hot work",
            ("Work location", "SINGLELINE", True),
            ("Fire watch assigned?", "DROPDOWN", False),
        ),
    )
    PermitSection.objects.create(
        permit_type=hot_work,
        seqno=2,
        name="Contacts",
        role="CONTACTS",
        question_set=qset("Contacts", ("Security contacts", "EMAILID", False)),
    )
    PermitSection.objects.create(
        permit_type=hot_work,
        seqno=3,
        name="Return",
        role="RETURN",
        question_set=qset("Return", ("Area left safe?", "SINGLELINE", True)),
    )
    sla = PermitType.objects.create(name="Vendor performance report", kind="SLA", client=client)
    PermitSection.objects.create(
        permit_type=sla,
        seqno=1,
        name="Quality",
        weight="0.6",
        question_set=qset(
            "Quality",
            ("Cleanliness", "NUMERIC", False),
            ("Punctuality", "NUMERIC", False),
            ("Uniform", "NUMERIC", False),
            ("Remarks", "MULTILINE", False),
        ),
    )
    PermitSection.objects.create(
        permit_type=sla,
        seqno=2,
        name="Safety",
        weight="0.4",
        question_set=qset("Safety", ("PPE", "NUMERIC", False), ("Incidents", "NUMERIC", False)),
    )
    return hot_work, sla
