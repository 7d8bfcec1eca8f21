"""What is failing right now, for /healthz: tasks that retry on transient errors (a mail server,
a partner, the MQTT broker, the cache or the database away).

Each retry refreshes its task's entry in the cache (first and last retry, how many, the error);
an entry lapses RETRYING_WINDOW_SECONDS after its task's last retry. Best effort: a cache that
is down itself records nothing and breaks no retry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache

logger = logging.getLogger(__name__)

RETRYING_WINDOW_SECONDS = 600


def _key(task: str) -> str:
    return f"retrying:{task}"


def record_retry(task: str, error: BaseException) -> None:
    """Note that `task` is retrying because of `error`."""
    now = time.time()
    try:
        seen = cache.get(_key(task)) or {"since": now, "retries": 0}
        cache.set(
            _key(task),
            {
                "since": seen["since"],
                "last": now,
                "retries": seen["retries"] + 1,
                "error": type(error).__name__,
            },
            timeout=RETRYING_WINDOW_SECONDS,
        )
    except Exception:
        logger.debug("outage_not_recorded task=%s", task, exc_info=True)


def retrying_tasks(tasks: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The tasks of `tasks` that retried within the window, with their entries."""
    names = list(tasks)
    found = cache.get_many([_key(name) for name in names])
    return {name: found[_key(name)] for name in names if _key(name) in found}
