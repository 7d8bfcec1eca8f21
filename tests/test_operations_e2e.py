"""Operations end to end: web pages and beat tasks through a real worker and a real SMTP server."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from celery.result import AsyncResult
from django.utils import timezone

from apps.activity.models import Jobneed, Reminder
from apps.peoples.models import People
from apps.y_helpdesk.models import EscalationMatrix, Ticket
from background_tasks import (
    alert_sendmail,
    autoclose_job,
    create_ppm_job,
    send_reminder_email,
    ticket_escalation,
)
from tests import factories
from tests.support.waiting import patience

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world():
    client, site = factories.client_and_site("Asia/Kolkata")
    in_charge = factories.person(site, designation="SITEINCHARGE", email="incharge@facility.test")
    operator = People.objects.create_superuser(
        "operator", "pw", email="operator@facility.test", client=client, site=site
    )
    return {"client": client, "site": site, "in_charge": in_charge, "operator": operator}


def test_ticket_saved_on_the_web_page_is_mailed_after_commit(worker, mail_sink, client, world):
    client.force_login(world["operator"])
    response = client.post(
        "/tickets/new",
        {
            "description": "Water leak in basement",
            "site": world["site"].pk,
            "priority": "HIGH",
            "status": "NEW",
            "assigned_people": world["in_charge"].pk,
        },
    )
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    ((recipients, message),) = mail_sink.wait_for(1)
    assert message["Subject"] == f"Ticket #{ticket.number} is created at site {world['site'].name}"
    assert sorted(recipients) == ["incharge@facility.test", "operator@facility.test"]
    assert "Water leak in basement" in message.get_body(("plain",)).get_content()
    assert "Water leak in basement" in message.get_body(("html",)).get_content()

    client.post(
        f"/tickets/{ticket.pk}/edit",
        {
            "description": "Water leak in basement",
            "site": world["site"].pk,
            "priority": "HIGH",
            "status": "OPEN",
            "assigned_people": world["in_charge"].pk,
        },
    )
    messages = mail_sink.wait_for(2)
    assert messages[1][1]["Subject"].startswith(f"Ticket #{ticket.number} is updated")
    assert ticket.events.count() == 2


def test_job_saved_on_the_web_page_is_expanded_by_the_worker(worker, client, world):
    client.force_login(world["operator"])
    now = timezone.now()
    response = client.post(
        "/jobs/new",
        {
            "name": "Chiller PPM",
            "identifier": "PPM",
            "cron": "0 6 * * 1",
            "valid_from": (now - timedelta(days=1)).strftime("%Y-%m-%d %H:%M"),
            "valid_to": (now + timedelta(days=90)).strftime("%Y-%m-%d %H:%M"),
            "plan_duration_minutes": 60,
            "grace_minutes": 0,
            "expiry_minutes": 0,
            "site": world["site"].pk,
            "people": world["in_charge"].pk,
            "priority": "MEDIUM",
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content
    deadline = time.monotonic() + patience(30)
    while not Jobneed.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert 4 <= Jobneed.objects.count() <= 5  # Mondays 06:00 in the 30-day horizon


def test_autoclose_through_the_worker_mails_once_and_survives_a_failed_send(
    worker, mail_sink, world
):
    now = timezone.now()
    for n in range(3):
        Jobneed.objects.create(
            identifier="TASK",
            description=f"Round {n}",
            plan_at=now - timedelta(hours=2),
            expiry_at=now - timedelta(minutes=10),
            site=world["site"],
            client=world["client"],
            ticket_category=factories.lookup("TICKETCATEGORY", "AUTOCLOSENOTIFY"),
        )
    # The mail server fails every message (a transient error) until the first run has asked
    # for its retry; a single failure would let a quick retry succeed before anyone looks.
    mail_sink.reject_next = 10_000
    first = autoclose_job.delay()
    deadline = time.monotonic() + patience(30)
    while AsyncResult(first.id).state != "RETRY" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert AsyncResult(first.id).state == "RETRY"
    first.revoke()  # stand in for the retry: the next beat run must finish the job alone
    mail_sink.reject_next = 0
    assert Jobneed.objects.filter(status="AUTOCLOSED").count() == 3  # the state change stayed

    outcome = autoclose_job.apply_async(ignore_result=False).get(timeout=patience(30))
    assert (outcome["closed"], outcome["mails_sent"]) == (0, 3)
    assert (
        autoclose_job.apply_async(ignore_result=False).get(timeout=patience(30))["mails_sent"] == 0
    )
    messages = mail_sink.wait_for(3)
    assert len(messages) == 3
    assert {m["Subject"][:26] for _, m in messages} == {"AUTOCLOSE TASK planned on "}
    assert all(rcpt == ["incharge@facility.test"] for rcpt, _ in messages)
    assert not Jobneed.objects.filter(autoclose_notified_at__isnull=True).exists()


def test_escalation_reminders_and_alerts_through_the_worker(worker, mail_sink, world):
    category = factories.lookup("TICKETCATEGORY", "PLUMBING")
    EscalationMatrix.objects.create(
        client=world["client"],
        category=category,
        level=1,
        frequency="MINUTE",
        frequency_value=5,
        notify_email="noc@facility.test",
    )
    ticket = Ticket.objects.create(
        description="Blocked drain",
        site=world["site"],
        category=category,
        assigned_people=world["in_charge"],
    )
    Ticket.objects.filter(pk=ticket.pk).update(created_at=timezone.now() - timedelta(minutes=6))
    assert ticket_escalation.apply_async(ignore_result=False).get(timeout=patience(30)) == {
        "escalated": 1,
        "mails_sent": 1,
    }
    assert ticket_escalation.apply_async(ignore_result=False).get(timeout=patience(30)) == {
        "escalated": 0,
        "mails_sent": 0,
    }

    job = factories.job(world["site"], world["in_charge"], cron="0 9 * * *")
    EscalationMatrix.objects.create(
        client=world["client"],
        job=job,
        level=1,
        frequency="DAY",
        frequency_value=40,
    )
    create_ppm_job.apply_async((job.pk,), ignore_result=False).get(timeout=patience(30))
    create_ppm_job.apply_async((job.pk,), ignore_result=False).get(timeout=patience(30))
    assert Reminder.objects.filter(due_at__lte=timezone.now()).count() == 30
    assert send_reminder_email.apply_async(ignore_result=False).get(timeout=patience(30)) == {
        "sent": 30,
        "failed_for_good": 0,
    }
    assert send_reminder_email.apply_async(ignore_result=False).get(timeout=patience(30)) == {
        "sent": 0,
        "failed_for_good": 0,
    }

    jobneed = Jobneed.objects.filter(job=job).first()
    Jobneed.objects.filter(pk=jobneed.pk).update(has_alerts=True)
    assert (
        alert_sendmail.apply_async((jobneed.pk, "observation"), ignore_result=False).get(
            timeout=30
        )["sent"]
        is True
    )
    assert (
        alert_sendmail.apply_async((jobneed.pk, "observation"), ignore_result=False).get(
            timeout=30
        )["sent"]
        is False
    )

    messages = mail_sink.wait_for(32)
    subjects = [m["Subject"] for _, m in messages]
    assert subjects[0].startswith(f"Escalation Level 1: Ticket #{ticket.number}")
    assert "noc@facility.test" in messages[0][0]
    assert sum(s.startswith("Reminder for ") for s in subjects) == 30
    assert subjects[-1].startswith("[READINGS ALERT] Site:")
    assert len(messages) == 32
