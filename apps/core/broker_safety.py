"""Whether a Redis broker can keep its promise: persistence on, no eviction, its data intact.

A Redis broker holds every queued message. Without its append-only file a restart empties it,
and with an evicting ``maxmemory-policy`` memory pressure drops messages: both lose tasks in
silence. ``broker_problems`` names what is unsafe (a production worker and beat refuse to
start on it; /healthz shows it). A marker key, recorded in the database as well, tells when the
broker lost its data anyway: ``verify_broker_marker`` finds it gone, records and logs the loss.
Read from ``INFO`` (allowed where ``CONFIG`` is not, on managed Redis).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import F
from django.db.models.functions import Now

from apps.core.models import BrokerMarker

logger = logging.getLogger(__name__)

MARKER_KEY = "intelliwiz:broker-marker"


@contextmanager
def _redis_client(app: Any) -> Iterator[tuple[Any, str] | None]:
    """The broker's Redis client and its label (host:port/db), or None for other brokers."""
    with app.connection_for_write() as conn:
        if conn.transport.driver_type != "redis":
            yield None
            return
        client = conn.default_channel.client
        params = client.connection_pool.connection_kwargs
        yield client, f"{params.get('host')}:{params.get('port')}/{params.get('db', 0)}"


def broker_problems(app: Any) -> list[str]:
    """What makes the broker unsafe for queued messages (empty: nothing, or not Redis)."""
    with _redis_client(app) as redis:
        if redis is None:
            return []
        client, label = redis
        persistence = client.info("persistence")
        memory = client.info("memory")
    problems = []
    if not int(persistence.get("aof_enabled", 0)):
        problems.append(
            f"Redis broker {label} runs without its append-only file (appendonly no): "
            "a restart loses every queued message; set appendonly yes"
        )
    policy = memory.get("maxmemory_policy", "noeviction")
    if policy != "noeviction":
        problems.append(
            f"Redis broker {label} evicts keys under memory pressure "
            f"(maxmemory-policy {policy}): queued messages can be dropped; set noeviction"
        )
    return problems


def verify_broker_marker(app: Any) -> datetime | None:
    """Check the broker still holds its marker; record and log a loss. Returns when the broker
    was last found to have lost its data (None: never, or not Redis)."""
    with _redis_client(app) as redis:
        if redis is None:
            return None
        client, label = redis
        row = BrokerMarker.objects.filter(broker=label).first()
        found = client.get(MARKER_KEY)
        if row is not None and found is not None and found.decode() == row.marker:
            return row.data_lost_at
        if found is None:
            client.set(MARKER_KEY, uuid.uuid4().hex, nx=True)  # one setter wins a race
            found = client.get(MARKER_KEY)
        marker = found.decode()
    if row is None:
        row, _ = BrokerMarker.objects.get_or_create(
            broker=label, defaults={"marker": marker, "created_at": Now()}
        )
        return row.data_lost_at
    # The broker lost the marker, and its data with it; the first process to notice records it.
    if BrokerMarker.objects.filter(pk=row.pk, marker=row.marker).update(
        marker=marker, data_lost_at=Now(), losses=F("losses") + 1
    ):
        logger.error(
            "broker_data_lost broker=%s: the broker came back without its data (restarted "
            "without its append-only file, or flushed); messages queued before are gone",
            label,
        )
    row.refresh_from_db()
    return row.data_lost_at


def refuse_unsafe_broker(app: Any) -> None:
    """A production process that sends messages will not run on a broker that would lose them
    (apps.core.broker_safety); elsewhere it warns."""
    problems = broker_problems(app)
    if problems and settings.PRODUCTION:
        raise ImproperlyConfigured("unsafe broker: " + "; ".join(problems))
    if problems:
        logger.warning("broker_unsafe %s", "; ".join(problems))
