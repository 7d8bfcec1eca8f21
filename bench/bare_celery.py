"""A bare Celery app for bench/task_path.py: no Django, one no-op task, results in Redis.

The bench and this app's worker (``celery -A bench.bare_celery worker -Q bare``) both import
it. ``BARE_BROKER_URL`` is the broker (Redis db 13 by default): ``redis://`` gets kombu's own
transport through the alias ``bareredis://``, since the project maps ``redis://`` to its leasing
variant in any process that imports it.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue
from kombu.transport import TRANSPORT_ALIASES

BARE_QUEUE = "bare"
TRANSPORT_ALIASES["bareredis"] = "kombu.transport.redis:Transport"

broker_url = os.environ.get("BARE_BROKER_URL", "redis://127.0.0.1:6379/13")
if broker_url.startswith("redis"):
    broker_url = "bare" + broker_url

# Not the current app: in the bench's process the project's app sends the project's tasks.
app = Celery(
    "bare",
    broker=broker_url,
    backend=os.environ.get("BARE_RESULT_URL", "redis://127.0.0.1:6379/13"),
    set_as_current=False,
)
app.conf.update(
    task_queues=[Queue(BARE_QUEUE)],
    task_default_queue=BARE_QUEUE,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
)


@app.task(name="bare.noop")
def noop() -> None:
    """Does nothing."""
