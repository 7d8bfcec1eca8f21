"""Due reminders: mailed once each; a failed send is tried again a bounded number of times.

A reminder goes to its person, the members of its group, its extra addresses and, as upstream
did, the person who created its job and the one who last changed it.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from apps.activity.models import Reminder
from apps.activity.results import ReminderResult
from apps.core.mail import Mail, clean_recipients, deliver, local_times
from apps.peoples.services import group_member_emails


def due_reminders(now: datetime):
    return Reminder.objects.filter(
        due_at__lte=now,
        status=Reminder.Status.PENDING,
        attempts__lt=settings.REMINDER_MAX_ATTEMPTS,
    )


def send_due_reminders(now: datetime | None = None, task_id: str = "") -> ReminderResult:
    now = now or timezone.now()
    reminders = list(
        due_reminders(now).select_related(
            "job__created_by", "job__modified_by", "site", "people", "group"
        )
    )
    if not reminders:
        return ReminderResult(sent=0, failed_for_good=0)
    groups = group_member_emails(r.group_id for r in reminders)
    mails = [
        Mail(
            key=f"reminder:{r.pk}",
            subject=f"Reminder for {r.job.name if r.job else r.description}",
            to=clean_recipients(
                [
                    r.people.email if r.people else None,
                    *groups.get(r.group_id, []),
                    r.extra_emails,
                    *_job_authors(r),
                ]
            ),
            template="activity/mail/reminder",
            context={
                "reminder": r,
                "time_zone": r.site.time_zone,
                "at": local_times(r.site.tzinfo, plan_at=r.plan_at),
            },
        )
        for r in reminders
    ]
    delivery = deliver(mails, task_id=task_id)
    reminder_ids = {m.key: r.pk for m, r in zip(mails, reminders, strict=True)}
    no_recipient = {m.key for m in mails if not m.to}
    Reminder.objects.filter(
        pk__in=[reminder_ids[k] for k in delivery.settled - no_recipient]
    ).update(status=Reminder.Status.SENT, sent_at=now)
    Reminder.objects.filter(pk__in=[reminder_ids[k] for k in no_recipient]).update(
        status=Reminder.Status.FAILED, last_error="no valid recipient"
    )
    report = ReminderResult(sent=len(delivery.sent), failed_for_good=len(no_recipient))
    if delivery.error is not None:
        # Count the attempt on each reminder still unsent, so one that keeps failing stops
        # being tried; then raise, so the task retries the transient error.
        unsent = due_reminders(now).filter(pk__in=reminder_ids.values())
        unsent.update(
            attempts=F("attempts") + 1,
            last_error=f"{type(delivery.error).__name__}: {delivery.error}"[:300],
        )
        Reminder.objects.filter(
            pk__in=reminder_ids.values(),
            status=Reminder.Status.PENDING,
            attempts__gte=settings.REMINDER_MAX_ATTEMPTS,
        ).update(status=Reminder.Status.FAILED)
        delivery.raise_error()
    return report


def _job_authors(reminder: Reminder) -> list[str]:
    """The e-mails of whoever created the reminder's job and whoever last changed it."""
    job = reminder.job
    authors = (job.created_by, job.modified_by) if job else ()
    return [person.email for person in authors if person is not None and person.is_active]
