"""The idempotency ledger: a side effect happens once however often its task runs.

    claim = claim_side_effect("permit:12:approved:alice@example.com")
    if claim is not None:          # None: it was done already
        send_the_mail()
        claim.complete()

or simply ``perform_once(key, send_the_mail)``. A claim is a row inserted under a unique key,
so two workers racing for the same key cannot both win. A claim is leased for as long as the
task making it can live (its hard time limit, after which the worker kills it, plus a margin):
a claim whose lease ran out belongs to a dead run and is taken over; one still leased raises
``SideEffectInProgress`` with the seconds left, and the task retries once they are over.
Claim outside any surrounding transaction, or other workers cannot see it until that
transaction commits.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import current_task
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.core.models import IdempotencyKey

# Claims made outside a task (commands, the shell) and by tasks with no time limit.
DEFAULT_LEASE = timedelta(minutes=10)
LEASE_MARGIN = timedelta(seconds=15)


def running_task_lease() -> timedelta:
    """How long the running task can hold a claim: its hard time limit plus a margin."""
    task = current_task  # a proxy: false outside a task
    if not task or task.request.called_directly:
        return DEFAULT_LEASE
    hard_limit = (task.request.timelimit or (None, None))[0] or task.time_limit
    hard_limit = hard_limit or task.app.conf.task_time_limit
    return timedelta(seconds=hard_limit) + LEASE_MARGIN if hard_limit else DEFAULT_LEASE


class SideEffectInProgress(Exception):
    """A live claim holds this key; try again once its lease is over (``retry_after``)."""

    def __init__(self, key: str, retry_after: float = 0.0) -> None:
        super().__init__(key, retry_after)
        self.key = key
        self.retry_after = retry_after

    def __str__(self) -> str:
        return (
            f"side effect {self.key!r} is held by another run "
            f"for up to {self.retry_after:.0f} s more"
        )


def _seconds_until(moment: datetime | None) -> float:
    return max(0.0, (moment - timezone.now()).total_seconds()) if moment else 0.0


def _record_patiently(write: Callable[[], object]) -> None:
    """Record how a claimed side effect ended, retrying while the database is away (up to
    LEDGER_RECORD_PATIENCE_SECONDS): a done effect left unrecorded would be done again once
    its claim runs out, a released one would wait for that. Inside a transaction the caller's
    own rollback decides, so no retry."""
    deadline = time.monotonic() + settings.LEDGER_RECORD_PATIENCE_SECONDS
    pause = 0.25
    while True:
        try:
            write()
            return
        except (OperationalError, InterfaceError):
            if connection.in_atomic_block or time.monotonic() + pause > deadline:
                raise
            connection.close()  # the next attempt opens a fresh connection
            time.sleep(pause)
            pause = min(pause * 2, 4.0)


@dataclass(frozen=True)
class Claim:
    key: str
    owner: str

    def complete(self) -> None:
        """Mark the side effect done, waiting out a database outage. Idempotent."""
        _record_patiently(
            lambda: IdempotencyKey.objects.filter(key=self.key, owner=self.owner).update(
                status=IdempotencyKey.Status.DONE, completed_at=timezone.now()
            )
        )

    def release(self) -> None:
        """Give the key back after a failed attempt, so a retry may claim it at once (not
        after the lease), also when the database was away a moment."""
        _record_patiently(
            lambda: IdempotencyKey.objects.filter(
                key=self.key, owner=self.owner, status=IdempotencyKey.Status.IN_PROGRESS
            ).delete()
        )


def _new_claim(
    key: str, owner: str, task_id: str, now: datetime, lease: timedelta
) -> IdempotencyKey:
    return IdempotencyKey(
        key=key, owner=owner, task_id=task_id or "", claimed_at=now, lease_expires_at=now + lease
    )


def _take_over_expired(
    keys: list[str], owner: str, task_id: str, now: datetime, lease: timedelta
) -> int:
    """Re-own claims whose holder died: still in progress after their lease ran out."""
    return IdempotencyKey.objects.filter(
        key__in=keys, status=IdempotencyKey.Status.IN_PROGRESS, lease_expires_at__lt=now
    ).update(
        owner=owner,
        task_id=task_id or "",
        claimed_at=now,
        lease_expires_at=now + lease,
        claims=F("claims") + 1,
    )


def claim_side_effect(
    key: str, *, lease: timedelta | None = None, task_id: str = ""
) -> Claim | None:
    """Claim `key`; None when its side effect is already done."""
    if not key or len(key) > 255:
        raise ValueError(f"idempotency key must be 1 to 255 characters, got {len(key)}")
    lease = lease or running_task_lease()
    owner = uuid.uuid4().hex
    for _ in range(3):  # a concurrent release can remove the row between our two steps
        now = timezone.now()
        try:
            # In autocommit the INSERT alone is atomic: one round trip. Inside a transaction a
            # savepoint keeps a conflict from breaking it.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                _new_claim(key, owner, task_id, now, lease).save(force_insert=True)
            return Claim(key, owner)
        except IntegrityError:
            pass
        if _take_over_expired([key], owner, task_id, now, lease):
            return Claim(key, owner)
        held = IdempotencyKey.objects.filter(key=key).values("status", "lease_expires_at").first()
        if held and held["status"] == IdempotencyKey.Status.DONE:
            return None
        if held:
            raise SideEffectInProgress(key, _seconds_until(held["lease_expires_at"]))
    raise SideEffectInProgress(key)


def perform_once(
    key: str, effect: Callable[[], object], *, lease: timedelta | None = None, task_id: str = ""
) -> bool:
    """Run `effect` unless `key` is done already; True when it ran now."""
    claim = claim_side_effect(key, lease=lease, task_id=task_id)
    if claim is None:
        return False
    try:
        effect()
    except BaseException:
        claim.release()
        raise
    claim.complete()
    return True


@dataclass(frozen=True)
class BatchClaim:
    """The keys one ``claim_many`` call won, under one owner token, and when the latest lease
    of the keys other runs hold runs out (None: no key was held by another run)."""

    keys: frozenset[str]
    owner: str
    others_hold_until: datetime | None = None

    def busy(self) -> SideEffectInProgress | None:
        """The error to retry on when other runs hold some of the keys, else None."""
        if self.others_hold_until is None:
            return None
        return SideEffectInProgress("batch", _seconds_until(self.others_hold_until))

    def complete(self, keys: set[str] | frozenset[str] | None = None) -> None:
        """Mark the side effects of `keys` (all won keys: None) done, waiting out a database
        outage."""
        if keys is not None and not keys:
            return
        _record_patiently(
            lambda: IdempotencyKey.objects.filter(
                key__in=self.keys if keys is None else keys, owner=self.owner
            ).update(status=IdempotencyKey.Status.DONE, completed_at=timezone.now())
        )

    def release_unfinished(self) -> None:
        """Give back every key this batch still holds (those not completed)."""
        _record_patiently(
            lambda: IdempotencyKey.objects.filter(
                owner=self.owner, status=IdempotencyKey.Status.IN_PROGRESS
            ).delete()
        )


def claim_many(
    keys: list[str], *, lease: timedelta | None = None, task_id: str = "", owner: str = ""
) -> BatchClaim:
    """Claim every free key of `keys` in a fixed number of queries.

    Keys already done, or held by another run's live claim, are left out; the result says
    until when those others hold theirs.
    """
    lease = lease or running_task_lease()
    owner = owner or uuid.uuid4().hex
    now = timezone.now()
    IdempotencyKey.objects.bulk_create(
        [_new_claim(key, owner, task_id, now, lease) for key in dict.fromkeys(keys)],
        ignore_conflicts=True,
    )
    _take_over_expired(keys, owner, task_id, now, lease)
    rows = IdempotencyKey.objects.filter(key__in=keys).values_list(
        "key", "owner", "status", "lease_expires_at"
    )
    won, others_hold_until = set(), None
    for key, key_owner, status, lease_expires_at in rows:
        if key_owner == owner:
            won.add(key)
        elif status == IdempotencyKey.Status.IN_PROGRESS:
            others_hold_until = max(others_hold_until or lease_expires_at, lease_expires_at)
    return BatchClaim(frozenset(won), owner, others_hold_until)
