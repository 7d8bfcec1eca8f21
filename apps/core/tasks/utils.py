"""Retry policy presets: ``@shared_task(name=..., **task_retry_policy("email"))``.

Each preset retries only on named transient errors, with exponential backoff (``retry_backoff``
is the factor in seconds, capped at ``retry_backoff_max``) and full jitter, for as long as its
``retry_window`` (see BaseTask.retry); anything else fails at once so Celery records it. Every
preset is late-ack and requeues on a lost worker: tasks here are idempotent (see
apps.core.idempotency), so running one again after a crash is safe.
"""

from __future__ import annotations

import smtplib
from typing import Any

import redis.exceptions
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerUnavailable

from apps.core.idempotency import SideEffectInProgress
from apps.core.mail import TransientMailError
from apps.core.tasks.circuit_breaker import CircuitOpenError

# redis-py's errors (the cache, a Redis broker) are not the built-in ones; kombu raises its own
# when a task starts another while the broker is away.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    BrokerUnavailable,
)
DATABASE_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)
SMTP_ERRORS: tuple[type[BaseException], ...] = (
    TransientMailError,
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
)

_LATE_ACK = {"acks_late": True, "reject_on_worker_lost": True}
MINUTE = 60
HOUR = 60 * MINUTE

# Transient errors are retried for a span of time (``retry_window``, from the task's first
# publication), not a number of attempts: an outage of the mail server, the database or a
# partner is ridden out however often the task tries meanwhile, and a short ``retry_backoff_max``
# means work flows again soon after the outage ends. Every hard time limit stays under
# RabbitMQ's consumer timeout (30 minutes), which closes a channel holding a message longer.
RETRY_POLICIES: dict[str, dict[str, Any]] = {
    "default": {
        "autoretry_for": (*NETWORK_ERRORS, *DATABASE_ERRORS, SideEffectInProgress),
        "max_retries": None,
        "retry_window": HOUR,
        "retry_backoff": 2,
        "retry_backoff_max": 60,
        "retry_jitter": True,
        "soft_time_limit": 240,
        "time_limit": 300,
        **_LATE_ACK,
    },
    # A mail survives a six-hour outage of the mail server; once it is back, each waiting
    # mail is tried again within 90 seconds.
    "email": {
        "autoretry_for": (*SMTP_ERRORS, *NETWORK_ERRORS, *DATABASE_ERRORS, SideEffectInProgress),
        "max_retries": None,
        "retry_window": 6 * HOUR,
        "retry_backoff": 5,
        "retry_backoff_max": 90,
        "retry_jitter": True,
        "soft_time_limit": 60,
        "time_limit": 90,
        **_LATE_ACK,
    },
    # Beat tasks that mail a whole backlog (auto-close, escalation, reminders): the same errors,
    # more time. At the soft limit deliver() records what it sent and releases the rest, so the
    # hard limit never cuts a batch between a send and its record; the next run mails the rest.
    "bulk_email": {
        "autoretry_for": (*SMTP_ERRORS, *NETWORK_ERRORS, *DATABASE_ERRORS, SideEffectInProgress),
        "max_retries": None,
        "retry_window": HOUR,
        "retry_backoff": 10,
        "retry_backoff_max": 300,
        "retry_jitter": True,
        "soft_time_limit": 900,
        "time_limit": 960,
        **_LATE_ACK,
    },
    "external_api": {
        "autoretry_for": (
            *NETWORK_ERRORS,
            *DATABASE_ERRORS,
            CircuitOpenError,
            SideEffectInProgress,
        ),
        "max_retries": None,
        "retry_window": 2 * HOUR,
        "retry_backoff": 5,
        "retry_backoff_max": 120,
        "retry_jitter": True,
        # Above the longest wait of one call: a partner call's deadline (up to 120 s), the
        # transcription engine's timeout, or an MQTT publish and a mail.
        "soft_time_limit": 130,
        "time_limit": 160,
        **_LATE_ACK,
    },
    "database_heavy": {
        "autoretry_for": (*NETWORK_ERRORS, *DATABASE_ERRORS, SideEffectInProgress),
        "max_retries": None,
        "retry_window": HOUR,
        "retry_backoff": 5,
        "retry_backoff_max": 120,
        "retry_jitter": True,
        "soft_time_limit": 900,
        "time_limit": 1200,
        **_LATE_ACK,
    },
    # Periodic housekeeping: each run is interruptible and the next run continues its work.
    "maintenance": {
        "autoretry_for": (*NETWORK_ERRORS, *DATABASE_ERRORS),
        "max_retries": None,
        "retry_window": HOUR,
        "retry_backoff": 30,
        "retry_backoff_max": 300,
        "retry_jitter": True,
        "soft_time_limit": 1380,
        "time_limit": 1440,
        **_LATE_ACK,
    },
}


def task_retry_policy(name: str) -> dict[str, Any]:
    """The Celery task options of preset `name` (a fresh copy)."""
    try:
        return dict(RETRY_POLICIES[name])
    except KeyError:
        known = ", ".join(sorted(RETRY_POLICIES))
        raise KeyError(f"unknown retry policy {name!r}; known: {known}") from None
