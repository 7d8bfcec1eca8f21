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

Leases are written and judged by the database's clock (``Now()`` in every statement), never a
worker's: hosts whose clocks disagree still agree on when a claim ran out. A run whose own time
limit did not fire (its host cut off, a solo pool) cannot act on a claim it lost:
``ensure_held()`` renews the lease before each side effect and raises ``ClaimLost`` once
another run has taken it over, and a late ``complete()`` that finds the key in another run's
hands raises ``ClaimLost`` too instead of reporting success. The owner token of a claim is its
fence: a takeover writes a new one, so nothing the old run writes matches any more.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Collection
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta

from celery import current_task
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import DurationField, ExpressionWrapper, F, Value
from django.db.models.functions import Now

from apps.core.models import IdempotencyKey

logger = logging.getLogger(__name__)

# Claims made outside a task (commands, the shell) and by tasks with no time limit.
DEFAULT_LEASE = timedelta(minutes=10)
LEASE_MARGIN = timedelta(seconds=15)
# A run renews its claim before a side effect once this share of the lease has gone by (by
# its own monotonic clock), so an effect starts only while the lease has at least the rest.
RENEW_AFTER_SHARE = 1 / 3


def side_effect_identity(key: str) -> str:
    """A stable token for the side effect of `key`: every copy of one effect carries it (a
    mail's Message-ID, a partner call's Idempotency-Key, an MQTT message's id), so where an
    effect is repeated (at least once, see docs/operations.md, Guarantees) the receiver sees one."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


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


class ClaimLost(Exception):
    """Another run took over these keys after this run's lease ran out (this run was cut off or
    ran past its time limit). Raised before a side effect, it stops the run from acting; raised
    by ``complete()``, the effect may have happened twice, each time with the key's identity
    (``apps.core.mail.message_id``), so a receiver can tell the copies apart."""

    # Positional, so a result backend can rebuild it from its args.
    def __init__(self, keys: Collection[str], after_effect: bool) -> None:
        super().__init__(sorted(keys), after_effect)
        self.keys = sorted(keys)
        self.after_effect = after_effect

    def __str__(self) -> str:
        shown = ", ".join(repr(key) for key in self.keys[:3])
        more = f" and {len(self.keys) - 3} more" if len(self.keys) > 3 else ""
        if self.after_effect:
            return (
                f"side effect {shown}{more} was done, but another run had taken over the claim "
                "after its lease ran out: it may have been done twice, with one identity"
            )
        return f"claim on {shown}{more} was taken over by another run; nothing was done"


def _lease_end(lease: timedelta) -> ExpressionWrapper:
    """The database's now plus `lease`."""
    return ExpressionWrapper(
        Now() + Value(lease), output_field=IdempotencyKey.lease_expires_at.field
    )


def _seconds_left() -> ExpressionWrapper:
    """How long a lease still runs, by the database's clock (a duration)."""
    return ExpressionWrapper(F("lease_expires_at") - Now(), output_field=DurationField())


def _record_patiently(write: Callable[[], int]) -> int:
    """Record how a claimed side effect ended, retrying while the database is away (up to
    LEDGER_RECORD_PATIENCE_SECONDS): a done effect left unrecorded would be done again once
    its claim runs out, a released one would wait for that. Inside a transaction the caller's
    own rollback decides, so no retry. Returns the rows written."""
    deadline = time.monotonic() + settings.LEDGER_RECORD_PATIENCE_SECONDS
    pause = 0.25
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError):
            if connection.in_atomic_block or time.monotonic() + pause > deadline:
                raise
            connection.close()  # the next attempt opens a fresh connection
            time.sleep(pause)
            pause = min(pause * 2, 4.0)


@dataclass
class Claim:
    key: str
    owner: str
    lease: timedelta = DEFAULT_LEASE
    # When the lease was last set, by this process's monotonic clock.
    renewed_at: float = field(default_factory=time.monotonic)

    def ensure_held(self) -> None:
        """Before a side effect: renew the lease once a third of it has gone by; ClaimLost if
        another run has taken the key over. A database error propagates: no effect starts on a
        claim that could not be renewed."""
        if time.monotonic() - self.renewed_at < self.lease.total_seconds() * RENEW_AFTER_SHARE:
            return
        started = time.monotonic()
        renewed = IdempotencyKey.objects.filter(
            key=self.key, owner=self.owner, status=IdempotencyKey.Status.IN_PROGRESS
        ).update(lease_expires_at=_lease_end(self.lease))
        if not renewed:
            raise ClaimLost([self.key], after_effect=False)
        self.renewed_at = started

    def complete(self) -> None:
        """Mark the side effect done, waiting out a database outage. Idempotent. ClaimLost when
        another run holds the key now."""
        if not _record_patiently(
            lambda: IdempotencyKey.objects.filter(key=self.key, owner=self.owner).update(
                status=IdempotencyKey.Status.DONE, completed_at=Now()
            )
        ):
            raise ClaimLost([self.key], after_effect=True)

    def release(self) -> None:
        """Give the key back after a failed attempt, so a retry may claim it at once (not
        after the lease), also when the database was away a moment."""
        _record_patiently(
            lambda: IdempotencyKey.objects.filter(
                key=self.key, owner=self.owner, status=IdempotencyKey.Status.IN_PROGRESS
            ).delete()[0]
        )


def _new_claim(key: str, owner: str, task_id: str, lease: timedelta) -> IdempotencyKey:
    return IdempotencyKey(
        key=key,
        owner=owner,
        task_id=task_id or "",
        claimed_at=Now(),
        lease_expires_at=_lease_end(lease),
    )


def _take_over_expired(keys: list[str], owner: str, task_id: str, lease: timedelta) -> int:
    """Re-own claims whose holder died: still in progress after their lease ran out."""
    return IdempotencyKey.objects.filter(
        key__in=keys, status=IdempotencyKey.Status.IN_PROGRESS, lease_expires_at__lt=Now()
    ).update(
        owner=owner,
        task_id=task_id or "",
        claimed_at=Now(),
        lease_expires_at=_lease_end(lease),
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
        started = time.monotonic()
        try:
            # In autocommit the INSERT alone is atomic: one round trip. Inside a transaction a
            # savepoint keeps a conflict from breaking it.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                _new_claim(key, owner, task_id, lease).save(force_insert=True)
            return Claim(key, owner, lease, started)
        except IntegrityError:
            pass
        if _take_over_expired([key], owner, task_id, lease):
            return Claim(key, owner, lease, started)
        held = (
            IdempotencyKey.objects.filter(key=key)
            .values("status")
            .annotate(left=_seconds_left())
            .first()
        )
        if held and held["status"] == IdempotencyKey.Status.DONE:
            return None
        if held:
            raise SideEffectInProgress(key, max(0.0, held["left"].total_seconds()))
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


@dataclass
class BatchClaim:
    """The keys one ``claim_many`` call won, under one owner token, and for how many seconds
    the latest lease of the keys other runs hold still runs (None: no key was held by
    another run)."""

    keys: frozenset[str]
    owner: str
    others_hold_for: float | None = None
    lease: timedelta = DEFAULT_LEASE
    renewed_at: float = field(default_factory=time.monotonic)
    # Won keys not completed yet: the ones a renewal must still find ours.
    open_keys: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.open_keys = set(self.keys)

    def busy(self) -> SideEffectInProgress | None:
        """The error to retry on when other runs hold some of the keys, else None."""
        if self.others_hold_for is None:
            return None
        return SideEffectInProgress("batch", self.others_hold_for)

    def ensure_held(self) -> None:
        """Before the batch's next side effect: renew the leases of its open keys once a third
        of the lease has gone by; ClaimLost if another run took any of them over."""
        if time.monotonic() - self.renewed_at < self.lease.total_seconds() * RENEW_AFTER_SHARE:
            return
        started = time.monotonic()
        renewed = IdempotencyKey.objects.filter(
            owner=self.owner, status=IdempotencyKey.Status.IN_PROGRESS
        ).update(lease_expires_at=_lease_end(self.lease))
        if renewed < len(self.open_keys):
            raise ClaimLost(self.open_keys - self._still_ours(self.open_keys), after_effect=False)
        self.renewed_at = started

    def complete(self, keys: set[str] | frozenset[str] | None = None) -> None:
        """Mark the side effects of `keys` (all won keys: None) done, waiting out a database
        outage. ClaimLost when another run holds some of them now."""
        keys = self.keys if keys is None else keys
        if not keys:
            return
        done = _record_patiently(
            lambda: IdempotencyKey.objects.filter(key__in=keys, owner=self.owner).update(
                status=IdempotencyKey.Status.DONE, completed_at=Now()
            )
        )
        self.open_keys -= keys
        if done < len(keys):
            raise ClaimLost(set(keys) - self._still_ours(keys), after_effect=True)

    def release_unfinished(self) -> None:
        """Give back every key this batch still holds (those not completed)."""
        _record_patiently(
            lambda: IdempotencyKey.objects.filter(
                owner=self.owner, status=IdempotencyKey.Status.IN_PROGRESS
            ).delete()[0]
        )
        self.open_keys.clear()

    def _still_ours(self, keys: Collection[str]) -> set[str]:
        return set(
            IdempotencyKey.objects.filter(key__in=list(keys), owner=self.owner).values_list(
                "key", flat=True
            )
        )


def claim_many(
    keys: list[str], *, lease: timedelta | None = None, task_id: str = "", owner: str = ""
) -> BatchClaim:
    """Claim every free key of `keys` in a fixed number of queries.

    Keys already done, or held by another run's live claim, are left out; the result says
    for how long those others hold theirs.
    """
    lease = lease or running_task_lease()
    owner = owner or uuid.uuid4().hex
    started = time.monotonic()
    IdempotencyKey.objects.bulk_create(
        [_new_claim(key, owner, task_id, lease) for key in dict.fromkeys(keys)],
        ignore_conflicts=True,
    )
    _take_over_expired(keys, owner, task_id, lease)
    rows = (
        IdempotencyKey.objects.filter(key__in=keys)
        .values_list("key", "owner", "status")
        .annotate(left=_seconds_left())
    )
    won: set[str] = set()
    others_hold_for: float | None = None
    for key, key_owner, status, left in rows:
        if key_owner == owner:
            won.add(key)
        elif status == IdempotencyKey.Status.IN_PROGRESS:
            others_hold_for = max(others_hold_for or 0.0, left.total_seconds(), 0.0)
    return BatchClaim(frozenset(won), owner, others_hold_for, lease, started)
