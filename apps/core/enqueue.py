"""How an app starts a background task: by its registered name, once the transaction commits.

Tasks import the apps, never the other way (import-linter holds it, see ARCHITECTURE.md): an app
names the task it wants and this looks it up in the Celery app's registry. Sending after commit
means a worker never looks for a row that is not committed yet, nor works for a change that is
rolled back; outside a transaction the task is sent at once.
"""

from __future__ import annotations

from typing import Any, cast

from celery import current_app
from celery.contrib.django.task import DjangoTask


def enqueue_on_commit(
    task_name: str, /, *args: Any, task_id: str | None = None, **kwargs: Any
) -> None:
    """Send registered task `task_name` with these arguments once the transaction commits."""
    task = cast("DjangoTask[Any, Any]", current_app.tasks[task_name])  # the app's task_cls is one
    task.apply_async_on_commit(args, kwargs, task_id=task_id)
