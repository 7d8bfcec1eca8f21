"""The worker's guard: a consumer bootstep that keeps a worker's promises whatever its pool does.

One thread of the worker's main process, so that neither a busy event loop nor a pool that runs
tasks on the main thread (``-P solo``) can stop it:

- renews the broker leases of the messages the worker holds (``apps.core.broker``), and gives
  back those whose holder died, every ``lease_renewal_interval`` seconds;
- probes the database every DB_PROBE_SECONDS; a worker that has not reached it for
  DB_LOSS_PAUSE_SECONDS stops taking messages (every one would only turn into a retry) and
  takes them again once the database answers;
- checks a Redis broker's safety: persistence on and no eviction (a production worker refuses
  to start without them), and a marker key that vanishes when the broker loses its data
  (restarted without its append-only file, flushed): that is logged and shown on /healthz.

Pausing and resuming happen on the consumer's own event loop (a timer), as Celery's
``cancel_consumer`` and ``add_consumer`` remote controls do; the thread only decides.
gevent and eventlet pools are refused: a task that blocks them would block the renewals.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import bootsteps
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, InterfaceError, close_old_connections, connection

from apps.core.broker_safety import refuse_unsafe_broker, verify_broker_marker

logger = logging.getLogger(__name__)

DB_PROBE_SECONDS = 2.0
DB_LOSS_PAUSE_SECONDS = 6.0
BROKER_CHECK_SECONDS = 30.0
UNSUPPORTED_POOLS = ("gevent", "eventlet")


class WorkerGuard(bootsteps.StartStopStep):
    """Consumer step: lease renewal, database-loss pause and broker checks (module doc)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._timer_entry: Any = None
        self._database_ok_at = time.monotonic()
        self._paused_queues: list[str] = []

    def start(self, parent: Any) -> None:
        pool = type(getattr(parent, "pool", None)).__module__
        if any(name in pool for name in UNSUPPORTED_POOLS):
            raise ImproperlyConfigured(
                f"the {pool.rpartition('.')[2]} pool is not supported: a task that blocks it "
                "would stop the broker lease renewals; use prefork (default), threads or solo"
            )
        refuse_unsafe_broker(parent.app)
        options = parent.app.conf.broker_transport_options or {}
        self._database_ok_at = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._watch,
            args=(parent, float(options.get("lease_renewal_interval") or 0)),
            name="worker-guard",
            daemon=True,
        )
        self._thread.start()
        self._timer_entry = parent.timer.call_repeatedly(1.0, self._pause_or_resume, (parent,))

    def stop(self, parent: Any) -> None:
        self._stop.set()
        if self._timer_entry is not None:
            self._timer_entry.cancel()
            self._timer_entry = None
        if self._thread is not None:
            self._thread.join(timeout=DB_PROBE_SECONDS + 1)
            self._thread = None

    shutdown = stop

    # --- the thread -------------------------------------------------------------------------
    def _watch(self, parent: Any, renewal_interval: float) -> None:
        due = {"database": 0.0, "broker": time.monotonic() + BROKER_CHECK_SECONDS}
        if renewal_interval:  # brokers without leases (RabbitMQ) have nothing to renew
            due["renew"] = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if "renew" in due and now >= due["renew"]:
                due["renew"] = now + renewal_interval
                self._renew_leases(parent)
            if now >= due["database"]:
                due["database"] = now + DB_PROBE_SECONDS
                self._probe_database()
            if now >= due["broker"]:
                due["broker"] = now + BROKER_CHECK_SECONDS
                self._check_broker(parent)
            self._stop.wait(min(due.values()) - time.monotonic())
        connection.close()  # this thread's own connection

    @staticmethod
    def _renew_leases(parent: Any) -> None:
        channel = getattr(getattr(parent, "task_consumer", None), "channel", None)
        if channel is None or not hasattr(channel, "renew_leases"):
            return
        try:
            channel.renew_leases()
            channel.restore_expired()
        except Exception:
            # A broker blip: the next round tries again, well inside the lease.
            logger.warning("broker_lease_renewal_failed", exc_info=True)

    def _probe_database(self) -> None:
        try:
            close_old_connections()
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            self._database_ok_at = time.monotonic()
        except (DatabaseError, InterfaceError):
            connection.close()

    @staticmethod
    def _check_broker(parent: Any) -> None:
        try:
            verify_broker_marker(parent.app)
        except Exception:
            logger.warning("broker_check_failed", exc_info=True)

    # --- the event loop ---------------------------------------------------------------------
    def _pause_or_resume(self, parent: Any) -> None:
        lost_for = time.monotonic() - self._database_ok_at
        consumer = getattr(parent, "task_consumer", None)
        if consumer is None:
            return
        if lost_for > DB_LOSS_PAUSE_SECONDS and not self._paused_queues:
            self._paused_queues = [queue.name for queue in consumer.queues]
            logger.warning(
                "worker_paused reason=database_unreachable seconds=%.0f queues=%s",
                lost_for,
                ",".join(self._paused_queues),
            )
            for queue in self._paused_queues:
                parent.cancel_task_queue(queue)
        elif lost_for <= DB_LOSS_PAUSE_SECONDS and self._paused_queues:
            logger.warning("worker_resumed reason=database_back")
            for queue in self._paused_queues:
                parent.add_task_queue(queue)
            self._paused_queues = []
