"""A Redis broker that would lose queued messages is named, and one that lost them is noticed.

Against Redis instances of the test's own (the machine's Redis keeps no append-only file)."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator

import pytest
from celery import Celery

from apps.core.broker_safety import MARKER_KEY, broker_problems, verify_broker_marker
from apps.core.models import BrokerMarker
from tests.faults.harness import RedisInstance


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisInstance]:
    server = RedisInstance(tmp_path / "redis", appendonly=True)
    server.start()
    yield server
    server.kill()


def _app(url: str) -> Celery:
    app = Celery("probe", set_as_current=False)  # shared tasks keep the project's app
    app.conf.broker_write_url = url  # CELERY_BROKER_URL in the environment beats broker_url
    return app


def _config(server: RedisInstance, *setting: str) -> None:
    subprocess.run(["redis-cli", "-p", str(server.port), "CONFIG", "SET", *setting], check=True)


def test_persistence_off_or_eviction_on_is_named(redis_server: RedisInstance) -> None:
    app = _app(redis_server.url())
    assert broker_problems(app) == []
    _config(redis_server, "appendonly", "no")
    _config(redis_server, "maxmemory-policy", "allkeys-lru")
    problems = broker_problems(app)
    assert len(problems) == 2
    assert "without its append-only file (appendonly no)" in problems[0]
    assert "maxmemory-policy allkeys-lru" in problems[1]


def test_other_brokers_have_no_redis_problems(tmp_path) -> None:
    assert broker_problems(_app("filesystem://")) == []


@pytest.mark.django_db
def test_a_broker_that_comes_back_without_its_data_is_noticed_once(
    redis_server: RedisInstance, caplog
) -> None:
    app = _app(redis_server.url())
    assert verify_broker_marker(app) is None  # first sight: the marker is set and recorded
    assert verify_broker_marker(app) is None
    (row,) = BrokerMarker.objects.all()
    subprocess.run(["redis-cli", "-p", str(redis_server.port), "FLUSHALL"], check=True)
    with caplog.at_level(logging.ERROR):
        lost_at = verify_broker_marker(app)
        assert verify_broker_marker(app) == lost_at  # recorded once, then still shown
    assert lost_at is not None
    assert caplog.text.count("broker_data_lost") == 1
    row.refresh_from_db()
    assert row.losses == 1
    with app.connection_for_write() as conn:
        assert conn.default_channel.client.get(MARKER_KEY).decode() == row.marker
