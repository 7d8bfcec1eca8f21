"""E-mail tasks: work-permit and SLA notifications, reminders and NOC mismatch alerts."""

from __future__ import annotations

from celery import shared_task

from apps.activity.reminders import send_due_reminders
from apps.core.tasks.utils import task_retry_policy


@shared_task(name="send_reminder_email", bind=True, **task_retry_policy("email"))
def send_reminder_email(self) -> dict[str, int]:
    """Mail each due, unsent reminder to its people, group and extra addresses, once."""
    return send_due_reminders(task_id=self.request.id or "").as_dict()
