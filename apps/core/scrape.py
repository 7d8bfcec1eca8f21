"""What /metrics shows: the counts the workers stored (apps.core.metrics) and the state of the
task layer read when Prometheus scrapes: queue backlogs, ledger claims, circuit breakers, the
beat lock and each worker's latest heartbeat."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from apps.core.metrics import stored_families
from apps.core.models import BeatLock, DeadLetter, IdempotencyKey, WorkerHeartbeat
from apps.core.services import known_circuit_breakers, queue_backlogs
from apps.core.tasks.circuit_breaker import CircuitState


def _gauge(name: str, documentation: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"intelliwiz_{name}", documentation, labels=labels)


def _queue_families() -> Iterator[Metric]:
    waiting = _gauge("queue_messages", "Messages waiting in the queue.", ["queue"])
    oldest = _gauge(
        "queue_oldest_message_age_seconds",
        "Age of the queue's oldest waiting message (absent where the broker won't say).",
        ["queue"],
    )
    backlogs = queue_backlogs()
    up = _gauge("broker_up", "1 when the broker answered the backlog questions.")
    up.add_metric([], 0 if "error" in backlogs else 1)
    yield up
    for queue, backlog in backlogs.items():
        if isinstance(backlog, dict) and "waiting" in backlog:
            waiting.add_metric([queue], backlog["waiting"])
            if backlog["oldest_age_seconds"] is not None:
                oldest.add_metric([queue], backlog["oldest_age_seconds"])
    yield waiting
    yield oldest


def _ledger_families() -> Iterator[Metric]:
    past_lease_now = Q(lease_expires_at__lt=timezone.now())
    claims = IdempotencyKey.objects.filter(status=IdempotencyKey.Status.IN_PROGRESS).aggregate(
        in_progress=Count("id"), past_lease=Count("id", filter=past_lease_now)
    )
    in_progress = _gauge(
        "ledger_claims_in_progress", "Side effects claimed in the ledger and not done yet."
    )
    in_progress.add_metric([], claims["in_progress"])
    past_lease = _gauge(
        "ledger_claims_past_lease",
        "Claims whose lease ran out before they were done (their run died; no retry took over).",
    )
    past_lease.add_metric([], claims["past_lease"])
    waiting = _gauge("dead_letters_waiting", "Dead letters not re-queued.")
    waiting.add_metric([], DeadLetter.objects.filter(requeued_at__isnull=True).count())
    yield from (in_progress, past_lease, waiting)


def _breaker_families() -> Iterator[Metric]:
    state = _gauge(
        "circuit_breaker_state", "1 for the circuit's current state.", ["service", "state"]
    )
    for service, breaker in sorted(known_circuit_breakers().items()):
        current = breaker.state()
        for each in CircuitState:
            state.add_metric([service, each.value], 1 if each == current else 0)
    yield state


def _beat_families() -> Iterator[Metric]:
    now = timezone.now()
    lock = BeatLock.objects.filter(name="beat").first()
    leading = _gauge("beat_leading", "1 when a beat holds an unexpired beat lock.")
    leading.add_metric([], 1 if lock and lock.expires_at > now else 0)
    yield leading
    last = _gauge(
        "worker_last_heartbeat_timestamp_seconds",
        "When the worker last ran the heartbeat task (Unix time).",
        ["worker"],
    )
    lateness = _gauge(
        "worker_heartbeat_lateness_seconds",
        "How long after its minute slot the worker ran beat's latest heartbeat.",
        ["worker"],
    )
    offset = _gauge(
        "worker_clock_offset_seconds",
        "How far the worker's clock was ahead of (+) or behind (-) the database's at its last "
        "heartbeat.",
        ["worker"],
    )
    lag = _gauge(
        "beat_lag_seconds",
        "How long after its minute slot the latest scheduled heartbeat ran, on any worker.",
    )
    latest: tuple[datetime, float] | None = None  # the latest scheduled run: slot, lateness
    for beat in WorkerHeartbeat.objects.order_by("worker"):
        last.add_metric([beat.worker], beat.ran_at.timestamp())
        if beat.clock_offset_seconds is not None:
            offset.add_metric([beat.worker], beat.clock_offset_seconds)
        if beat.scheduled_for is not None and beat.lateness_seconds is not None:
            lateness.add_metric([beat.worker], beat.lateness_seconds)
            if latest is None or beat.scheduled_for > latest[0]:
                latest = (beat.scheduled_for, beat.lateness_seconds)
    if latest is not None:
        lag.add_metric([], latest[1])
    yield from (last, lateness, offset, lag)


class TaskLayerCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from stored_families()
        yield from _queue_families()
        yield from _ledger_families()
        yield from _breaker_families()
        yield from _beat_families()


def render() -> bytes:
    """The Prometheus text exposition of the task layer."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TaskLayerCollector())
    return generate_latest(registry)
