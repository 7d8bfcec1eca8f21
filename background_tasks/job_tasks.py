"""Scheduled-job tasks: PPM generation, auto-close and the worker heartbeat."""

from __future__ import annotations

from celery import shared_task

from apps.activity.ppm import generate_jobneeds
from apps.activity.results import AutocloseResult, GenerationResult
from apps.core.services import HeartbeatResult, record_heartbeat
from apps.core.tasks.legacy import UpstreamForm, accepts_upstream, rename
from apps.core.tasks.utils import task_retry_policy
from apps.y_helpdesk.autoclose import autoclose


@shared_task(name="create_ppm_job", **task_retry_policy("database_heavy"))
@accepts_upstream(UpstreamForm("jobid=None", rename(job_id="jobid")))
def create_ppm_job(job_id: int | None = None) -> GenerationResult:
    """Expand enabled PPM jobs (or the one job `job_id`) into planned instances and reminders."""
    return generate_jobneeds(job_id=job_id)


@shared_task(name="auto_close_jobs", bind=True, **task_retry_policy("bulk_email"))
@accepts_upstream(UpstreamForm("jobneedid=None", rename(jobneed_id="jobneedid")))
def autoclose_job(self, jobneed_id: int | None = None) -> AutocloseResult:
    """Close expired unfinished work of the last day, raise tickets, tell the sites."""
    return autoclose(jobneed_id=jobneed_id, task_id=self.request.id or "")


@shared_task(name="task_every_min", bind=True, **task_retry_policy("default"))
def task_every_min(self) -> HeartbeatResult:
    """Worker heartbeat: which worker ran it, when, and how late against its minute slot."""
    # Beat's messages carry periodic_task_name; a run sent by hand has no schedule to be late on.
    scheduled = bool(self.request.get("periodic_task_name"))
    beat = record_heartbeat(
        worker=self.request.hostname or "unknown",
        task_id=self.request.id or "",
        published_at=self.request.get("published_at") if scheduled else None,
    )
    return {
        "worker": beat.worker,
        "ran_at": beat.ran_at.isoformat(),
        "lateness_seconds": beat.lateness_seconds,
    }
