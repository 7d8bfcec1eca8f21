"""No-op tasks for bench/broker_roundtrip.py, on a dedicated ``bench`` queue.

Both the producer and the bench worker (``celery -A bench.noop_tasks worker -Q bench``) import
this module, so both see the ``bench`` queue and the routes to it. It must be the ``-A`` target:
the worker checks ``-Q`` against the declared queues before it imports ``-I`` modules.
"""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready
from django.core.cache import cache
from kombu import Queue

from intelliwiz_config.celery import announce_ready_worker, app

BENCH_QUEUE = "bench"
COUNTER_KEY = "bench:noop_count"

if all(queue.name != BENCH_QUEUE for queue in app.conf.task_queues):
    app.conf.task_queues.append(Queue(BENCH_QUEUE))
app.conf.task_routes.update(
    {name: {"queue": BENCH_QUEUE} for name in ("bench.noop", "bench.noop_count")}
)
# A bench worker must not drop a heartbeat into the real `default` queue of a shared broker.
worker_ready.disconnect(announce_ready_worker)


@shared_task(name="bench.noop", ignore_result=False)
def noop() -> None:
    """Does nothing but store its result: the round trip is all broker, worker and result
    backend (the project's tasks store none unless they are read)."""


@shared_task(name="bench.noop_count")
def noop_count() -> None:
    """Does nothing but count itself, for runs whose results are ignored."""
    cache.incr(COUNTER_KEY)
