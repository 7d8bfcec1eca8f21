"""Report tasks: PDF jobs and the clean-up of generated report files."""

from __future__ import annotations

from celery import shared_task

from apps.core.tasks.utils import task_retry_policy
from apps.reports.cleanup import delete_old_files
from apps.reports.pdf_jobs import render_job


@shared_task(name="generate_pdf_async", **task_retry_policy("default"))
def generate_pdf_async(job_uuid: str) -> dict[str, object]:
    """Render a requested PDF job with progress; the web page polls its status."""
    job = render_job(job_uuid)
    return {"job": str(job.uuid), "status": job.status, "error": job.error}


@shared_task(name="cleanup_reports_which_are_12hrs_old", **task_retry_policy("maintenance"))
def cleanup_reports_which_are_12hrs_old(dir_path: str, hours_old: float = 12) -> dict[str, int]:
    """Delete report files older than `hours_old` under `dir_path`, inside the reports area."""
    return delete_old_files(dir_path, hours_old)
