"""The retry window: transient errors are retried for a span of time from the task's first
publication, carried from retry to retry, then the task fails for good (and is dead-lettered).

Fast tests of what only a minutes-long fault test showed before: a run past its window raises
instead of retrying, and every retry carries the first publication's time."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from celery import shared_task
from celery.exceptions import Retry
from celery.signals import before_task_publish

from apps.core.tasks.utils import task_retry_policy
from intelliwiz_config.celery import app

WINDOW = 60.0  # seconds


@pytest.fixture
def windowed_task(settings) -> Iterator:
    settings.RETRY_TIME_SCALE = 1.0

    @shared_task(
        name="tests.windowed",
        bind=True,
        **(task_retry_policy("default") | {"retry_window": WINDOW, "retry_backoff": 1}),
    )
    def windowed(self) -> None:
        raise ConnectionError("down")

    task = app.tasks["tests.windowed"]
    yield task
    del app.tasks["tests.windowed"]
    with app.connection_for_write() as conn:
        app.control.purge(connection=conn)


def _retry_as_if_published(task, seconds_ago: float, **headers: float) -> Retry:
    task.push_request(
        id="w-1",
        called_directly=False,
        retries=1,
        published_at=time.time() - seconds_ago,
        **headers,
    )
    try:
        return task.retry(exc=ConnectionError("down"), countdown=1)
    finally:
        task.pop_request()


def test_a_retry_within_the_window_carries_the_first_publication(windowed_task) -> None:
    published: list[dict] = []

    def record(headers=None, **_) -> None:
        published.append(dict(headers or {}))

    before_task_publish.connect(record, weak=False)
    try:
        first = time.time() - 30
        with pytest.raises(Retry):
            _retry_as_if_published(windowed_task, 5, first_published_at=first)
        with pytest.raises(Retry):  # a first retry: its own publication is the first
            _retry_as_if_published(windowed_task, 5)
    finally:
        before_task_publish.disconnect(record)
    assert published[0]["first_published_at"] == pytest.approx(first)
    assert published[1]["first_published_at"] == pytest.approx(time.time() - 5, abs=2)


def test_a_retry_past_the_window_fails_for_good(windowed_task) -> None:
    # First published longer ago than the window: the error is the task's, not a retry.
    with pytest.raises(ConnectionError, match="down"):
        _retry_as_if_published(windowed_task, 5, first_published_at=time.time() - WINDOW - 1)
    # Without the carried header, its own publication counts.
    with pytest.raises(ConnectionError, match="down"):
        _retry_as_if_published(windowed_task, WINDOW + 1)
