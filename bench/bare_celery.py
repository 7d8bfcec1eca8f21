"""A bare Celery app for bench/task_path.py: no Django, results in Redis.

The bench and this app's worker (``celery -A bench.bare_celery worker -Q bare``) both import
it. ``BARE_BROKER_URL`` is the broker and ``BARE_REDIS_URL`` the Redis of its results and
counter: ``redis://`` gets kombu's own transport through the alias ``bareredis://``, since the
project maps ``redis://`` to its leasing variant in any process that imports it.

Its tasks do what the project's tasks they stand beside do, and no more:

- ``bare.count``: no result; adds one to a Redis counter (the heartbeat stores no result and
  upserts one row);
- ``bare.noop``: stores its result (the project's ``bench.noop`` with its ``django-db`` row);
- ``bare.publish``: no result; publishes one QoS 1 message with a paho client the process keeps
  connected and waits for the broker's PUBACK (``publish_mqtt``).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import redis
from celery import Celery
from kombu import Queue
from kombu.transport import TRANSPORT_ALIASES

BARE_QUEUE = "bare"
COUNTER_KEY = "bare:count"
TRANSPORT_ALIASES["bareredis"] = "kombu.transport.redis:Transport"

broker_url = os.environ.get("BARE_BROKER_URL", "redis://127.0.0.1:6379/13")
if broker_url.startswith("redis"):
    broker_url = "bare" + broker_url
redis_url = os.environ.get("BARE_REDIS_URL", "redis://127.0.0.1:6379/13")

# Not the current app: in the bench's process the project's app sends the project's tasks.
app = Celery("bare", broker=broker_url, backend=redis_url, set_as_current=False)
app.conf.update(
    task_queues=[Queue(BARE_QUEUE)],
    task_default_queue=BARE_QUEUE,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    task_serializer="json",
    accept_content=["json"],
    # Celery's default acknowledges on receipt; BARE_ACKS_LATE=1 acknowledges after the run, as
    # the project's tasks do (at least once).
    task_acks_late=os.environ.get("BARE_ACKS_LATE") == "1",
)
_counter = redis.Redis.from_url(redis_url)


@app.task(name="bare.count", ignore_result=True)
def count() -> None:
    _counter.incr(COUNTER_KEY)


@app.task(name="bare.noop")
def noop() -> None:
    """Does nothing; its result is stored."""


class _Publisher:
    """One paho client per process, connected on first use and kept."""

    def __init__(self) -> None:
        self.client: Any = None
        self.pid = 0
        self.lock = threading.Lock()

    def get(self) -> Any:
        import paho.mqtt.client as paho

        with self.lock:
            if self.client is None or self.pid != os.getpid():
                url = urlsplit(os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883"))
                client = paho.Client(paho.CallbackAPIVersion.VERSION2)
                client.connect(url.hostname or "127.0.0.1", url.port or 1883, 30)
                client.loop_start()
                while not client.is_connected():  # the broker's CONNACK, as the project waits
                    time.sleep(0.01)
                self.client, self.pid = client, os.getpid()
            return self.client


_publisher = _Publisher()


@app.task(name="bare.publish", ignore_result=True)
def publish(topic: str, payload: str) -> None:
    _publisher.get().publish(topic, payload, qos=1).wait_for_publish(10)
