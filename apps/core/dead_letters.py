"""Dead letters: tasks that failed for good, shown redacted and re-queued as they were.

A dead letter keeps two copies of the task's arguments: ``args``/``kwargs`` for people to read,
redacted by apps.core.redaction (secret-named entries, a request's headers but the harmless
ones, secret query-string values, e-mail addresses), each positional argument by the name of
its parameter, and ``sealed_arguments``, the exact arguments encrypted with a key derived from
SECRET_KEY, which only re-queueing opens.
"""

from __future__ import annotations

import base64
import inspect
import json
from typing import Any

from celery import current_app
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.utils import timezone

from apps.core.models import DeadLetter
from apps.core.redaction import REDACTED, redact, redact_text

_MAX_ERROR_CHARS = 2000


def _fernet() -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"intelliwiz dead letter arguments"
    ).derive(settings.SECRET_KEY.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(args: Any, kwargs: Any) -> str:
    """The exact arguments, encrypted (JSON, as the broker carried them)."""
    plain = json.dumps({"args": list(args or []), "kwargs": dict(kwargs or {})}, default=repr)
    return _fernet().encrypt(plain.encode()).decode()


def unseal(sealed: str) -> tuple[list[Any], dict[str, Any]]:
    arguments = json.loads(_fernet().decrypt(sealed.encode()))
    return arguments["args"], arguments["kwargs"]


def _parameter_names(task_name: str) -> list[str]:
    """The names of the task's positional parameters, in order ([] when it is unknown)."""
    task = current_app.tasks.get(task_name)
    try:
        parameters = inspect.signature(task.run).parameters.values() if task else []
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def shown_arguments(task_name: str, args: Any, kwargs: Any) -> tuple[list[Any], dict[str, Any]]:
    """The arguments as people may read them: redacted, a positional one as its parameter's
    name would have it (``headers`` passed by position is still a request's headers)."""
    names = _parameter_names(task_name)
    shown = [
        redact({names[i]: arg})[names[i]] if i < len(names) else redact(arg)
        for i, arg in enumerate(args or [])
    ]
    return shown, redact(dict(kwargs or {}))


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
    shown_args, shown_kwargs = shown_arguments(task_name, args, kwargs)
    return DeadLetter.objects.create(
        task_name=task_name,
        task_id=task_id or "",
        queue=queue or "",
        args=shown_args,
        kwargs=shown_kwargs,
        sealed_arguments=seal(args, kwargs),
        exception_type=f"{type(exc).__module__}.{type(exc).__qualname__}",
        error=redact_text(str(exc))[:_MAX_ERROR_CHARS],
        retries=retries,
    )


def requeue(dead_letter: DeadLetter) -> str:
    """Send the task again with its stored arguments; returns the new task id."""
    if dead_letter.requeued_at is not None:
        raise ValueError(f"dead letter {dead_letter.pk} was re-queued already")
    if dead_letter.sealed_arguments:
        try:
            args, kwargs = unseal(dead_letter.sealed_arguments)
        except InvalidToken:
            raise ValueError(
                f"dead letter {dead_letter.pk} was sealed under another SECRET_KEY and cannot "
                "be re-queued"
            ) from None
    elif REDACTED in str(dead_letter.args) + str(dead_letter.kwargs):
        raise ValueError(
            f"dead letter {dead_letter.pk} has redacted arguments and cannot be re-queued as is"
        )
    else:
        args, kwargs = dead_letter.args, dead_letter.kwargs
    result = current_app.send_task(dead_letter.task_name, args=args, kwargs=kwargs)
    dead_letter.requeued_at = timezone.now()
    dead_letter.requeued_task_id = result.id
    dead_letter.save(update_fields=["requeued_at", "requeued_task_id"])
    return result.id
