"""Task results in the database that never cost a message when the database blips.

Celery acknowledges a late-ack message once the task's outcome is recorded; when recording
fails ("Exception raised outside body") it acknowledges anyway, and the task is gone without a
trace. Here a final state (success, failure) and a dead letter are retried for
``RESULT_STORE_PATIENCE_SECONDS``; if the database is still away the message goes back to the
broker (``Reject(requeue=True)``) and the task runs again later, when its side effects are
no-ops thanks to the idempotency ledger. Intermediate states (started, retry, progress) are
best effort: the final state follows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

from celery import current_task, states
from celery.exceptions import Reject
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections
from django_celery_results.backends import DatabaseBackend as DjangoDatabaseBackend

from apps.core.redaction import redact, redact_text

logger = logging.getLogger(__name__)
T = TypeVar("T")
# What a task result may hold where its shape is not ours (a partner's answer, GraphQL data):
# what json.loads returns.
JSONValue: TypeAlias = str | int | float | bool | list["JSONValue"] | dict[str, "JSONValue"] | None
_DATABASE_ERRORS = (OperationalError, InterfaceError)


def _drop_broken_connections() -> None:
    for connection in connections.all(initialized_only=True):
        connection.close()


def with_database_patience(write: Callable[[], T], what: str, task_id: str) -> T | None:
    """Run `write` for task `task_id`, retrying database errors with backoff; if they last,
    put the task's message back (Reject). Outside the task's own run (the worker's main
    process recording a lost child or a hard time limit) it tries once and logs a failure."""
    if not _inside_the_task(task_id):
        try:
            return write()
        except _DATABASE_ERRORS as exc:
            _drop_broken_connections()
            logger.error("task_outcome_not_recorded what=%r error=%s", what, exc)
            return None
    deadline = time.monotonic() + settings.RESULT_STORE_PATIENCE_SECONDS
    delay = 0.25
    while True:
        try:
            return write()
        except _DATABASE_ERRORS as exc:
            _drop_broken_connections()
            if time.monotonic() + delay > deadline:
                logger.error("task_outcome_not_recorded what=%r error=%s", what, exc)
                raise Reject(f"could not record {what}: {exc}", requeue=True) from exc
            time.sleep(delay)
            delay = min(delay * 2, 4.0)


def _inside_the_task(task_id: str) -> bool:
    # Only a worker child running the task may wait and requeue; the worker's main process
    # must not block its event loop.
    task = current_task  # a proxy: false outside a task
    return bool(task) and task.request.id == task_id and not task.request.is_eager


class DatabaseBackend(DjangoDatabaseBackend):
    """django-celery-results' backend (``django-db``) with the patience described above, that
    stores no task arguments and no personal data: arguments are left out (the task_run log
    line and a dead letter's sealed copy keep what operators need), and results, errors and
    tracebacks are stored redacted (apps.core.redaction)."""

    def _get_extended_properties(self, request: Any, traceback: Any) -> dict[str, Any]:
        properties: dict[str, Any] = super()._get_extended_properties(request, traceback)
        properties.update(task_args=None, task_kwargs=None)
        if properties.get("traceback"):
            properties["traceback"] = redact_text(properties["traceback"])
        return properties

    def _store_result(
        self,
        task_id: str,
        result: Any,
        status: str,
        traceback: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        result = redact(result)
        traceback = redact_text(traceback) if traceback else traceback

        def store() -> Any:
            return super(DatabaseBackend, self)._store_result(
                task_id, result, status, traceback, *args, **kwargs
            )

        if status in states.READY_STATES:
            return with_database_patience(store, f"{status} of task {task_id}", task_id)
        try:
            return store()
        except _DATABASE_ERRORS as exc:
            _drop_broken_connections()
            logger.warning("task_state_not_recorded id=%s state=%s error=%s", task_id, status, exc)
            return result
