"""Dead letters: tasks that failed for good, kept with redacted arguments for re-queueing."""

from __future__ import annotations

import re
from typing import Any

from celery import current_app
from django.utils import timezone

from apps.core.models import DeadLetter

REDACTED = "[redacted]"
_SECRET_NAME = re.compile(
    r"pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|auth|credential|cookie|session|signature",
    re.IGNORECASE,
)
_MAX_ERROR_CHARS = 2000


def redact(value: Any) -> Any:
    """A JSON-safe copy of `value` with every secret-named mapping entry replaced."""
    if isinstance(value, dict):
        return {
            str(k): REDACTED if _SECRET_NAME.search(str(k)) else redact(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def record_dead_letter(
    *,
    task_name: str,
    task_id: str,
    queue: str,
    args: Any,
    kwargs: Any,
    exc: BaseException,
    retries: int,
) -> DeadLetter:
    return DeadLetter.objects.create(
        task_name=task_name,
        task_id=task_id or "",
        queue=queue or "",
        args=redact(list(args or [])),
        kwargs=redact(dict(kwargs or {})),
        exception_type=f"{type(exc).__module__}.{type(exc).__qualname__}",
        error=str(exc)[:_MAX_ERROR_CHARS],
        retries=retries,
    )


def requeue(dead_letter: DeadLetter) -> str:
    """Send the task again with its stored arguments; returns the new task id."""
    if dead_letter.requeued_at is not None:
        raise ValueError(f"dead letter {dead_letter.pk} was re-queued already")
    if REDACTED in str(dead_letter.args) + str(dead_letter.kwargs):
        raise ValueError(
            f"dead letter {dead_letter.pk} has redacted arguments and cannot be re-queued as is"
        )
    result = current_app.send_task(
        dead_letter.task_name, args=dead_letter.args, kwargs=dead_letter.kwargs
    )
    dead_letter.requeued_at = timezone.now()
    dead_letter.requeued_task_id = result.id
    dead_letter.save(update_fields=["requeued_at", "requeued_task_id"])
    return result.id
