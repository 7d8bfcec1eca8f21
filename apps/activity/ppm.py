"""Expand scheduled jobs into planned instances (Jobneeds), their checklists and reminders.

Re-running is harmless: the database's unique (job, plan time) constraint, not a read-then-write,
keeps one instance per slot, and reminders are unique per (instance, rule). Each job costs a
fixed number of queries, whatever the number of instances it expands into.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from croniter import croniter
from croniter.croniter import CroniterError
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.activity.models import (
    Asset,
    Identifier,
    Job,
    Jobneed,
    JobneedDetails,
    JobneedStatus,
    Question,
    Reminder,
)
from apps.activity.results import GenerationResult

logger = logging.getLogger(__name__)

MAX_INSTANCES_PER_JOB = 5000  # a cron of every minute over a month must not flood the table


def plan_times(job: Job, start: datetime, end: datetime) -> list[datetime]:
    """The cron's fire times in (start, end], read in the site's time zone, returned in UTC."""
    local_start = start.astimezone(job.site.tzinfo)
    schedule = croniter(job.cron, local_start)
    times: list[datetime] = []
    while len(times) < MAX_INSTANCES_PER_JOB:
        fire = schedule.get_next(datetime)
        if fire > end:
            break
        times.append(fire.astimezone(UTC))
    return times


def generate_jobneeds(job_id: int | None = None, now: datetime | None = None) -> GenerationResult:
    """Expand every enabled PPM job (or the one job `job_id`, of any kind) ahead of `now`."""
    now = now or timezone.now()
    horizon = now + timedelta(days=settings.PPM_HORIZON_DAYS)
    jobs = (
        Job.objects.filter(enabled=True, parent__isnull=True)
        .exclude(asset__status=Asset.Status.SCRAPPED)
        .select_related("site")
    )
    jobs = jobs.filter(pk=job_id) if job_id is not None else jobs.filter(identifier=Identifier.PPM)
    report = GenerationResult(jobs=0, instances_created=0, reminders_created=0, failed=[])
    for job in jobs:
        report["jobs"] += 1
        start = max(filter(None, [now, job.valid_from, job.last_generated_at]))
        try:
            times = plan_times(job, start, min(job.valid_to, horizon))
        except (CroniterError, ValueError, KeyError) as exc:
            logger.warning("ppm_bad_schedule job=%s error=%s", job.pk, exc)
            report["failed"].append({"job_id": job.pk, "error": f"bad cron {job.cron!r}: {exc}"})
            continue
        with transaction.atomic():
            report["instances_created"] += _create_instances(job, times)
            report["reminders_created"] += _create_reminders(job, now)
            if times:
                Job.objects.filter(pk=job.pk).update(last_generated_at=times[-1])
    if job_id is not None and report["jobs"] == 0:
        report["failed"].append({"job_id": job_id, "error": "no enabled job with this id"})
    return report


def plan_between(job: Job, start: datetime, end: datetime) -> int:
    """Plan the job's instances (with checkpoints and checklists, no reminders) at its cron's
    times in (start, end], past ones too: how many were new."""
    return _create_instances(job, plan_times(job, start, end))


def _create_instances(job: Job, times: list[datetime]) -> int:
    if not times:
        return 0
    offset = job.expiry_offset
    common = {
        "job": job,
        "identifier": job.identifier,
        "description": job.name,
        "grace_minutes": job.grace_minutes,
        "status": JobneedStatus.ASSIGNED,
        "job_type": Jobneed.JobType.SCHEDULE,
        "people_id": job.people_id,
        "group_id": job.group_id,
        "asset_id": job.asset_id,
        "question_set_id": job.question_set_id,
        "site_id": job.site_id,
        "client_id": job.client_id,
        "ticket_category_id": job.ticket_category_id,
        "priority": job.priority,
    }
    before = Jobneed.objects.filter(job=job, parent__isnull=True).count()
    Jobneed.objects.bulk_create(
        [Jobneed(plan_at=t, expiry_at=t + offset, **common) for t in times],
        ignore_conflicts=True,
    )
    window = Jobneed.objects.filter(
        job=job, parent__isnull=True, plan_at__gte=times[0], plan_at__lte=times[-1]
    )
    checkpoints = list(job.checkpoints.filter(enabled=True).order_by("seqno"))
    if checkpoints:
        parents = list(
            window.filter(checkpoints__isnull=True).values_list("pk", "plan_at", "expiry_at")
        )
        Jobneed.objects.bulk_create(
            [
                Jobneed(
                    **common
                    | {
                        "job": point,
                        "description": point.name,
                        "asset_id": point.asset_id,
                        "question_set_id": point.question_set_id,
                    },
                    parent_id=parent_id,
                    seqno=point.seqno,
                    plan_at=plan_at,
                    expiry_at=expiry_at,
                )
                for parent_id, plan_at, expiry_at in parents
                for point in checkpoints
            ],
            ignore_conflicts=True,
        )
    _create_details(
        Jobneed.objects.filter(pk__in=window.values("pk"))
        | Jobneed.objects.filter(parent__in=window.values("pk"))
    )
    return Jobneed.objects.filter(job=job, parent__isnull=True).count() - before


def _create_details(jobneeds) -> None:
    """Copy each question of the instance's checklist into an unanswered detail row."""
    pending = list(
        jobneeds.filter(question_set__isnull=False, details__isnull=True).values_list(
            "pk", "question_set_id"
        )
    )
    questions: dict[int, list[Question]] = {}
    for question in Question.objects.filter(question_set_id__in={q for _, q in pending}):
        questions.setdefault(question.question_set_id, []).append(question)
    JobneedDetails.objects.bulk_create(
        [
            JobneedDetails(
                jobneed_id=jobneed_id, **{f: getattr(q, f) for f in Question.RULE_FIELDS}
            )
            for jobneed_id, qset_id in pending
            for q in questions.get(qset_id, [])
        ],
        ignore_conflicts=True,
    )


def _create_reminders(job: Job, now: datetime) -> int:
    rules = list(job.escalation_rules.all())
    if not rules:
        return 0
    future = list(
        Jobneed.objects.filter(job=job, parent__isnull=True, plan_at__gt=now).values_list(
            "pk", "plan_at", "people_id", "group_id"
        )
    )
    before = Reminder.objects.filter(job=job).count()
    Reminder.objects.bulk_create(
        [
            Reminder(
                description=f"Reminder for {job.name}",
                job=job,
                jobneed_id=jobneed_id,
                rule=rule,
                site_id=job.site_id,
                due_at=plan_at - rule.delay,
                plan_at=plan_at,
                people_id=people_id,
                group_id=group_id,
                extra_emails=rule.notify_email,
            )
            for jobneed_id, plan_at, people_id, group_id in future
            for rule in rules
        ],
        ignore_conflicts=True,
    )
    return Reminder.objects.filter(job=job).count() - before


def replace_future_instances(job: Job, now: datetime | None = None) -> int:
    """An edited schedule replaces the job's future instances nobody has touched yet."""
    now = now or timezone.now()
    deleted, _ = Jobneed.objects.filter(
        job=job,
        parent__isnull=True,
        plan_at__gt=now,
        status=JobneedStatus.ASSIGNED,
        started_at__isnull=True,
    ).delete()
    Job.objects.filter(pk=job.pk).update(last_generated_at=None)
    return deleted
