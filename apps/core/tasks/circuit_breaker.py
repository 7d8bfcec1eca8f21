"""A circuit breaker whose state every worker process shares through the Django cache.

CLOSED: calls go through; transient failures are counted within `failure_window` (atomically:
``apps.core.cache.count_in_window``).
OPEN: after `failure_threshold` failures, calls fail fast with CircuitOpenError until
`recovery_timeout` has passed. HALF_OPEN: then exactly one caller (``cache.add`` decides who)
may probe; its success closes the circuit, its failure opens it again.

A cache that is down itself does not stop the calls: the breaker then lets every call through
(closed) and logs it, so a cache outage costs protection, never a mail or a publish.
"""

from __future__ import annotations

import logging
import time
from enum import StrEnum
from time import monotonic

from django.core.cache import cache as default_cache
from django.core.cache.backends.base import BaseCache

from apps.core import metrics
from apps.core.cache import count_in_window

logger = logging.getLogger(__name__)

# A circuit this process found closed (no failures, not open) is not read again for this long:
# a call through a healthy service costs no cache read, and a circuit another process opens is
# noticed this much later (a failure seen here is noticed at once).
CLOSED_READ_SECONDS = 1.0
_found_closed: dict[tuple[int, str], float] = {}  # (cache, service) -> monotonic time


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(Exception):
    """The service is considered down; the call was not attempted."""

    # args hold the constructor's arguments, so a result backend can rebuild the exception.
    def __init__(self, service: str, retry_after: float) -> None:
        super().__init__(service, retry_after)
        self.service = service
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"circuit for {self.service!r} is open; retry in {self.retry_after:.0f}s"


class CircuitBreaker:
    def __init__(
        self,
        service: str,
        *,
        failure_threshold: int = 5,
        recovery_timeout: float = 60.0,
        failure_window: int = 300,
        cache: BaseCache | None = None,
    ) -> None:
        self.service = service
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.failure_window = failure_window
        self.cache = cache or default_cache
        prefix = f"circuit:{service}"
        self._failures_key = f"{prefix}:failures"
        self._opened_key = f"{prefix}:opened_at"
        self._probe_key = f"{prefix}:probe"
        # Whether before_call saw any state a success must clear (on a healthy service most
        # calls see none, and skip the delete).
        self._state_seen = True
        self._local_key = (id(self.cache), service)

    def state(self) -> CircuitState:
        opened_at = self.cache.get(self._opened_key)
        if opened_at is None:
            return CircuitState.CLOSED
        if time.time() < opened_at + self.recovery_timeout:
            return CircuitState.OPEN
        return CircuitState.HALF_OPEN

    def failures(self) -> int:
        counted: int = self.cache.get(self._failures_key, 0)
        return counted

    def before_call(self) -> None:
        """Raise CircuitOpenError unless this caller may call the service now."""
        found_closed = _found_closed.get(self._local_key)
        if found_closed is not None and monotonic() - found_closed < CLOSED_READ_SECONDS:
            self._state_seen = False
            return
        try:
            seen = self.cache.get_many([self._opened_key, self._failures_key])
        except Exception as exc:
            logger.warning("circuit_breaker_unavailable service=%s error=%r", self.service, exc)
            self._state_seen = False
            return
        self._state_seen = bool(seen)
        if not seen:
            _found_closed[self._local_key] = monotonic()
        opened_at = seen.get(self._opened_key)
        if opened_at is None:
            return
        wait = opened_at + self.recovery_timeout - time.time()
        if wait > 0:
            raise CircuitOpenError(self.service, wait)
        # Half-open: one probe at a time; its lock lapses if the prober dies.
        if not self.cache.add(self._probe_key, 1, timeout=int(self.recovery_timeout) + 1):
            raise CircuitOpenError(self.service, self.recovery_timeout)

    def record_success(self) -> None:
        if not self._state_seen:
            return
        try:
            self.cache.delete_many([self._failures_key, self._opened_key, self._probe_key])
        except Exception as exc:
            logger.warning("circuit_breaker_unavailable service=%s error=%r", self.service, exc)

    def record_failure(self) -> None:
        _found_closed.pop(self._local_key, None)
        try:
            self._record_failure()
        except Exception as exc:
            logger.warning("circuit_breaker_unavailable service=%s error=%r", self.service, exc)

    def _record_failure(self) -> None:
        if self.cache.get(self._opened_key) is not None:
            # A failed half-open probe (or a late failure): open for a full period again.
            self.cache.set(self._opened_key, time.time(), timeout=None)
            self.cache.delete(self._probe_key)
            metrics.record_circuit_opened(self.service)
            return
        # add(): of all the processes crossing the threshold together, one opens.
        failures = count_in_window(self._failures_key, self.failure_window, cache=self.cache)
        if failures >= self.failure_threshold and self.cache.add(
            self._opened_key, time.time(), timeout=None
        ):
            metrics.record_circuit_opened(self.service)
