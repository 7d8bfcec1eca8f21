"""What a person's save of a job triggers: replace the stale schedule, enqueue after commit."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from apps.activity.models import Job
from apps.activity.ppm import replace_future_instances
from apps.core.enqueue import enqueue_on_commit
from apps.peoples.models import People

# Editing one of these changes what the future instances would be.
SCHEDULE_FIELDS = frozenset(
    {
        "cron",
        "valid_from",
        "valid_to",
        "plan_duration_minutes",
        "grace_minutes",
        "expiry_minutes",
        "enabled",
        "question_set",
        "asset",
        "people",
        "group",
        "site",
        "ticket_category",
        "priority",
        "name",
        "identifier",
    }
)


def save_job(job: Job, *, created: bool, changed: Iterable[str], by: People | None = None) -> None:
    """Save `job` as `by` changed it (recorded as its creator or modifier: the job's reminders
    go to them), replace its stale schedule and plan it after commit."""
    if by is not None:
        if created:
            job.created_by = by
        job.modified_by = by
    with transaction.atomic():
        job.save()
        if not created and SCHEDULE_FIELDS & set(changed):
            replace_future_instances(job)
        if job.enabled:
            enqueue_on_commit("create_ppm_job", job.pk)
