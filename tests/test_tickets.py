"""Ticket mails and escalation: scoping, once per level, reassignment, bounded queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.core.mail import TransientMailError, deliver
from apps.core.models import IdempotencyKey
from apps.y_helpdesk.models import EscalationMatrix, Ticket
from apps.y_helpdesk.services import escalate_due_tickets, record_ticket_saved, ticket_mail
from background_tasks.ticket_tasks import send_ticket_email
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    client, site = factories.client_and_site("America/New_York")
    creator = factories.person(site, email="creator@facility.test")
    assignee = factories.person(site, email=" Assignee@Facility.test ")
    member = factories.person(site, email="member@facility.test")
    category = factories.lookup("TICKETCATEGORY", "ELECTRICAL")
    return {
        "client": client,
        "site": site,
        "creator": creator,
        "assignee": assignee,
        "team": factories.group(site, member, assignee),
        "category": category,
    }


def make_ticket(world, *, age: timedelta = timedelta(hours=2), **fields) -> Ticket:
    ticket = Ticket.objects.create(
        **(
            {
                "description": "Lights out in lobby",
                "site": world["site"],
                "category": world["category"],
                "assigned_people": world["assignee"],
                "created_by": world["creator"],
            }
            | fields
        )
    )
    Ticket.objects.filter(pk=ticket.pk).update(created_at=timezone.now() - age)
    ticket.refresh_from_db()
    return ticket


def rule(world, level: int, minutes: int, **fields) -> EscalationMatrix:
    return EscalationMatrix.objects.create(
        client=world["client"],
        category=world["category"],
        level=level,
        frequency="MINUTE",
        frequency_value=minutes,
        **fields,
    )


def test_ticket_mail_goes_once_to_cleaned_recipients(world, mailoutbox) -> None:
    ticket = make_ticket(world, assigned_group=world["team"])
    mail = ticket_mail(ticket.pk, version=1)
    assert mail.subject == f"Ticket #{ticket.number} is created at site {world['site'].name}"
    assert mail.to == [
        "member@facility.test",
        "Assignee@Facility.test",
        "creator@facility.test",
    ] or (
        sorted(a.lower() for a in mail.to)
        == ["assignee@facility.test", "creator@facility.test", "member@facility.test"]
    )
    assert len(mail.to) == 3  # the assignee, also a group member, once
    deliver([mail])
    deliver([ticket_mail(ticket.pk, version=1)])
    assert len(mailoutbox) == 1
    assert "Lights out in lobby" in mailoutbox[0].body

    record_ticket_saved(ticket, world["creator"], created=False)
    updated = ticket_mail(ticket.pk, version=ticket.version)
    assert " is updated at site " in updated.subject
    deliver([updated])
    assert len(mailoutbox) == 2


def test_the_ticket_task_mails_a_version_once_however_often_it_runs(world, mailoutbox) -> None:
    ticket = make_ticket(world)
    # Two messages for one version (a redelivery, a duplicate enqueue): two task ids.
    first = send_ticket_email.apply(args=(ticket.pk,), kwargs={"version": 1}).get()
    again = send_ticket_email.apply(args=(ticket.pk,), kwargs={"version": 1}).get()
    assert (first["sent"], again["sent"], len(mailoutbox)) == (True, False, 1)
    key = IdempotencyKey.objects.get(key=f"ticket:{ticket.pk}:v1")
    assert key.status == IdempotencyKey.Status.DONE


def test_no_mail_leaves_inside_a_transaction(world, mailoutbox) -> None:
    """A mail sent before its transaction commits may tell of a change that is rolled back."""
    ticket = make_ticket(world)
    with pytest.raises(RuntimeError, match="after the transaction commits"), transaction.atomic():
        deliver([ticket_mail(ticket.pk, version=1)])
    assert mailoutbox == []
    assert not IdempotencyKey.objects.filter(key=f"ticket:{ticket.pk}:v1").exists()


def test_a_ticket_without_valid_recipients_has_an_empty_list(world) -> None:
    nobody = factories.person(world["site"], email="not-an-address")
    ticket = make_ticket(world, assigned_people=nobody, created_by=None)
    assert ticket_mail(ticket.pk, version=1).to == []


def test_escalates_one_level_per_run_when_due_and_mails_once(world, mailoutbox) -> None:
    supervisor = factories.person(world["site"], email="supervisor@facility.test")
    rule(
        world,
        1,
        60,
        assign_people=supervisor,
        notify_email="noc@facility.test",
        body="Call the electrician on duty.",
    )
    rule(world, 2, 90)
    ticket = make_ticket(world, age=timedelta(hours=2))  # both levels are due
    not_yet = make_ticket(world, age=timedelta(minutes=30))

    assert escalate_due_tickets()["escalated"] == 1
    ticket.refresh_from_db()
    assert (ticket.escalation_level, ticket.assigned_people) == (1, supervisor)
    assert ticket.events.get().details["level"] == 1
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.subject.startswith(f"Escalation Level 1: Ticket #{ticket.number}")
    assert "noc@facility.test" in mail.to and "supervisor@facility.test" in mail.to
    assert "Call the electrician on duty." in mail.body and "Next escalation:  level 2" in mail.body

    escalate_due_tickets()  # the next run: level 2 is due too
    escalate_due_tickets()  # nothing left to do
    ticket.refresh_from_db()
    not_yet.refresh_from_db()
    assert (ticket.escalation_level, not_yet.escalation_level) == (2, 0)
    assert ticket.assigned_people == supervisor  # the level-2 rule does not reassign
    assert [m.subject[:18] for m in mailoutbox] == ["Escalation Level 1", "Escalation Level 2"]


@pytest.mark.parametrize("status", ["RESOLVED", "ONHOLD", "CLOSED", "CANCELLED"])
def test_tickets_that_are_not_open_never_escalate(world, status) -> None:
    rule(world, 1, 1)
    make_ticket(world, status=status)
    assert escalate_due_tickets()["escalated"] == 0


def test_rules_are_scoped_to_their_client_site_and_category(world) -> None:
    rule(world, 1, 600)  # the client's general rule: 10 hours
    other_client, _ = factories.client_and_site()
    EscalationMatrix.objects.create(  # another client's rule for the same category
        client=other_client,
        category=world["category"],
        level=1,
        frequency="MINUTE",
        frequency_value=1,
    )
    second_site = factories.client_and_site()[1]
    second_site.parent = world["client"]
    second_site.save()
    rule(world, 1, 30, site=second_site)  # this site's own, stricter rule

    general = make_ticket(world)
    own_rule = make_ticket(world, site=second_site)
    other_category = make_ticket(world, category=factories.lookup("TICKETCATEGORY", "HVAC"))
    assert escalate_due_tickets()["escalated"] == 1
    levels = dict(Ticket.objects.values_list("pk", "escalation_level"))
    assert (levels[general.pk], levels[own_rule.pk], levels[other_category.pk]) == (0, 1, 0)


def test_a_crash_before_the_mail_is_made_good_by_the_next_run(
    world, mailoutbox, monkeypatch
) -> None:
    rule(world, 1, 60)
    make_ticket(world)
    monkeypatch.setattr(
        "django.core.mail.backends.locmem.EmailBackend.send_messages",
        lambda *a, **k: (_ for _ in ()).throw(ConnectionError("smtp down")),
    )
    with pytest.raises(TransientMailError):
        escalate_due_tickets()
    assert Ticket.objects.get().escalation_level == 1
    monkeypatch.undo()
    report = escalate_due_tickets()
    assert (report["escalated"], report["mails_sent"], len(mailoutbox)) == (0, 1, 1)


@pytest.mark.parametrize("rows", [4, 40])
def test_query_count_does_not_grow_with_tickets(world, rows, django_assert_max_num_queries) -> None:
    rule(world, 1, 60)
    rule(world, 2, 600)
    for _ in range(rows):
        make_ticket(world, assigned_group=world["team"])
    # 16 for escalating and mailing, 1 asking whether a partner listens to escalations.
    with django_assert_max_num_queries(17):
        report = escalate_due_tickets()
    assert (report["escalated"], report["mails_sent"]) == (rows, rows)
