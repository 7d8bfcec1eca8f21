"""What the worker does with messages beyond running them: nothing it takes is dropped unseen.

- ``TaskNames``, the app's task registry, resolves upstream's auto-generated task names to the
  current tasks (aliases declared in intelliwiz_config.celery): looked up, never listed, so the
  registered names stay exactly the contract's.
- ``Consumer``, the worker's consumer, runs a message under an alias as its task (the run logs a
  ``task_legacy_call`` line naming the old name), and keeps a message it cannot run (a name no
  task has, a body it cannot decode) as a dead letter with the reason before settling it, where
  Celery alone logs "Received unregistered task" and deletes the message.
- ``UpstreamQueueDrain``, a consumer step, takes what waits on upstream's queues (its plain
  ``.delay()`` went to Celery's default queue ``celery``, its MQTT client's to
  ``django5_queue``) and re-publishes each message unchanged on the queue its task name routes
  to; a name no task has is a dead letter there too.

If the dead letter cannot be written (the database is away), the message stays held and is
tried again after ``RETRY_SECONDS``: it is settled only once it is kept.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps
from celery.app.registry import TaskRegistry
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu import Consumer as MessageConsumer
from kombu import Queue
from kombu.message import Message

logger = logging.getLogger("intelliwiz.tasks")
RETRY_SECONDS = 5.0
DRAIN_PREFETCH = 16


class UnrunnableMessage(Exception):
    """Why a message taken from the broker cannot run here; the error of its dead letter."""


class TaskNames(TaskRegistry):
    """The task registry, where each of `aliases` (an upstream name: the current name) finds
    the current task, and `retired` (an upstream name: why it is gone, what to use) explains
    the others."""

    def __init__(self, aliases: dict[str, str], retired: dict[str, tuple[str, str]]) -> None:
        super().__init__()
        self.aliases = dict(aliases)
        self.retired = dict(retired)

    def __missing__(self, key: str) -> Any:
        current = self.aliases.get(key)
        if current is not None and dict.__contains__(self, current):
            return dict.__getitem__(self, current)
        raise self.NotRegistered(key)

    def current_name(self, name: str) -> str | None:
        """The registered name a message sent as `name` runs under, or None."""
        if dict.__contains__(self, name):
            return name
        current = self.aliases.get(name)
        return current if current is not None and dict.__contains__(self, current) else None

    def why_unknown(self, name: str) -> str:
        if name in self.retired:
            why, use = self.retired[name]
            return f"{name!r} is an upstream task that is gone: {why}; use {use}"
        return (
            f"no task is registered as {name!r} here (the registered names are the task "
            "registry's, and upstream's auto-generated names are aliases; MIGRATING.md)"
        )


def task_names(app: Any) -> TaskNames:
    names = app.tasks
    if not isinstance(names, TaskNames):
        raise TypeError(f"the app's task registry is a {type(names).__name__}, not TaskNames")
    return names


def _message_task(message: Message) -> tuple[str, str]:
    """The task name and id a message carries (protocol 2 headers, else a protocol 1 body)."""
    headers = message.headers or {}
    if "task" in headers:
        return str(headers["task"]), str(headers.get("id") or "")
    try:
        payload = message.decode()
    except Exception:
        return "", ""
    if isinstance(payload, dict):
        return str(payload.get("task") or ""), str(payload.get("id") or "")
    return "", ""


def _message_arguments(message: Message) -> tuple[list[Any], dict[str, Any]]:
    """The arguments to keep: decoded when the body decodes, else the body's text."""
    try:
        payload = message.decode()
    except Exception:
        body = message.body
        return [body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)], {}
    if isinstance(payload, list | tuple) and len(payload) == 3:  # protocol 2
        args, kwargs, _ = payload
        return list(args or []), dict(kwargs or {})
    if isinstance(payload, dict):  # protocol 1
        return list(payload.get("args") or []), dict(payload.get("kwargs") or {})
    return [payload], {}


def keep_unknown_task(names: TaskNames, message: Message, name: str, task_id: str) -> bool:
    """Keep a message naming no task here as a dead letter; one of upstream's retired names
    also logs its task_legacy_call line. False when it could not be written."""
    if not keep_as_dead_letter(message, name, task_id, names.why_unknown(name)):
        return False
    if name in names.retired:
        logger.warning(
            'task_legacy_call task=- id=%s name=%s refused use="%s"',
            task_id,
            name,
            names.retired[name][1],
        )
    return True


def keep_as_dead_letter(message: Message, name: str, task_id: str, reason: str) -> bool:
    """Record `message` as a dead letter with `reason`; False when it could not be written."""
    from django.db import DatabaseError

    from apps.core import metrics
    from apps.core.dead_letters import record_dead_letter

    queue = str((message.delivery_info or {}).get("routing_key") or "")
    args, kwargs = _message_arguments(message)
    try:
        record_dead_letter(
            task_name=name or "(no task name)",
            task_id=task_id,
            queue=queue,
            args=args,
            kwargs=kwargs,
            exc=UnrunnableMessage(reason),
            retries=int((message.headers or {}).get("retries") or 0),
        )
    except DatabaseError as exc:
        logger.error(
            "message_not_kept task=%s id=%s queue=%s retry_in_s=%s error=%s",
            name,
            task_id,
            queue,
            RETRY_SECONDS,
            exc,
        )
        return False
    metrics.record_dead_letter(name, queue)
    logger.warning(
        "message_dead_lettered task=%s id=%s queue=%s reason=%r", name, task_id, queue, reason
    )
    return True


class Consumer(CeleryConsumer):
    """Celery's consumer, with upstream's task names and dead letters for what cannot run."""

    strategies: dict[str, Any]  # set in Celery's __init__; celery-types lacks these
    connection_errors: tuple[type[BaseException], ...]

    def update_strategies(self) -> None:
        super().update_strategies()
        for alias, current in task_names(self.app).aliases.items():
            if current in self.strategies:
                self.strategies[alias] = self.strategies[current]

    def on_unknown_task(self, body: Any, message: Message, exc: Exception) -> None:
        name, task_id = _message_task(message)
        if not keep_unknown_task(task_names(self.app), message, name, task_id):
            self.timer.call_after(RETRY_SECONDS, self.on_unknown_task, (body, message, exc))
            return
        super().on_unknown_task(body, message, exc)

    def on_unknown_message(self, body: Any, message: Message) -> None:
        if self._kept(message, "the message names no task (not a Celery task message)"):
            super().on_unknown_message(body, message)

    def on_invalid_task(self, body: Any, message: Message, exc: Exception) -> None:
        if self._kept(message, f"the message is not a valid task message: {exc}"):
            super().on_invalid_task(body, message, exc)

    def on_decode_error(self, message: Message, exc: Exception) -> None:
        if self._kept(message, f"the message cannot be decoded: {exc}"):
            super().on_decode_error(message, exc)

    def _kept(self, message: Message, reason: str) -> bool:
        name, task_id = _message_task(message)
        if keep_as_dead_letter(message, name, task_id, reason):
            return True
        self.timer.call_after(RETRY_SECONDS, self._retry_keep, (message, reason))
        return False

    def _retry_keep(self, message: Message, reason: str) -> None:
        if self._kept(message, reason):
            message.reject_log_error(logger, self.connection_errors)


class UpstreamQueueDrain(bootsteps.ConsumerStep):
    """Move the messages waiting on upstream's queues (``app.conf.upstream_queues``) onto ours.

    Runs in a worker that consumes the default queue, while settings.DRAIN_UPSTREAM_QUEUES is on
    (the default; an operator turns it off once upstream's producers are gone and the queues
    are empty). Each message is re-published as it is (body, headers, task id) on the queue its
    task name routes to, upstream's names through their aliases, then acknowledged; a name no
    task has is a dead letter. A worker that dies between the two leaves the message to be moved
    again: the task runs at least once, and the tasks' ledger keys make a repeat harmless.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.parent = parent

    def start(self, c: Any) -> None:
        from django.conf import settings

        queues = c.app.amqp.queues
        if not settings.DRAIN_UPSTREAM_QUEUES or c.app.conf.task_default_queue not in (
            queues.consume_from or queues
        ):
            return
        super().start(c)
        logger.info("upstream_queues_drained queues=%s", ",".join(c.app.conf.upstream_queues))

    def get_consumers(self, channel: Any) -> list[MessageConsumer]:
        return [
            MessageConsumer(
                channel,
                queues=[Queue(name) for name in self.parent.app.conf.upstream_queues],
                on_message=self.move,
                prefetch_count=DRAIN_PREFETCH,
            )
        ]

    def move(self, message: Message) -> None:
        app = self.parent.app
        name, task_id = _message_task(message)
        names = task_names(app)
        current = names.current_name(name)
        if current is None:
            kept = (
                keep_unknown_task(names, message, name, task_id)
                if name
                else keep_as_dead_letter(
                    message, name, task_id, "the message names no task (not a Celery task message)"
                )
            )
            if kept:
                message.ack()
            else:
                self.parent.timer.call_after(RETRY_SECONDS, self.move, (message,))
            return
        queue = app.amqp.router.route({}, current)["queue"]
        properties: dict[str, Any] = dict(message.properties or {})
        # On a connection of the app's pool, not the one consuming: a publish waiting for the
        # broker there would handle other deliveries before their consumer is set up.
        with app.producer_pool.acquire(block=True) as producer:
            producer.publish(
                message.body,
                # As Celery sends a task routed to a queue: the nameless exchange, by queue name.
                exchange="",
                routing_key=queue.name,
                declare=[queue],
                headers=message.headers,
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                retry=True,
                **{
                    key: properties[key]
                    for key in ("correlation_id", "reply_to", "priority", "delivery_mode")
                    if properties.get(key) is not None
                },
            )
        message.ack()
        logger.info(
            "upstream_message_moved task=%s id=%s from=%s to=%s",
            name,
            task_id,
            (message.delivery_info or {}).get("routing_key", ""),
            queue.name,
        )
