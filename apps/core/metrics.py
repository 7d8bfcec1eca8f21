"""Prometheus metrics of the task layer: counted where tasks run, read by the web's /metrics.

Workers are other processes than the web, often in other containers or on other hosts, so a
worker's counts cannot live in its memory nor in a file the web reads. Each worker process
buffers them in memory and adds them to ``TaskMetric`` rows (one upsert per flush, at most
every FLUSH_SECONDS, by a thread; at the process's end too). /metrics renders those rows, and
reads what is not counted at the moment it is scraped: the broker's backlogs (as /healthz
does), the ledger, the circuit breakers, the beat lock and the workers' heartbeats.

Counting is off outside worker processes (``enable`` runs on Celery's worker_init), so a
task run in the caller's process by a test or a shell counts nothing.
"""

from __future__ import annotations

import bisect
import functools
import json
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from celery.signals import worker_init, worker_process_shutdown, worker_shutdown
from django.db import DatabaseError, close_old_connections, connection
from prometheus_client.core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from apps.core.db import unflushed_commit
from apps.core.models import TaskMetric

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 2.0
# Upper bounds (seconds) of the histogram buckets; +Inf is implied.
RUNTIME_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
QUEUE_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)
HISTOGRAMS = {
    "task_runtime_seconds": (RUNTIME_BUCKETS, "How long task runs took."),
    "task_queue_wait_seconds": (
        QUEUE_WAIT_BUCKETS,
        "How long a task's message waited from its publication to its run.",
    ),
}
OUTCOME_COUNTERS = {
    "success": "task_succeeded",
    "retry": "task_retried",
    "failure": "task_failed",
    "ignored": "task_ignored",
}
COUNTERS = {
    "task_started": "Task runs started by a worker.",
    "task_succeeded": "Task runs that succeeded.",
    "task_retried": "Task runs that ended asking for a retry.",
    "task_failed": "Task runs that failed (retries exhausted, or an error that is not retried).",
    "task_ignored": "Task runs that ended ignored or rejected.",
    "task_dead_lettered": "Dead letters recorded (tasks that failed for good).",
    "task_claim_lost": (
        "Runs that found their side effect taken over by another run after their claim's "
        "lease ran out (cut off from the database, or past their time limit)."
    ),
}
_UPSERT = (
    "INSERT INTO {table} (name, labels, value) VALUES (%s, %s, %s) "
    "ON CONFLICT (name, labels) DO UPDATE SET value = {table}.value + excluded.value"
)

_enabled = False
_lock = threading.Lock()
_pending: defaultdict[tuple[str, str], float] = defaultdict(float)
_flusher: threading.Thread | None = None


@functools.lru_cache(maxsize=4096)
def _labels_of(pairs: tuple[tuple[str, str], ...]) -> str:
    return json.dumps(dict(pairs), sort_keys=True)


def _labels(**labels: str) -> str:
    """The stored form of a series' labels (a few per task run: built once per series)."""
    return _labels_of(tuple(sorted(labels.items())))


def _add(name: str, labels: str, amount: float = 1) -> None:
    global _flusher
    if not _enabled:
        return
    with _lock:
        _pending[(name, labels)] += amount
        if _flusher is None:
            _flusher = threading.Thread(target=_flush_forever, name="metrics-flush", daemon=True)
            _flusher.start()


def _observe(name: str, value: float, **labels: str) -> None:
    """One observation: its bucket's own count (made cumulative when read) and the sum."""
    bounds = HISTOGRAMS[name][0]
    index = bisect.bisect_left(bounds, value)
    le = floatToGoString(bounds[index]) if index < len(bounds) else "+Inf"
    _add(f"{name}_bucket", _labels(le=le, **labels))
    _add(f"{name}_sum", _labels(**labels), value)


def record_started(task: str, queue: str) -> None:
    _add("task_started", _labels(task=task, queue=queue))


def record_run(
    task: str, queue: str, outcome: str, runtime: float, queue_wait: float | None
) -> None:
    """One finished run: its outcome, its run time and how long its message waited."""
    _add(OUTCOME_COUNTERS[outcome], _labels(task=task, queue=queue))
    _observe("task_runtime_seconds", runtime, task=task, queue=queue)
    if queue_wait is not None:  # a message published without our header
        _observe("task_queue_wait_seconds", max(queue_wait, 0.0), task=task, queue=queue)


def record_dead_letter(task: str, queue: str) -> None:
    _add("task_dead_lettered", _labels(task=task, queue=queue))


def record_claim_lost(task: str, queue: str) -> None:
    _add("task_claim_lost", _labels(task=task, queue=queue))


def record_circuit_opened(service: str) -> None:
    _add("circuit_breaker_opened", _labels(service=service))


def flush() -> None:
    """Add the buffered counts to the database; on a database error keep them for next time."""
    with _lock:
        batch = dict(_pending)
        _pending.clear()
    if not batch:
        return
    upsert = _UPSERT.format(table=connection.ops.quote_name(TaskMetric._meta.db_table))
    try:
        # Counts lost in a database crash are a moment's worth: no waiting for the disk.
        with unflushed_commit(), connection.cursor() as cursor:
            # In one order (sorted) in every process: two flushes upserting the same rows in
            # different orders deadlock on PostgreSQL.
            for (name, labels), value in sorted(batch.items()):
                cursor.execute(upsert, (name, labels, value))
    except DatabaseError:
        logger.warning("metrics_flush_failed counters=%d", len(batch), exc_info=True)
        with _lock:
            for key, value in batch.items():
                _pending[key] += value


def _flush_forever() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        close_old_connections()  # this thread's own connection: drop it if broken or old
        flush()


def _forget_parents_counts() -> None:
    """A forked child starts empty, with no flusher: its parent's counts are the parent's."""
    global _lock, _flusher
    _lock = threading.Lock()
    _pending.clear()
    _flusher = None


os.register_at_fork(after_in_child=_forget_parents_counts)


@worker_init.connect
def enable(**_: Any) -> None:
    """Count in this worker and the processes it forks."""
    global _enabled
    _enabled = True


@worker_process_shutdown.connect
@worker_shutdown.connect
def flush_at_exit(**_: Any) -> None:
    flush()


# --- Reading (apps.core.scrape) ------------------------------------------------------------------


def stored_families() -> Iterator[Metric]:
    rows: dict[str, list[tuple[dict[str, str], float]]] = {}
    for name, stored_labels, value in TaskMetric.objects.values_list("name", "labels", "value"):
        rows.setdefault(name, []).append((json.loads(stored_labels), value))
    for name, documentation in COUNTERS.items():
        family = CounterMetricFamily(f"intelliwiz_{name}", documentation, labels=["task", "queue"])
        for labels, value in rows.get(name, []):
            family.add_metric([labels["task"], labels["queue"]], value)
        yield family
    opened = CounterMetricFamily(
        "intelliwiz_circuit_breaker_opened",
        "Times a service's circuit breaker opened.",
        labels=["service"],
    )
    for labels, value in rows.get("circuit_breaker_opened", []):
        opened.add_metric([labels["service"]], value)
    yield opened
    for name in HISTOGRAMS:
        yield _histogram(name, rows.get(f"{name}_bucket", []), rows.get(f"{name}_sum", []))


def _histogram(
    name: str,
    buckets: list[tuple[dict[str, str], float]],
    sums: list[tuple[dict[str, str], float]],
) -> HistogramMetricFamily:
    """Stored per-bucket counts made cumulative, as Prometheus reads them."""
    bounds, documentation = HISTOGRAMS[name]
    family = HistogramMetricFamily(f"intelliwiz_{name}", documentation, labels=["task", "queue"])
    per_series: dict[tuple[str, str], defaultdict[str, float]] = {}
    for labels, count in buckets:
        per_bucket = per_series.setdefault((labels["task"], labels["queue"]), defaultdict(float))
        per_bucket[labels["le"]] += count
    sum_of = {(labels["task"], labels["queue"]): value for labels, value in sums}
    for series, counts in sorted(per_series.items()):
        cumulative, total = [], 0.0
        for le in [*map(floatToGoString, bounds), "+Inf"]:
            total += counts[le]
            cumulative.append((le, total))
        family.add_metric(list(series), cumulative, sum_of.get(series, 0.0))
    return family
