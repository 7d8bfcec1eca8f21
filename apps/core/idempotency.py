"""The idempotency ledger: a side effect happens once however often its task runs.

    claim = claim_side_effect("permit:12:approved:alice@example.com")
    if claim is not None:          # None: it was done already
        send_the_mail()
        claim.complete()

or simply ``perform_once(key, send_the_mail)``. A claim is a row inserted under a unique key,
so two workers racing for the same key cannot both win. A claim whose holder died (lease
expired without completion) may be taken over; a claim whose holder is alive raises
``SideEffectInProgress``, a transient error the task retries later. Claim outside any
surrounding transaction, or other workers cannot see it until that transaction commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.core.models import IdempotencyKey

DEFAULT_LEASE = timedelta(minutes=10)


class SideEffectInProgress(Exception):
    """Another live worker holds the claim for this key; try again later."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"side effect {self.key!r} is being performed by another worker"


@dataclass(frozen=True)
class Claim:
    key: str
    owner: str

    def complete(self) -> None:
        """Mark the side effect done. Idempotent."""
        IdempotencyKey.objects.filter(key=self.key, owner=self.owner).update(
            status=IdempotencyKey.Status.DONE, completed_at=timezone.now()
        )

    def release(self) -> None:
        """Give the key back after a failed attempt, so a retry may claim it at once."""
        IdempotencyKey.objects.filter(
            key=self.key, owner=self.owner, status=IdempotencyKey.Status.IN_PROGRESS
        ).delete()


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
    key: str, *, lease: timedelta = DEFAULT_LEASE, task_id: str = ""
) -> Claim | None:
    """Claim `key`; None when its side effect is already done."""
    if not key or len(key) > 255:
        raise ValueError(f"idempotency key must be 1 to 255 characters, got {len(key)}")
    owner = uuid.uuid4().hex
    for _ in range(3):  # a concurrent release can remove the row between our two steps
        now = timezone.now()
        try:
            with transaction.atomic():
                _new_claim(key, owner, task_id, now, lease).save(force_insert=True)
            return Claim(key, owner)
        except IntegrityError:
            pass
        if _take_over_expired([key], owner, task_id, now, lease):
            return Claim(key, owner)
        status = IdempotencyKey.objects.filter(key=key).values_list("status", flat=True).first()
        if status == IdempotencyKey.Status.DONE:
            return None
        if status == IdempotencyKey.Status.IN_PROGRESS:
            raise SideEffectInProgress(key)
    raise SideEffectInProgress(key)


def perform_once(
    key: str, effect: Callable[[], object], *, lease: timedelta = DEFAULT_LEASE, task_id: str = ""
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
    """The keys one ``claim_many`` call won, under one owner token."""

    keys: frozenset[str]
    owner: str

    def complete(self, keys: set[str] | frozenset[str] | None = None) -> None:
        IdempotencyKey.objects.filter(
            key__in=self.keys if keys is None else keys, owner=self.owner
        ).update(status=IdempotencyKey.Status.DONE, completed_at=timezone.now())

    def release_unfinished(self) -> None:
        """Give back every key this batch still holds (those not completed)."""
        IdempotencyKey.objects.filter(
            owner=self.owner, status=IdempotencyKey.Status.IN_PROGRESS
        ).delete()


def claim_many(
    keys: list[str], *, lease: timedelta = DEFAULT_LEASE, task_id: str = "", owner: str = ""
) -> BatchClaim:
    """Claim every free key of `keys` in a fixed number of queries.

    Keys already done, or held by a live claim, are left out; a periodic task's next run picks
    up the ones whose holder died (after the lease).
    """
    owner = owner or uuid.uuid4().hex
    now = timezone.now()
    IdempotencyKey.objects.bulk_create(
        [_new_claim(key, owner, task_id, now, lease) for key in dict.fromkeys(keys)],
        ignore_conflicts=True,
    )
    _take_over_expired(keys, owner, task_id, now, lease)
    won = IdempotencyKey.objects.filter(key__in=keys, owner=owner).values_list("key", flat=True)
    return BatchClaim(frozenset(won), owner)
