"""Celery tasks, one module per domain; every task is re-exported here and in ``.tasks``.

Attributes resolve lazily through ``background_tasks.tasks`` because Django imports this
package while it is still loading apps, before task modules may import models.
"""

from importlib import import_module
from typing import Any


def __getattr__(name: str) -> Any:
    if not name.startswith("_"):
        tasks = import_module("background_tasks.tasks")
        if name in tasks.__all__:
            return getattr(tasks, name)
    raise AttributeError(f"module 'background_tasks' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *import_module("background_tasks.tasks").__all__])
