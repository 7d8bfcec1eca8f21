"""The shared circuit breaker: states, one half-open probe, atomic counters across clients."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from celery import shared_task
from django.core.cache.backends.redis import RedisCache
from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import connection

from apps.core.cache import DatabaseCache
from apps.core.tasks import circuit_breaker
from apps.core.tasks.base import ExternalServiceTask
from apps.core.tasks.circuit_breaker import CircuitBreaker, CircuitOpenError, CircuitState
from apps.core.tasks.utils import task_retry_policy
from intelliwiz_config.celery import app
from tests.conftest import service_url


@pytest.fixture
def breaker(db, clean_cache) -> CircuitBreaker:
    return CircuitBreaker("partner-api", failure_threshold=3, recovery_timeout=0.5)


@pytest.fixture
def advance(monkeypatch) -> Callable[[float], None]:
    """Move the breaker's clock on by `seconds` (instead of sleeping through its timeout)."""
    now = [time.time()]
    monkeypatch.setattr(circuit_breaker, "time", SimpleNamespace(time=lambda: now[0]))

    def advance(seconds: float) -> None:
        now[0] += seconds

    return advance


def test_opens_after_the_threshold_then_probes_once_then_closes(breaker, advance) -> None:
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state() is CircuitState.CLOSED and breaker.failures() == 2
    breaker.record_failure()
    assert breaker.state() is CircuitState.OPEN
    with pytest.raises(CircuitOpenError, match="'partner-api' is open"):
        breaker.before_call()

    advance(0.6)
    assert breaker.state() is CircuitState.HALF_OPEN
    breaker.before_call()  # this caller is the probe
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # everyone else still waits
    breaker.record_success()
    assert breaker.state() is CircuitState.CLOSED and breaker.failures() == 0
    breaker.before_call()


def test_a_failed_probe_opens_the_circuit_again(breaker, advance) -> None:
    for _ in range(3):
        breaker.record_failure()
    advance(0.6)
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state() is CircuitState.OPEN


def _hammer(cache, key: str, clients: int, increments: int) -> None:
    cache.delete(key)
    cache.add(key, 0)
    barrier = threading.Barrier(clients)

    def run() -> None:
        barrier.wait()
        for _ in range(increments):
            cache.incr(key)
        connection.close()

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)


@pytest.mark.django_db(transaction=True)
def test_database_cache_increments_are_atomic() -> None:
    # Its own table: the configured cache may be Redis, and then no cache table exists.
    creator = CreateCacheTable()
    creator.verbosity = 0
    creator.create_table("default", "atomic_incr_test_cache", dry_run=False)
    cache = DatabaseCache("atomic_incr_test_cache", {})
    _hammer(cache, "counter", clients=6, increments=25)
    assert cache.get("counter") == 150


@pytest.mark.services
def test_redis_cache_increments_are_atomic() -> None:
    cache = RedisCache(service_url("TEST_REDIS_URL"), {"KEY_PREFIX": "intelliwiz-test"})
    _hammer(cache, "counter", clients=6, increments=25)
    assert cache.get("counter") == 150


@pytest.mark.django_db
def test_external_service_task_fails_fast_while_open(clean_cache) -> None:
    calls: list[str] = []

    @shared_task(
        name="tests.partner_call",
        base=ExternalServiceTask,
        bind=True,
        **(task_retry_policy("external_api") | {"max_retries": 0}),
    )
    def partner_call(self) -> str:
        with self.external_call("partner"):
            calls.append("call")
            raise ConnectionError("partner down")

    task = app.tasks["tests.partner_call"]
    try:
        for _ in range(task.failure_threshold):
            assert isinstance(task.apply().result, ConnectionError)
        assert len(calls) == task.failure_threshold
        assert isinstance(task.apply().result, CircuitOpenError)
        assert len(calls) == task.failure_threshold  # the open circuit stopped the call
        assert task.circuit_breaker("partner").state() is CircuitState.OPEN
    finally:
        del app.tasks["tests.partner_call"]


def test_a_cache_outage_lets_calls_through_instead_of_stopping_them() -> None:
    """The breaker's own store down must cost protection, not the mail or publish it guards."""
    dead = RedisCache("redis://127.0.0.1:9/0", {})  # nothing listens on the discard port
    breaker = CircuitBreaker("smtp", failure_threshold=1, cache=dead)
    breaker.before_call()  # no error: the call goes ahead
    breaker.record_failure()
    breaker._state_seen = True  # as if it had seen state before the cache went away
    breaker.record_success()


def test_a_healthy_circuit_is_read_once_a_second_and_a_failure_here_at_once(
    breaker, monkeypatch
) -> None:
    """A call through a closed circuit cost a cache read each (a query on the database cache);
    now a process reads it again after CLOSED_READ_SECONDS, or at once after a failure of its
    own."""
    reads: list[list[str]] = []
    real_get_many = breaker.cache.get_many
    monkeypatch.setattr(
        breaker.cache, "get_many", lambda keys: reads.append(keys) or real_get_many(keys)
    )
    clock = [1000.0]
    monkeypatch.setattr(circuit_breaker, "monotonic", lambda: clock[0])
    for _ in range(5):
        breaker.before_call()
        breaker.record_success()
    assert len(reads) == 1
    # Another process opens it: its state is in the shared cache.
    breaker.cache.set(breaker._opened_key, time.time(), timeout=None)
    breaker.before_call()  # within the second: not read yet
    clock[0] += circuit_breaker.CLOSED_READ_SECONDS
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    assert len(reads) == 2
