"""Worker heartbeat and the health report behind /healthz.

The report says whether the system works (database, broker, a recent worker heartbeat, a beat
holding the beat lock) and what an operator should look at: each queue's backlog and its
oldest waiting message, dead letters of the last hour, and ledger claims past their lease
(side effects whose run died and that no retry has taken over yet).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from django.db import connection
from django.utils import timezone

from apps.core.broker import queue_backlog
from apps.core.models import BeatLock, DeadLetter, IdempotencyKey, WorkerHeartbeat

HEARTBEAT_MAX_AGE = timedelta(minutes=3)


class HeartbeatResult(TypedDict):
    worker: str
    ran_at: str  # ISO 8601
    lateness_seconds: float | None  # None for a run not sent by beat


def record_heartbeat(*, worker: str, task_id: str, published_at: float | None) -> WorkerHeartbeat:
    """Record that `worker` ran the heartbeat now and, for a scheduled run, how late.

    Beat fires the heartbeat at the start of each minute, so the slot it was due in is the
    minute its message was published in; lateness is how long after that slot it ran.
    `published_at` is None for a run that was not sent by beat.
    """
    ran_at = timezone.now()
    scheduled_for = None
    lateness = None
    if published_at:
        published = datetime.fromtimestamp(published_at, tz=UTC)
        scheduled_for = published.replace(second=0, microsecond=0)
        lateness = round((ran_at - scheduled_for).total_seconds(), 3)
    # One statement whether or not the worker has beaten before: an upsert that returns the count
    # (SQLite 3.35+ and PostgreSQL). The table name is the model's, not input.
    table = connection.ops.quote_name(WorkerHeartbeat._meta.db_table)
    upsert = (
        f"INSERT INTO {table} (worker, task_id, ran_at, scheduled_for, lateness_seconds, beats) "  # noqa: S608
        "VALUES (%s, %s, %s, %s, %s, 1) ON CONFLICT (worker) DO UPDATE SET "
        "task_id = excluded.task_id, ran_at = excluded.ran_at, "
        "scheduled_for = excluded.scheduled_for, lateness_seconds = excluded.lateness_seconds, "
        f"beats = {table}.beats + 1 RETURNING id, beats"
    )
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            upsert, [worker, task_id or "", adapt(ran_at), adapt(scheduled_for), lateness]
        )
        pk, beats = cursor.fetchone()
    return WorkerHeartbeat(
        id=pk,
        worker=worker,
        task_id=task_id or "",
        ran_at=ran_at,
        scheduled_for=scheduled_for,
        lateness_seconds=lateness,
        beats=beats,
    )


def _check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


def _check_broker() -> dict[str, Any]:
    from intelliwiz_config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=3)
            return {"ok": True, "transport": conn.transport_cls}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


def _check_heartbeat() -> dict[str, Any]:
    try:
        latest = WorkerHeartbeat.objects.order_by("-ran_at").first()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    if latest is None:
        return {"ok": False, "error": "no heartbeat recorded yet"}
    age = (timezone.now() - latest.ran_at).total_seconds()
    return {
        "ok": age <= HEARTBEAT_MAX_AGE.total_seconds(),
        "age_seconds": round(age, 1),
        "worker": latest.worker,
        "lateness_seconds": latest.lateness_seconds,
    }


def _check_beat() -> dict[str, Any]:
    try:
        lock = BeatLock.objects.filter(name="beat").first()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    if lock is None:
        return {"ok": False, "error": "no beat holds the beat lock"}
    expires_in = (lock.expires_at - timezone.now()).total_seconds()
    return {
        "ok": expires_in > 0,
        "holder": lock.holder,
        "leading_since": lock.acquired_at.isoformat(),
        "expires_in_seconds": round(expires_in, 1),
    }


def queue_backlogs() -> dict[str, Any]:
    """Each queue's waiting messages and its oldest one's age (/healthz and /metrics)."""
    from intelliwiz_config.celery import QUEUE_NAMES, app

    backlogs: dict[str, Any] = {}
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=3)
            for queue in QUEUE_NAMES:
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
    now = timezone.now()
    try:
        stale = IdempotencyKey.objects.filter(
            status=IdempotencyKey.Status.IN_PROGRESS, lease_expires_at__lt=now
        )
        oldest = stale.order_by("lease_expires_at").values("key", "lease_expires_at").first()
        return {
            "dead_letters_last_hour": DeadLetter.objects.filter(
                failed_at__gte=now - timedelta(hours=1)
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
    checks = {
        "database": _check_database(),
        "broker": _check_broker(),
        "heartbeat": _check_heartbeat(),
        "beat": _check_beat(),
    }
    healthy = all(check["ok"] for check in checks.values())
    return {
        "status": "healthy" if healthy else "unhealthy",
        "checks": checks,
        "queues": queue_backlogs(),
        "tasks": _task_trouble(),
    }
