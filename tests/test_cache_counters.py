"""Counters in the shared cache (apps.core.cache.count_in_window): a count is never lost, a
counter lapses its window after its first count whatever counts follow, and a counter that
lapses between the calls of a count starts again instead of failing."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.management.commands.createcachetable import Command as CreateCacheTable

from apps.core.cache import DatabaseCache, RedisCache, count_in_window
from tests.conftest import service_url


class LapsingCache(LocMemCache):
    """A cache whose counter lapses right after add() found it there: the moment between
    the two calls of a count."""

    def __init__(self) -> None:
        super().__init__("lapsing", {})
        self.lapses = 0

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> bool:
        added = super().add(key, value, timeout, version)
        if not added and self.lapses < 2:
            self.lapses += 1
            self.delete(key, version)
        return added


def test_a_counter_that_lapses_between_the_calls_starts_a_new_window() -> None:
    cache = LapsingCache()
    cache.set("failures", 7, timeout=60)
    assert count_in_window("failures", 60, cache=cache) == 1
    assert cache.lapses == 1
    assert count_in_window("failures", 60, cache=cache) == 1  # lapsed once more
    assert count_in_window("failures", 60, cache=cache) == 2


@pytest.fixture
def database_cache(transactional_db) -> Iterator[DatabaseCache]:
    # Its own table: the configured cache may be Redis, and then no cache table exists.
    creator = CreateCacheTable()
    creator.verbosity = 0
    creator.create_table("default", "counter_test_cache", dry_run=False)
    yield DatabaseCache("counter_test_cache", {})


@pytest.fixture
def redis_cache() -> Iterator[RedisCache]:
    cache = RedisCache(service_url("TEST_REDIS_URL"), {"KEY_PREFIX": "intelliwiz-counter-test"})
    cache.delete_many(["mailed", "failures"])
    yield cache
    cache.delete_many(["mailed", "failures"])


def _lapses_within(cache: BaseCache, key: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cache.get(key) is None:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize(
    "backend", ["database_cache", pytest.param("redis_cache", marks=pytest.mark.services)]
)
def test_a_counter_lapses_its_window_after_the_first_count_whatever_counts_follow(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """Django's database cache wrote every increment with its default timeout (five minutes),
    so an hour's counter lapsed five minutes after its last count, or lived on."""
    cache = request.getfixturevalue(backend)
    assert count_in_window("mailed", window=2, amount=3, cache=cache) == 3
    assert count_in_window("mailed", window=2, amount=4, cache=cache) == 7
    assert count_in_window("mailed", window=2, amount=-4, cache=cache) == 3
    assert _lapses_within(cache, "mailed", seconds=5)
    assert count_in_window("mailed", window=2, cache=cache) == 1


@pytest.mark.services
def test_a_redis_counter_lapsing_during_an_increment_is_not_brought_back_without_expiry(
    redis_cache: RedisCache,
) -> None:
    """Django's RedisCache asks whether the key exists, then increments it: a counter lapsing
    between the two came back as a key that never lapses. Many counters lapsing about the
    moment they are incremented: none may come back."""
    client = redis_cache._cache.get_client(None, write=True)
    key = redis_cache.make_and_validate_key("failures")
    for attempt in range(2000):
        client.set(key, 1, px=1)
        with contextlib.suppress(ValueError):
            redis_cache.incr("failures")
        assert client.ttl(key) != -1, f"a counter came back without an expiry (attempt {attempt})"
        client.delete(key)
