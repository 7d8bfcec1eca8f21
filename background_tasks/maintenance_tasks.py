"""Maintenance tasks: cache warming and clean-ups."""

from __future__ import annotations

from celery import shared_task

from apps.core.tasks.utils import task_retry_policy
from apps.reports.dashboard import warm_all
from apps.reports.pdf_jobs import cleanup_expired
from apps.reports.results import DashboardWarmResult, PdfCleanupResult


@shared_task(name="cache_warming_scheduled", **task_retry_policy("maintenance"))
def cache_warming_scheduled() -> DashboardWarmResult:
    """Recompute every site's dashboard and the forms' people and lookup lists into the cache."""
    return warm_all()


@shared_task(name="cleanup_expired_pdf_tasks", **task_retry_policy("maintenance"))
def cleanup_expired_pdf_tasks() -> PdfCleanupResult:
    """Delete expired PDF jobs and their files."""
    return cleanup_expired()
