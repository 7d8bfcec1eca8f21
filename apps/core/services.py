"""Worker heartbeat and the health report behind /healthz.

The report says whether the system works (database, broker, a recent worker heartbeat, a beat
holding the beat lock) and what an operator should look at: each queue's backlog and its
oldest waiting message, dead letters of the last hour, and ledger claims past their lease
(side effects whose run died and that no retry has taken over yet).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from celery import current_app
from django.conf import settings
from django.db import connection
from django.db.models.functions import Now
from django.utils import timezone

from apps.core.broker import queue_backlog
from apps.core.broker_safety import broker_problems, verify_broker_marker
from apps.core.clock import epoch_sql, now_sql
from apps.core.db import unflushed_statement
from apps.core.models import BeatLock, DeadLetter, IdempotencyKey, TaskMetric, WorkerHeartbeat
from apps.core.outages import retrying_tasks
from apps.core.tasks.base import ExternalServiceTask
from apps.core.tasks.circuit_breaker import CircuitBreaker, CircuitState

logger = logging.getLogger(__name__)

HEARTBEAT_MAX_AGE = timedelta(minutes=3)
WORKER_SHOWN_FOR = timedelta(minutes=10)  # a worker that beat within this is listed
BROKER_LOSS_SHOWN = timedelta(hours=24)  # how long a broker's data loss keeps it degraded


class HeartbeatResult(TypedDict):
    worker: str
    ran_at: str  # ISO 8601
    lateness_seconds: float | None  # None for a run not sent by beat


def record_heartbeat(*, worker: str, task_id: str, published_at: float | None) -> WorkerHeartbeat:
    """Record that `worker` ran the heartbeat now (the database's now) and, for a scheduled run,
    how late; measure how far this host's clock is off the database's, and warn when it is.

    Beat fires the heartbeat at the start of each minute, so the slot it was due in is the
    minute its message was published in; lateness is how long after that slot it ran.
    `published_at` is None for a run that was not sent by beat.
    """
    scheduled_for = None
    if published_at:
        published = datetime.fromtimestamp(published_at, tz=UTC)
        scheduled_for = published.replace(second=0, microsecond=0)
    # One statement whether or not the worker has beaten before: an upsert that returns what it
    # wrote (SQLite 3.35+ and PostgreSQL). The table name is the model's, not input.
    table = connection.ops.quote_name(WorkerHeartbeat._meta.db_table)
    now, epoch = now_sql(connection), epoch_sql(connection)
    upsert = (
        f"INSERT INTO {table} (worker, task_id, ran_at, scheduled_for, lateness_seconds, "  # noqa: S608
        f"clock_offset_seconds, beats) VALUES (%s, %s, {now}, %s, {epoch} - %s, %s - {epoch}, 1) "
        "ON CONFLICT (worker) DO UPDATE SET "
        "task_id = excluded.task_id, ran_at = excluded.ran_at, "
        "scheduled_for = excluded.scheduled_for, lateness_seconds = excluded.lateness_seconds, "
        "clock_offset_seconds = excluded.clock_offset_seconds, "
        f"beats = {table}.beats + 1 RETURNING id, beats, ran_at, lateness_seconds, "
        "clock_offset_seconds"
    )
    adapt = connection.ops.adapt_datetimefield_value
    scheduled_epoch = scheduled_for.timestamp() if scheduled_for else None
    # A beat lost in a database crash is written again by the next: no waiting for the disk.
    with connection.cursor() as cursor:
        cursor.execute(
            unflushed_statement(upsert),
            [worker, task_id or "", adapt(scheduled_for), scheduled_epoch, time.time()],
        )
        pk, beats, ran_at, lateness, offset = cursor.fetchone()[:5]
    if abs(offset) > settings.CLOCK_SKEW_WARN_SECONDS:
        logger.warning(
            "clock_skew worker=%s offset_s=%.1f: this host's clock is off the database's "
            "(leases use the database's clock; keep hosts in sync with NTP)",
            worker,
            offset,
        )
    return WorkerHeartbeat(
        id=pk,
        worker=worker,
        task_id=task_id or "",
        ran_at=_as_datetime(ran_at),
        scheduled_for=scheduled_for,
        lateness_seconds=None if lateness is None else round(lateness, 3),
        clock_offset_seconds=round(offset, 3),
        beats=beats,
    )


def _as_datetime(value: datetime | str) -> datetime:
    """A timestamp the database returned (SQLite returns text)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _check_database() -> tuple[dict[str, Any], datetime | None]:
    """Whether the database answers, and its clock: every age below is judged by it."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {now_sql(connection)}", ())  # () so "%%" reads as "%"
            return {"ok": True}, _as_datetime(cursor.fetchone()[0])
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}, None


def _check_broker() -> tuple[dict[str, Any], list[str]]:
    """Whether the broker answers; and, for a Redis broker, what makes it unsafe and when it
    last lost its data (degraded: warnings)."""
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=3)
            check: dict[str, Any] = {"ok": True, "transport": conn.transport_cls}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}, []
    warnings: list[str] = []
    try:
        problems = broker_problems(current_app)
        data_lost_at = verify_broker_marker(current_app)
    except Exception as exc:
        check["safety"] = {"error": type(exc).__name__}
        return check, warnings
    if problems:
        check["unsafe"] = problems
        if settings.PRODUCTION:
            check["ok"] = False
        warnings.extend(problems)
    if data_lost_at is not None:
        check["data_lost_at"] = data_lost_at.isoformat()
        if timezone.now() - data_lost_at < BROKER_LOSS_SHOWN:
            warnings.append(
                f"the broker lost its data at {data_lost_at.isoformat()}: messages queued "
                "before then are gone"
            )
    return check, warnings


def _check_heartbeat(database_now: datetime) -> dict[str, Any]:
    try:
        latest = WorkerHeartbeat.objects.order_by("-ran_at").first()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    if latest is None:
        return {"ok": False, "error": "no heartbeat recorded yet"}
    age = (database_now - latest.ran_at).total_seconds()
    return {
        "ok": age <= HEARTBEAT_MAX_AGE.total_seconds(),
        "age_seconds": round(age, 1),
        "worker": latest.worker,
        "lateness_seconds": latest.lateness_seconds,
    }


def _check_beat(database_now: datetime) -> dict[str, Any]:
    try:
        lock = BeatLock.objects.filter(name="beat").first()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    if lock is None:
        return {"ok": False, "error": "no beat holds the beat lock"}
    expires_in = (lock.expires_at - database_now).total_seconds()
    return {
        "ok": expires_in > 0,
        "holder": lock.holder,
        "leading_since": lock.acquired_at.isoformat(),
        "expires_in_seconds": round(expires_in, 1),
    }


def _workers(database_now: datetime) -> tuple[dict[str, Any], list[str]]:
    """Workers that beat recently: when, and how far their clocks are off the database's."""
    recent = WorkerHeartbeat.objects.filter(ran_at__gte=database_now - WORKER_SHOWN_FOR).order_by(
        "worker"
    )
    workers, warnings = {}, []
    for beat in recent:
        workers[beat.worker] = {
            "age_seconds": round((database_now - beat.ran_at).total_seconds(), 1),
            "clock_offset_seconds": beat.clock_offset_seconds,
        }
        offset = beat.clock_offset_seconds or 0.0
        if abs(offset) > settings.CLOCK_SKEW_WARN_SECONDS:
            warnings.append(
                f"worker {beat.worker}'s clock is {abs(offset):.0f} s "
                f"{'ahead of' if offset > 0 else 'behind'} the database's"
            )
    return workers, warnings


def known_circuit_breakers() -> dict[str, CircuitBreaker]:
    """The services behind a circuit: those named by tasks, and those (partners: one circuit
    per host) that ever opened."""
    breakers = {
        task.service_name: task.circuit_breaker()
        for task in current_app.tasks.values()
        if isinstance(task, ExternalServiceTask) and task.service_name
    }
    for labels in TaskMetric.objects.filter(name="circuit_breaker_opened").values_list(
        "labels", flat=True
    ):
        service = json.loads(labels)["service"]
        breakers.setdefault(service, CircuitBreaker(service))
    return breakers


def _services() -> tuple[dict[str, Any], list[str]]:
    """Open circuits and tasks retrying on transient errors: an outage of something the
    workers call (degraded, not unhealthy: the tasks wait and retry)."""
    try:
        circuits = {
            name: breaker.state().value for name, breaker in known_circuit_breakers().items()
        }
        retrying = retrying_tasks(
            name for name in current_app.tasks if not name.startswith("celery.")
        )
    except Exception as exc:
        return {"error": type(exc).__name__}, []
    warnings = [
        f"the circuit of {name} is {state.replace('_', '-')}"
        for name, state in sorted(circuits.items())
        if state != CircuitState.CLOSED
    ]
    warnings += [
        f"{task} is retrying ({entry['retries']} retries, last {entry['error']})"
        for task, entry in sorted(retrying.items())
    ]
    return {"circuits": circuits, "retrying": retrying}, warnings


def queue_backlogs() -> dict[str, Any]:
    """Each queue's waiting messages and its oldest one's age (/healthz and /metrics)."""
    backlogs: dict[str, Any] = {}
    try:
        with current_app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=3)
            for queue in (declared.name for declared in current_app.conf.task_queues):
                # A channel per queue: RabbitMQ closes one that asks about an unknown queue.
                with conn.channel() as channel:
                    try:
                        backlogs[queue] = queue_backlog(channel, queue)
                    except conn.channel_errors as exc:
                        backlogs[queue] = {"error": type(exc).__name__}
    except Exception as exc:
        return {"error": type(exc).__name__}
    return backlogs


def _task_trouble() -> dict[str, Any]:
    try:
        stale = IdempotencyKey.objects.filter(
            status=IdempotencyKey.Status.IN_PROGRESS, lease_expires_at__lt=Now()
        )
        oldest = stale.order_by("lease_expires_at").values("key", "lease_expires_at").first()
        return {
            "dead_letters_last_hour": DeadLetter.objects.filter(
                failed_at__gte=Now() - timedelta(hours=1)
            ).count(),
            "claims_past_lease": stale.count(),
            "oldest_claim_past_lease": (
                {"key": oldest["key"], "expired_at": oldest["lease_expires_at"].isoformat()}
                if oldest
                else None
            ),
        }
    except Exception as exc:
        return {"error": type(exc).__name__}


def health_report() -> dict[str, Any]:
    """healthy; degraded (it works, but something needs a look: ``degraded`` says what);
    unhealthy (a check failed: the database, the broker, the workers' heartbeat or beat)."""
    database, database_now = _check_database()
    broker, warnings = _check_broker()
    checks = {"database": database, "broker": broker}
    report: dict[str, Any] = {}
    if database_now is None:
        checks["heartbeat"] = checks["beat"] = {"ok": False, "error": "database unreachable"}
    else:
        checks["heartbeat"] = _check_heartbeat(database_now)
        checks["beat"] = _check_beat(database_now)
        report["workers"], clock_warnings = _workers(database_now)
        warnings += clock_warnings
    report["services"], service_warnings = _services()
    warnings += service_warnings
    healthy = all(check["ok"] for check in checks.values())
    return {
        "status": "unhealthy" if not healthy else "degraded" if warnings else "healthy",
        "degraded": warnings,
        "checks": checks,
        **report,
        "queues": queue_backlogs(),
        "tasks": _task_trouble(),
    }
