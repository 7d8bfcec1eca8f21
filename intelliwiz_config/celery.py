"""The Celery app: its queues, its routes and its beat schedule, declared here and nowhere else.

Broker, result backend and worker tuning come from Django settings (CELERY_ namespace).
Routes are keyed by registered task names, the public contract in the task registry.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import before_task_publish, task_postrun, task_prerun, worker_ready
from django.db import connections
from kombu import Queue

from apps.core.tasks.consumer import TaskNames, UpstreamQueueDrain

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "intelliwiz_config.settings")
# Celery runs Django's system checks as a worker starts, which imports every URL, view, form and
# the admin (GraphQL too) that a worker never serves: a second of its start. They run where they
# belong: `manage.py migrate` at release, `manage.py check` and CI.
os.environ.setdefault("CELERY_SKIP_CHECKS", "1")

DEFAULT_QUEUE = "default"
QUEUE_NAMES: tuple[str, ...] = (
    "critical",
    "high_priority",
    "email",
    "reports",
    "external_api",
    "media",
    "maintenance",
    DEFAULT_QUEUE,
)

# Registered task name -> queue. Every task of the registry has its line, whether or not its
# domain has landed yet, so a new task is routed the moment it is registered; tasks beyond the
# registry are namespaced by their app.
TASK_QUEUES: dict[str, str] = {
    # email_tasks
    "send_email_notification_for_workpermit_approval": "email",
    "send_email_notification_for_wp": "email",
    "send_email_notification_for_wp_verifier": "email",
    "send_email_notification_for_wp_from_mobile_for_verifier": "email",
    "send_email_notification_for_vendor_and_security_of_wp_cancellation": "email",
    "send_email_notification_for_vendor_and_security_for_rwp": "email",
    "send_email_notification_for_vendor_and_security_after_approval": "email",
    "send_email_notification_for_sla_vendor": "email",
    "send_email_notification_for_sla_report": "email",
    "send_reminder_email": "email",
    "send_mismatch_notification": "external_api",
    # job_tasks
    "auto_close_jobs": "critical",
    "create_ppm_job": "high_priority",
    "task_every_min": DEFAULT_QUEUE,
    # integration_tasks
    "publish_mqtt": "external_api",
    "process_graphql_mutation_async": DEFAULT_QUEUE,
    "process_graphql_download_async": DEFAULT_QUEUE,
    "external_api_call_async": "external_api",
    "insert_json_records_async": DEFAULT_QUEUE,
    # media_tasks
    "perform_facerecognition_bgt": "media",
    "move_media_to_cloud_storage": "maintenance",
    "process_audio_transcript": "media",
    # maintenance_tasks
    "cache_warming_scheduled": "maintenance",
    "cleanup_expired_pdf_tasks": "maintenance",
    # ticket_tasks
    "send_ticket_email": "high_priority",
    "ticket_escalation": "critical",
    "alert_sendmail": "high_priority",
    # report_tasks
    "create_report_history": "reports",
    "create_save_report_async": "reports",
    "create_scheduled_reports": "reports",
    "send_report_on_email": "email",
    "send_generated_report_on_mail": "email",
    "send_generated_report_onfly_email": "email",
    "generate_pdf_async": "reports",
    "cleanup_reports_which_are_12hrs_old": "maintenance",
    # beyond the registry
    "work_order_management.notify_permit_rejected": "email",
}

# Upstream's auto-generated task names (tasks it declared without name=; upstream-tasks.md
# §2.4, §5.3.6, §5.5.2): a message still sent under one runs as the current task, routed as it
# is, and its run logs a task_legacy_call line naming the old name. Looked up, never listed: the
# registered names stay the registry's.
UPSTREAM_TASK_NAMES: dict[str, str] = {
    "background_tasks.tasks.external_api_call_async": "external_api_call_async",
    "background_tasks.integration_tasks.external_api_call_async": "external_api_call_async",
    "background_tasks.tasks.cleanup_expired_pdf_tasks": "cleanup_expired_pdf_tasks",
    "background_tasks.maintenance_tasks.cleanup_expired_pdf_tasks": "cleanup_expired_pdf_tasks",
    "background_tasks.tasks.generate_pdf_async": "generate_pdf_async",
}
# Names upstream sent that no task answers to here: (why, what to use instead). Their messages
# are dead letters with the reason (as is any other unknown name), never deleted, and each logs
# a task_legacy_call line, so old producers still sending them show up.
RETIRED_UPSTREAM_TASKS: dict[str, tuple[str, str]] = {
    "create_job": (
        "upstream's beat entry create_job_at_minute_27_past_every_8th_hour named a task "
        "registered as 'create_job()', so it never ran there either",
        "create_ppm_job (beat at 03:03 and 16:03 UTC, and on every job save); drop the entry "
        "from upstream's beat",
    ),
    "create_job()": (
        "upstream's schedule generator (apps/schedhuler) is not part of this product",
        "create_ppm_job",
    ),
    "perform_insertrecord()": (
        "upstream's record-insert task is not part of this product",
        "the syncRecords mutation (insert_json_records_async)",
    ),
}
# Upstream's queues (upstream-tasks.md §2.5): it loaded no routes, so its plain .delay() went to
# Celery's default queue `celery`, and its MQTT client sent to `django5_queue`. While
# DRAIN_UPSTREAM_QUEUES is on (the default), the worker consuming DEFAULT_QUEUE moves what they
# hold onto the queues above, by task name (apps.core.tasks.consumer.UpstreamQueueDrain).
UPSTREAM_QUEUE_NAMES: tuple[str, ...] = ("celery", "django5_queue")

# The tasks whose results someone reads, and who: every other task stores no result (settings,
# CELERY_TASK_IGNORE_RESULT), so a run costs no result row nobody looks at. Pages and the API
# read their own rows (Report, PdfJob, MobileMessage, SyncBatch, PartnerDelivery), never a
# task's result; no chord or group waits on one.
RESULTS_READ: dict[str, str] = {
    "external_api_call_async": "the producer that called a partner: its answer (status, body)",
}

MINUTE = 60
HOUR = 60 * MINUTE


def _beat(
    task: str, schedule: crontab, expires: int, kwargs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A beat entry on the task's own queue; `expires` drops runs a backlog would replay."""
    return {
        "task": task,
        "schedule": schedule,
        "kwargs": kwargs or {},
        "options": {"queue": TASK_QUEUES[task], "expires": expires},
    }


# All times UTC. Loaded into django-celery-beat's tables (manage.py sync_beat_schedule, run after
# every migrate), where operators can edit them in the admin.
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "worker-heartbeat-every-minute": _beat("task_every_min", crontab(), expires=50),
    "auto-close-jobs-every-30-min": _beat(
        "auto_close_jobs", crontab(minute="0,30"), expires=25 * MINUTE
    ),
    "ticket-escalation-every-30-min": _beat(
        "ticket_escalation", crontab(minute="15,45"), expires=25 * MINUTE
    ),
    "create-ppm-jobs-twice-a-day": _beat(
        "create_ppm_job", crontab(minute=3, hour="3,16"), expires=2 * HOUR
    ),
    "send-due-reminders-every-10-min": _beat(
        "send_reminder_email", crontab(minute="*/10"), expires=9 * MINUTE
    ),
    "remind-pending-permit-approvers-hourly": _beat(
        "send_email_notification_for_wp", crontab(minute=25), expires=50 * MINUTE
    ),
    "move-media-to-cloud-weekly": _beat(
        "move_media_to_cloud_storage", crontab(minute=0, hour=0, day_of_week="mon"), expires=HOUR
    ),
    "create-scheduled-reports": _beat(
        "create_scheduled_reports", crontab(minute="5,20,35,50"), expires=13 * MINUTE
    ),
    "send-generated-reports-every-15-min": _beat(
        "send_generated_report_on_mail", crontab(minute="*/15"), expires=13 * MINUTE
    ),
    "warm-caches-every-15-min": _beat(
        "cache_warming_scheduled", crontab(minute="7,22,37,52"), expires=13 * MINUTE
    ),
    "cleanup-expired-pdf-jobs-hourly": _beat(
        "cleanup_expired_pdf_tasks", crontab(minute=40), expires=50 * MINUTE
    ),
    "cleanup-old-report-files-hourly": _beat(
        "cleanup_reports_which_are_12hrs_old",
        crontab(minute=45),
        expires=50 * MINUTE,
        kwargs={"dir_path": ".", "hours_old": 12},  # the whole reports storage area
    ),
}

app = Celery(
    "intelliwiz_config",
    task_cls="apps.core.tasks.base:BaseTask",
    # celery-types allows a registry class only; Celery takes an instance too (Celery.__init__)
    tasks=TaskNames(UPSTREAM_TASK_NAMES, RETIRED_UPSTREAM_TASKS),  # type: ignore[arg-type]
)
# The apps reach this app as celery.current_app (they never import this module): the default
# app too, so a thread that did not create it (a web server's, the worker guard's) finds it.
app.set_default()
app.config_from_object("django.conf:settings", namespace="CELERY")
if app.conf.result_backend == "django-db":
    # django-db results that requeue a message rather than lose it to a database blip.
    app.conf.update(result_backend="apps.core.results:DatabaseBackend")
app.conf.task_annotations = {name: {"ignore_result": False} for name in RESULTS_READ}
app.conf.task_queues = [Queue(name) for name in QUEUE_NAMES]
app.conf.task_default_queue = DEFAULT_QUEUE
app.conf.task_create_missing_queues = False
app.conf.task_routes = {
    **{name: {"queue": queue} for name, queue in TASK_QUEUES.items()},
    **{old: {"queue": TASK_QUEUES[name]} for old, name in UPSTREAM_TASK_NAMES.items()},
}
app.conf.upstream_queues = UPSTREAM_QUEUE_NAMES
# What manage.py sync_beat_schedule loads into django-celery-beat's tables. Not beat_schedule:
# the database scheduler would write that over the operators' edits at every start.
app.conf.declared_beat_schedule = BEAT_SCHEDULE
app.conf.worker_consumer = "apps.core.tasks.consumer:Consumer"
# Loaded by name when a worker starts: it reads models, which are not ready at import.
app.steps["consumer"].add("apps.core.worker_guard:WorkerGuard")
app.steps["consumer"].add(UpstreamQueueDrain)
app.autodiscover_tasks()


@before_task_publish.connect
def stamp_published_at(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Record when a message left the producer: queue wait and heartbeat lateness use it."""
    if headers is not None:
        headers.setdefault("published_at", time.time())


# A kept connection is health-checked (a SELECT 1 on PostgreSQL) where that pays: after an error
# or after it sat idle this long, not before every task of a busy worker (Django's own hook resets
# the check around each request, which costs a task a round trip of its own).
HEALTH_CHECK_AFTER_IDLE_SECONDS = 5.0
_last_task_end: dict[str, float] = {}


@task_prerun.connect
@task_postrun.connect
def recycle_database_connections(sender: Any = None, signal: Any = None, **_: Any) -> None:
    """What Django does around a request: with CELERY_DB_REUSE_MAX a worker keeps its connection
    between tasks, so drop one that broke (checked after an error) or outlived DB_CONN_MAX_AGE.
    A connection the last task used without an error, moments ago, is known good and goes
    unchecked. Not for an eager run: it may be inside the caller's transaction."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    now = time.monotonic()
    for connection in connections.all(initialized_only=True):
        idle = now - _last_task_end.get(connection.alias, float("-inf"))
        known_good = (
            connection.health_check_done  # type: ignore[attr-defined]  # django-stubs lacks it
            and not connection.errors_occurred
            and (signal is task_postrun or idle < HEALTH_CHECK_AFTER_IDLE_SECONDS)
        )
        connection.close_if_unusable_or_obsolete()  # pings after an error; closes on age
        if known_good and connection.connection is not None:
            connection.health_check_done = True  # type: ignore[attr-defined]
        if signal is task_postrun:
            _last_task_end[connection.alias] = now


@worker_ready.connect
def announce_ready_worker(sender: Any = None, **_: Any) -> None:
    """A fresh worker proves at once that it consumes, instead of waiting for beat's minute."""
    app.send_task("task_every_min")
