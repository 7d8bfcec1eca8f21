"""The worker guard keeps a held message with its worker whatever the pool does.

A solo pool runs the task on the worker's main thread, where Celery's own timers (and the
lease renewal that used to ride on them) stop while it runs: a second live worker then took
the same message 12 s later. The guard renews from a thread of its own."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from django.core.cache import cache
from kombu import Connection

from apps.core.broker import FilesystemTransport
from tests.conftest import WORKER_TASKS_MODULE, ManagedProcess, process_env, worker_argv
from tests.support import worker_tasks
from tests.support.waiting import patience

LEASE = 6  # seconds: CELERY_VISIBILITY_TIMEOUT's minimum; renewed every second


def _folder_options(var: Path) -> dict[str, object]:
    broker = var / "broker"
    return {
        "data_folder_in": str(broker / "queue"),
        "data_folder_out": str(broker / "queue"),
        "inflight_folder": str(broker / "inflight"),
        "control_folder": str(broker / "control"),
    }


def _worker(var: Path, name: str, pool: str, logs: Path) -> ManagedProcess:
    nodename = f"{name}-{time.time_ns()}@{socket.gethostname()}"
    argv = worker_argv(nodename, 1, "-I", WORKER_TASKS_MODULE)
    argv[argv.index("prefork")] = pool
    env = process_env(
        INTELLIWIZ_VAR_DIR=str(var),
        CELERY_BROKER_URL="filesystem://",  # whatever broker the suite runs on
        CELERY_VISIBILITY_TIMEOUT=str(LEASE),
    )
    worker = ManagedProcess(argv, env, logs / f"{name}.log", nodename)
    worker.wait_for_log("ready.", timeout=90)
    return worker


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", ["solo", "threads"])
def test_a_long_task_keeps_its_message_under_any_pool(tmp_path, clean_cache, pool) -> None:
    var = tmp_path / "var"
    holder = _worker(var, "holder", pool, tmp_path)
    other = None
    try:
        key = f"long-{pool}-{time.time_ns()}"
        with Connection(
            "filesystem://", transport=FilesystemTransport, transport_options=_folder_options(var)
        ) as conn:
            result = worker_tasks.effect_then_sleep.apply_async(
                (key,), {"seconds": 3 * LEASE}, connection=conn
            )
        deadline = time.monotonic() + patience(60)
        while cache.get(f"effects:{key}") != 1:
            assert time.monotonic() < deadline, holder.log()[-3000:]
            time.sleep(0.1)
        # A second live worker sweeps for expired leases the whole time the task runs.
        other = _worker(var, "other", "prefork", tmp_path)
        assert result.get(timeout=6 * LEASE)["performed_now"] is True
        time.sleep(2)
        assert result.id not in other.log(), "the held message was delivered a second time"
        assert cache.get(f"effects:{key}") == 1
    finally:
        holder.stop()
        if other is not None:
            other.stop()


def test_the_pools_refused_are_named_as_celery_names_them() -> None:
    from celery.concurrency import ALIASES

    from apps.core.worker_guard import UNSUPPORTED_POOLS

    # The guard knows gevent and eventlet by their modules' names (neither is installed here).
    for pool in UNSUPPORTED_POOLS:
        assert ALIASES[pool].startswith(f"celery.concurrency.{pool}:")


def test_the_guard_sleeps_between_rounds_on_a_broker_without_leases(monkeypatch) -> None:
    """RabbitMQ has no message leases to renew: the guard's thread then wakes for the database
    probe and the broker check only (it once spun, a core's worth of CPU in every idle worker)."""
    import threading

    from apps.core.worker_guard import WorkerGuard

    class CountedStop(threading.Event):
        waits = 0

        def wait(self, timeout: float | None = None) -> bool:
            CountedStop.waits += 1
            return super().wait(timeout)

    guard = WorkerGuard.__new__(WorkerGuard)  # the thread's loop alone, without a consumer
    guard._stop = CountedStop()
    monkeypatch.setattr(guard, "_probe_database", lambda: None)
    monkeypatch.setattr(WorkerGuard, "_check_broker", staticmethod(lambda parent: None))
    thread = threading.Thread(target=guard._watch, args=(None, 0.0), daemon=True)
    with monkeypatch.context() as patched:
        patched.setattr("apps.core.worker_guard.connection.close", lambda: None)
        thread.start()
        time.sleep(1)
        guard._stop.set()
        thread.join(5)
    assert CountedStop.waits <= 3, f"{CountedStop.waits} rounds in a second"
