"""Due reminders (once, bounded retries) and checklist alert mails (once, with attachments)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from apps.activity.alerts import NothingToAlert, alert_mail, send_alert
from apps.activity.models import Jobneed, JobneedDetails, Reminder
from apps.activity.reminders import send_due_reminders
from apps.core.mail import TransientMailError
from apps.core.models import Attachment
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    client, site = factories.client_and_site("Pacific/Auckland")
    worker = factories.person(site, email="worker@facility.test")
    member = factories.person(site, email="member@facility.test")
    in_charge = factories.person(site, designation="SITEINCHARGE", email="incharge@facility.test")
    return {
        "client": client,
        "site": site,
        "worker": worker,
        "team": factories.group(site, member),
        "in_charge": in_charge,
    }


def reminder(world, *, due_in: timedelta, **fields) -> Reminder:
    now = timezone.now()
    return Reminder.objects.create(
        **(
            {
                "description": "Chiller service",
                "site": world["site"],
                "due_at": now + due_in,
                "plan_at": now + due_in + timedelta(hours=1),
                "people": world["worker"],
                "group": world["team"],
                "extra_emails": "ops@facility.test, , worker@facility.test",
            }
            | fields
        )
    )


def test_only_due_reminders_go_out_once_to_everyone(world, mailoutbox) -> None:
    due = reminder(world, due_in=-timedelta(minutes=1))
    later = reminder(world, due_in=timedelta(hours=1))
    assert send_due_reminders() == {"sent": 1, "failed_for_good": 0}
    assert send_due_reminders() == {"sent": 0, "failed_for_good": 0}
    (mail,) = mailoutbox
    assert mail.subject == "Reminder for Chiller service"
    assert mail.to == ["worker@facility.test", "member@facility.test", "ops@facility.test"]
    assert "Pacific/Auckland" in mail.body
    due.refresh_from_db()
    later.refresh_from_db()
    assert (due.status, later.status) == ("SENT", "PENDING")


def test_failures_are_retried_a_bounded_number_of_times_then_marked_failed(
    world, mailoutbox, monkeypatch, settings
) -> None:
    settings.REMINDER_MAX_ATTEMPTS = 2
    item = reminder(world, due_in=-timedelta(minutes=1))
    monkeypatch.setattr(
        "django.core.mail.backends.locmem.EmailBackend.send_messages",
        lambda *a, **k: (_ for _ in ()).throw(ConnectionRefusedError("smtp down")),
    )
    for _ in range(2):
        with pytest.raises(TransientMailError):
            send_due_reminders()
    item.refresh_from_db()
    assert (item.status, item.attempts) == ("FAILED", 2)
    assert item.last_error.startswith("ConnectionRefusedError")
    monkeypatch.undo()
    assert send_due_reminders()["sent"] == 0  # given up: not tried again
    assert mailoutbox == []


def test_a_reminder_with_nobody_to_tell_fails_clearly(world) -> None:
    nobody = reminder(world, due_in=-timedelta(minutes=1), people=None, group=None, extra_emails="")
    assert send_due_reminders()["failed_for_good"] == 1
    nobody.refresh_from_db()
    assert (nobody.status, nobody.last_error) == ("FAILED", "no valid recipient")


def checked_jobneed(world, **fields) -> Jobneed:
    now = timezone.now()
    jobneed = Jobneed.objects.create(
        **(
            {
                "identifier": "TASK",
                "description": "Boiler check",
                "plan_at": now - timedelta(hours=2),
                "expiry_at": now - timedelta(hours=1),
                "site": world["site"],
                "client": world["client"],
                "status": "COMPLETED",
                "has_alerts": True,
                "started_at": now - timedelta(hours=2),
                "ended_at": now - timedelta(minutes=90),
            }
            | fields
        )
    )
    JobneedDetails.objects.create(
        jobneed=jobneed,
        seqno=1,
        question="Pressure (bar)",
        answer_type="NUMERIC",
        min_value=1,
        max_value=5,
        answer="7.5",
        is_alert=True,
    )
    JobneedDetails.objects.create(
        jobneed=jobneed,
        seqno=2,
        question="Leak?",
        answer_type="DROPDOWN",
        options="Yes,No",
        alert_on="Yes",
        answer="No",
    )
    return jobneed


def test_observation_alert_lists_out_of_range_readings_once(world, mailoutbox) -> None:
    jobneed = checked_jobneed(world)
    assert send_alert(jobneed.pk, "observation") == {"sent": True, "attachments": 0}
    assert send_alert(jobneed.pk, "observation")["sent"] is False
    (mail,) = mailoutbox
    assert mail.subject == (
        f"[READINGS ALERT] Site:{world['site'].name} having checklist [Boiler check] - "
        "readings out of range"
    )
    assert ">> 1. Pressure (bar): 7.5  OUT OF RANGE (min 1.000, max 5.000" in mail.body
    assert "   2. Leak?: No" in mail.body
    assert 'style="background: #fdd; font-weight: bold;"' in mail.alternatives[0][0]
    jobneed.refresh_from_db()
    assert jobneed.alert_mail_sent_at is not None


def test_observation_alert_attaches_the_files_through_storage(world, mailoutbox) -> None:
    jobneed = checked_jobneed(world)
    detail = jobneed.details.get(seqno=1)
    photo = Attachment(
        owner_type="activity.jobneeddetails",
        owner_uuid=detail.uuid,
        filename="../../etc/passwd.jpg",
        content_type="image/jpeg",
        size=4,
    )
    photo.file.save("../../etc/passwd.jpg", ContentFile(b"JPEG"), save=True)
    assert photo.file.name.startswith(f"attachments/activity.jobneeddetails/{detail.uuid}/")
    assert send_alert(jobneed.pk, "observation", attach_files=True)["attachments"] == 1
    assert mailoutbox[0].attachments == [("../../etc/passwd.jpg", b"JPEG", "image/jpeg")]


def test_deviation_gets_its_own_mail_and_no_alert_is_a_clear_outcome(world, mailoutbox) -> None:
    jobneed = checked_jobneed(world, has_alerts=False, deviation=True)
    with pytest.raises(NothingToAlert, match="no out-of-range readings"):
        alert_mail(jobneed.pk, "observation")
    with pytest.raises(ValueError, match="event must be one of observation, deviation"):
        alert_mail(jobneed.pk, "explosion")
    send_alert(jobneed.pk, "deviation")
    assert mailoutbox[0].subject.startswith("[DEVIATION ALERT] TASK Boiler check at Site:")
    jobneed.refresh_from_db()
    assert jobneed.deviation_mail_sent_at is not None
