"""A worker child's soft time limit strikes only while a task runs in it.

Billiard raises SoftTimeLimitExceeded from its SIGUSR1 handler wherever the child is at that
moment. The worker's main process sends the signal when a task's soft limit passes by its own
timers; when its event loop was held up (by the broker, during a partition) the signal comes
late, for a task that has already finished, and can land while the child writes to the pool's
pipe: the half-written message desynchronises the pipe and the main process stops
("Unrecoverable error: UnicodeDecodeError"), leaving a worker that takes no more work. From its
first task on, a child handles the signal here instead: it raises only while a task runs, and a
late signal is counted and logged at the next task start.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from billiard import pool as billiard_pool
from billiard.exceptions import SoftTimeLimitExceeded
from celery.signals import task_postrun, task_prerun

logger = logging.getLogger(__name__)

_running = False
_ignored = 0


def _soft_limit_reached(signum: int, frame: Any) -> None:
    global _ignored
    if _running:
        raise SoftTimeLimitExceeded()
    _ignored += 1  # nothing to interrupt; no logging here (a handler must not take locks)


@task_prerun.connect
def _task_starts(**_: Any) -> None:
    global _running, _ignored
    # Only in a prefork child, where billiard installed its handler (solo and threads pools
    # have no soft limit), and only its main thread may set one.
    if (
        signal.getsignal(signal.SIGUSR1) is billiard_pool.soft_timeout_sighandler
        and threading.current_thread() is threading.main_thread()
    ):
        signal.signal(signal.SIGUSR1, _soft_limit_reached)
    if _ignored:
        logger.warning(
            "soft_time_limit_ignored signals=%d: they came after their task ended", _ignored
        )
        _ignored = 0
    _running = True


@task_postrun.connect
def _task_ends(**_: Any) -> None:
    global _running
    _running = False
