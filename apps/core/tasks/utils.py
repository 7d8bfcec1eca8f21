"""Retry policy presets: ``@shared_task(name=..., **task_retry_policy("email"))``.

Each preset retries only on named transient errors, with exponential backoff (``retry_backoff``
is the factor in seconds) and full jitter, up to ``max_retries``; anything else fails at once
so Celery records it. Every preset is late-ack and requeues on a lost worker: tasks here are
idempotent (see apps.core.idempotency), so running one again after a crash is safe.
"""

from __future__ import annotations

import smtplib
from typing import Any

from django.db import InterfaceError, OperationalError

from apps.core.idempotency import SideEffectInProgress
from apps.core.mail import TransientMailError
from apps.core.tasks.circuit_breaker import CircuitOpenError

NETWORK_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
DATABASE_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)
SMTP_ERRORS: tuple[type[BaseException], ...] = (
    TransientMailError,
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
)

_LATE_ACK = {"acks_late": True, "reject_on_worker_lost": True}

RETRY_POLICIES: dict[str, dict[str, Any]] = {
    "default": {
        "autoretry_for": (*NETWORK_ERRORS, *DATABASE_ERRORS, SideEffectInProgress),
        "max_retries": 3,
        "retry_backoff": 5,
        "retry_backoff_max": 300,
        "retry_jitter": True,
        "soft_time_limit": 240,
        "time_limit": 300,
        **_LATE_ACK,
    },
    "email": {
        "autoretry_for": (*SMTP_ERRORS, *NETWORK_ERRORS, *DATABASE_ERRORS, SideEffectInProgress),
        "max_retries": 5,
        "retry_backoff": 30,
        "retry_backoff_max": 1800,
        "retry_jitter": True,
        "soft_time_limit": 60,
        "time_limit": 90,
        **_LATE_ACK,
    },
    # Beat tasks that mail a whole backlog (auto-close, escalation, reminders): the same errors,
    # more time. At the soft limit deliver() records what it sent and releases the rest for the
    # next run, so the hard limit never cuts a batch between a send and its record.
    "bulk_email": {
        "autoretry_for": (*SMTP_ERRORS, *NETWORK_ERRORS, *DATABASE_ERRORS, SideEffectInProgress),
        "max_retries": 3,
        "retry_backoff": 60,
        "retry_backoff_max": 1800,
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
        "max_retries": 5,
        "retry_backoff": 15,
        "retry_backoff_max": 900,
        "retry_jitter": True,
        "soft_time_limit": 60,
        "time_limit": 90,
        **_LATE_ACK,
    },
    "database_heavy": {
        "autoretry_for": (*DATABASE_ERRORS, SideEffectInProgress),
        "max_retries": 3,
        "retry_backoff": 10,
        "retry_backoff_max": 600,
        "retry_jitter": True,
        "soft_time_limit": 900,
        "time_limit": 1200,
        **_LATE_ACK,
    },
    "maintenance": {
        "autoretry_for": DATABASE_ERRORS,
        "max_retries": 1,
        "retry_backoff": 300,
        "retry_backoff_max": 1800,
        "retry_jitter": True,
        "soft_time_limit": 3300,
        "time_limit": 3600,
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
