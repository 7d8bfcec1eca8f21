"""Tasks that exist only for the test suite's real worker (``celery worker -I tests.support...``).

They exercise the platform (retries, dead letters, redelivery) through real task runs; their
names start with ``tests.`` so they can never be mistaken for the registry's tasks.
"""

from __future__ import annotations

import os
import signal
import time

from celery import shared_task
from django.core.cache import cache

from apps.core.idempotency import ClaimLost, perform_once
from apps.core.tasks.utils import task_retry_policy

# The default policy with a one-second backoff, so retries happen within a test's patience; their
# tests read what they return, so they store it (the project's tasks store no result).
FAST_RETRIES = task_retry_policy("default") | {
    "retry_backoff": 1,
    "retry_backoff_max": 1,
    "ignore_result": False,
}


def _next_attempt(key: str) -> int:
    cache.add(key, 0, timeout=600)
    return cache.incr(key)


@shared_task(name="tests.flaky", **FAST_RETRIES)
def flaky(key: str, failures: int) -> int:
    """Fails with a transient error `failures` times, then returns the attempt number."""
    attempt = _next_attempt(f"attempts:{key}")
    if attempt <= failures:
        raise ConnectionError(f"transient failure {attempt}")
    return attempt


@shared_task(name="tests.always_transient", **(FAST_RETRIES | {"max_retries": 2}))
def always_transient(key: str) -> None:
    _next_attempt(f"attempts:{key}")
    raise ConnectionError("the service never comes back")


@shared_task(name="tests.permanent_failure", **FAST_RETRIES)
def permanent_failure(key: str, **options: object) -> None:
    _next_attempt(f"attempts:{key}")
    raise ValueError("bad input: not retried")


@shared_task(name="tests.effect_then_sleep", bind=True, **FAST_RETRIES)
def effect_then_sleep(self, key: str, seconds: float) -> dict[str, object]:
    """Performs a side effect once (ledger key `key`), then sleeps so a test can kill us."""
    cache.set(f"pid:{key}", os.getpid(), timeout=600)
    ran = perform_once(key, lambda: _next_attempt(f"effects:{key}"), task_id=self.request.id)
    if ran:
        time.sleep(seconds)
    return {"pid": os.getpid(), "performed_now": ran}


@shared_task(name="tests.kill_own_worker", **FAST_RETRIES)
def kill_own_worker(key: str) -> None:
    """Kills the worker child running it, every time (a poison message)."""
    _next_attempt(f"attempts:{key}")
    os.kill(os.getpid(), signal.SIGKILL)


@shared_task(name="tests.fail_once_then_echo", **FAST_RETRIES)
def fail_once_then_echo(key: str, **received: object) -> None:
    """Fails for good on its first run; a re-queued run keeps the arguments it received."""
    if _next_attempt(f"attempts:{key}") == 1:
        raise ValueError("bad input: not retried")
    cache.set(f"received:{key}", received, timeout=600)


@shared_task(name="tests.claim_taken_over", **FAST_RETRIES)
def claim_taken_over(key: str) -> None:
    """Its side effect's claim was taken over by another run while it was cut off."""
    _next_attempt(f"attempts:{key}")
    raise ClaimLost([key], after_effect=True)
