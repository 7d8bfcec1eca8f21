"""Beat: the declared schedule in django-celery-beat's tables, and a scheduler that sends each
periodic entry once per period however many beat processes run.

``sync_beat_schedule`` loads the schedule declared in intelliwiz_config.celery into the tables:
entries are created when missing and left alone when present, so an operator's edits in the
admin survive restarts and deploys; ``--reset`` puts the declared definitions back. Entries
whose task is not registered yet are skipped, so beat never sends an unknown name.

``LeaderDatabaseScheduler`` is django-celery-beat's scheduler with two guards. A lease in the
database (``BeatLock``, by the database's clock) elects one beat to send; another beat stands
by and takes over within ``BEAT_LOCK_LEASE_SECONDS`` of the leader's death. And an entry is
sent only by the beat whose compare-and-set of its ``last_run_at`` succeeds (the row still
holds the value the send was decided on), so even two beats that both believe they lead cannot
send one period twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import uuid
from datetime import timedelta
from typing import Any

from celery.schedules import crontab
from django.conf import settings
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    close_old_connections,
    transaction,
)
from django.db.models import Case, DateTimeField, ExpressionWrapper, F, Q, Value, When
from django.db.models.functions import Now
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from apps.core.broker_safety import refuse_unsafe_broker
from apps.core.models import BeatLock

logger = logging.getLogger(__name__)
BEAT_LOCK = "beat"


def _crontab_row(schedule: crontab) -> CrontabSchedule:
    row = CrontabSchedule.from_schedule(schedule)
    if row.pk is None:
        row.save()
    return row


def sync_beat_schedule(*, reset: bool = False) -> dict[str, list[str]]:
    from celery import current_app as app

    app.loader.import_default_modules()
    report: dict[str, list[str]] = {"created": [], "reset": [], "kept": [], "skipped": []}
    with transaction.atomic():
        for name, entry in app.conf.declared_beat_schedule.items():
            if entry["task"] not in app.tasks:
                report["skipped"].append(name)
                continue
            options: dict[str, Any] = entry["options"]
            defaults = {
                "task": entry["task"],
                "crontab": _crontab_row(entry["schedule"]),
                "interval": None,
                "queue": options["queue"],
                "expire_seconds": options["expires"],
                "args": "[]",
                "kwargs": json.dumps(entry.get("kwargs", {})),
                "enabled": True,
            }
            existing = PeriodicTask.objects.filter(name=name).first()
            if existing is None:
                PeriodicTask.objects.create(name=name, **defaults)
                report["created"].append(name)
            elif reset:
                for field, value in defaults.items():
                    setattr(existing, field, value)
                existing.save()
                report["reset"].append(name)
            else:
                report["kept"].append(name)
    return report


def install_beat_schedule_after_migrate(**kwargs: Any) -> None:
    report = sync_beat_schedule()
    if report["created"]:
        logger.info("beat schedule: created %s", ", ".join(report["created"]))


def hold_beat_lock(holder: str, lease: timedelta) -> bool:
    """Take the beat lock, or renew it if `holder` has it; False while another beat holds it.
    The lease is written and judged by the database's clock, never a beat host's."""
    expires_at = ExpressionWrapper(Now() + Value(lease), output_field=DateTimeField())
    taken = (
        BeatLock.objects.filter(name=BEAT_LOCK)
        .filter(Q(holder=holder) | Q(expires_at__lt=Now()))
        .update(
            holder=holder,
            renewed_at=Now(),
            expires_at=expires_at,
            acquired_at=Case(When(holder=holder, then=F("acquired_at")), default=Now()),
        )
    )
    if taken:
        return True
    try:
        with transaction.atomic():
            BeatLock.objects.create(
                name=BEAT_LOCK,
                holder=holder,
                acquired_at=Now(),
                renewed_at=Now(),
                expires_at=expires_at,
            )
    except IntegrityError:
        return False
    return True


def release_beat_lock(holder: str) -> None:
    BeatLock.objects.filter(name=BEAT_LOCK, holder=holder).delete()


class LeasedEntry(ModelEntry):
    # last_run_at and total_run_count are written by reserve()'s compare-and-set, never by
    # django-celery-beat's sync (a stale beat's sync would move them back).
    save_fields = ["no_changes"]

    def __init__(self, model: PeriodicTask, app: Any = None) -> None:
        # What the row said when this entry was read (or last written by us), before the
        # parent class fills in a missing value: the compare-and-set compares against it.
        self.stored_last_run_at = model.last_run_at
        super().__init__(model, app=app)


class LeaderDatabaseScheduler(DatabaseScheduler):
    Entry = LeasedEntry

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leading = False
        self._sent_by_us: dict[str, bool] = {}
        super().__init__(*args, **kwargs)
        if not kwargs.get("lazy"):
            refuse_unsafe_broker(self.app)

    def _lead(self) -> bool:
        lease = timedelta(seconds=settings.BEAT_LOCK_LEASE_SECONDS)
        try:
            close_old_connections()
            return hold_beat_lock(self.holder, lease)
        except (DatabaseError, InterfaceError) as exc:
            logger.warning("beat_lock_unavailable holder=%s error=%s", self.holder, exc)
            return False

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._lead():
            if self.leading:
                logger.warning("beat_lock_lost holder=%s: standing by", self.holder)
            self.leading = False
            return settings.BEAT_STANDBY_POLL_SECONDS
        if not self.leading:
            logger.info("beat_lock_acquired holder=%s: sending periodic tasks", self.holder)
            self.leading = True
            # The schedule read while standing by is stale (the leader moved its entries on):
            # django-celery-beat reads it all again on its initial read (its _initial_read),
            # and Celery's tick rebuilds its heap of due entries when there is none (_heap).
            self._initial_read = True
            self._heap = None
        return min(float(super().tick(*args, **kwargs)), settings.BEAT_STANDBY_POLL_SECONDS)

    def reserve(self, entry: LeasedEntry) -> LeasedEntry:
        previous = entry.stored_last_run_at
        new_entry: LeasedEntry = super().reserve(entry)
        if previous is None:
            unchanged = Q(last_run_at__isnull=True)
        else:
            unchanged = Q(last_run_at__lte=previous)
        try:
            won = bool(
                PeriodicTask.objects.filter(unchanged, pk=entry.model.pk).update(
                    last_run_at=new_entry.model.last_run_at,
                    total_run_count=F("total_run_count") + 1,
                )
            )
        except (DatabaseError, InterfaceError) as exc:
            logger.warning("beat_entry_not_claimed entry=%s error=%s", entry.name, exc)
            won = False
        self._sent_by_us[entry.name] = won
        return new_entry

    def apply_entry(self, entry: LeasedEntry, producer: Any = None) -> None:
        if self._sent_by_us.pop(entry.name, False):
            super().apply_entry(entry, producer=producer)
        else:
            logger.info("beat_entry_skipped entry=%s: sent for this period already", entry.name)

    def close(self) -> None:
        super().close()
        if self.leading:
            with contextlib.suppress(DatabaseError, InterfaceError):
                release_beat_lock(self.holder)  # a standby takes over at once
