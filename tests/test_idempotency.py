"""The idempotency ledger: one claim wins, done keys are skipped, dead holders are taken over."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.core.idempotency import (
    SideEffectInProgress,
    claim_side_effect,
    perform_once,
)
from apps.core.models import IdempotencyKey


@pytest.mark.django_db
def test_perform_once_runs_the_effect_once() -> None:
    effects: list[str] = []
    assert perform_once("permit:1:approved:a@x", lambda: effects.append("mail")) is True
    assert perform_once("permit:1:approved:a@x", lambda: effects.append("mail")) is False
    assert effects == ["mail"]
    row = IdempotencyKey.objects.get(key="permit:1:approved:a@x")
    assert row.status == IdempotencyKey.Status.DONE and row.completed_at is not None


@pytest.mark.django_db
def test_a_failed_effect_releases_the_key_for_the_retry() -> None:
    def broken() -> None:
        raise ConnectionError("smtp down")

    with pytest.raises(ConnectionError):
        perform_once("k1", broken)
    assert not IdempotencyKey.objects.filter(key="k1").exists()
    assert perform_once("k1", lambda: None) is True


@pytest.mark.django_db
def test_a_live_claim_blocks_and_an_expired_one_is_taken_over() -> None:
    first = claim_side_effect("k2", lease=timedelta(minutes=5))
    assert first is not None
    with pytest.raises(SideEffectInProgress, match="'k2'"):
        claim_side_effect("k2")

    IdempotencyKey.objects.filter(key="k2").update(lease_expires_at=timezone.now())
    second = claim_side_effect("k2")
    assert second is not None and second.owner != first.owner
    assert IdempotencyKey.objects.get(key="k2").claims == 2
    first.complete()  # the dead holder's late completion no longer owns the key
    assert IdempotencyKey.objects.get(key="k2").status == IdempotencyKey.Status.IN_PROGRESS
    second.complete()
    assert claim_side_effect("k2") is None


@pytest.mark.django_db
def test_key_length_is_validated() -> None:
    with pytest.raises(ValueError, match="1 to 255"):
        claim_side_effect("")
    with pytest.raises(ValueError, match="1 to 255"):
        claim_side_effect("x" * 256)


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_have_exactly_one_winner() -> None:
    contenders = 8
    barrier = threading.Barrier(contenders)
    outcomes: list[str] = []
    lock = threading.Lock()

    def contend() -> None:
        barrier.wait()
        try:
            outcome = "won" if claim_side_effect("race") else "done"
        except SideEffectInProgress:
            outcome = "busy"
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=contend) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["busy"] * (contenders - 1) + ["won"]
