"""The idempotency ledger: one claim wins, done keys are skipped, dead holders are taken over."""

from __future__ import annotations

import contextlib
import threading
from datetime import timedelta

import pytest
from billiard.exceptions import SoftTimeLimitExceeded
from celery._state import _task_stack
from django.core.mail.backends import locmem
from django.db import connection
from django.db.models.functions import Now
from django.utils import timezone

from apps.core import idempotency
from apps.core.idempotency import (
    DEFAULT_LEASE,
    LEASE_MARGIN,
    ClaimLost,
    SideEffectInProgress,
    claim_many,
    claim_side_effect,
    perform_once,
    running_task_lease,
)
from apps.core.mail import Mail, deliver, message_id
from apps.core.models import IdempotencyKey
from intelliwiz_config.celery import app


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
    with pytest.raises(ClaimLost, match="done twice"):  # the late finisher says so
        first.complete()
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


@pytest.mark.django_db
def test_a_live_claim_says_how_long_it_still_holds_the_key() -> None:
    claim_side_effect("k3", lease=timedelta(minutes=2))
    with pytest.raises(SideEffectInProgress) as held:
        claim_side_effect("k3")
    assert 110 <= held.value.retry_after <= 120


@pytest.mark.django_db
def test_a_claim_outside_a_task_gets_the_default_lease() -> None:
    claim_side_effect("k4")
    row = IdempotencyKey.objects.get(key="k4")
    assert row.lease_expires_at - row.claimed_at == DEFAULT_LEASE


def test_a_tasks_claims_last_as_long_as_its_hard_time_limit(worker_task_request) -> None:
    assert running_task_lease() == timedelta(seconds=90) + LEASE_MARGIN


@pytest.mark.django_db
def test_deliver_sends_what_is_free_and_asks_to_retry_for_what_another_run_holds(
    mailoutbox,
) -> None:
    other_run = claim_many(["mail:held"], lease=timedelta(minutes=2))
    delivery = deliver([_mail("mail:free"), _mail("mail:held")])
    assert delivery.sent == ["mail:free"]
    assert delivery.settled == {"mail:free"}
    assert isinstance(delivery.error, SideEffectInProgress)
    assert 110 <= delivery.error.retry_after <= 120
    with pytest.raises(SideEffectInProgress):
        delivery.raise_error()
    assert len(mailoutbox) == 1
    other_run.release_unfinished()
    assert deliver([_mail("mail:free"), _mail("mail:held")]).sent == ["mail:held"]


@pytest.mark.django_db
@pytest.mark.parametrize("interruption", [SystemExit, KeyboardInterrupt, SoftTimeLimitExceeded])
def test_deliver_releases_its_claims_on_every_way_out(monkeypatch, interruption) -> None:
    def interrupted(self, messages):
        raise interruption()

    monkeypatch.setattr(locmem.EmailBackend, "send_messages", interrupted)
    with contextlib.suppress(interruption):
        deliver([_mail("mail:interrupted")])
    assert not IdempotencyKey.objects.filter(key="mail:interrupted").exists()


def _mail(key: str) -> Mail:
    return Mail(
        key=key,
        subject=key,
        to=["someone@facility.test"],
        template="reports/mail/report",
        context={"intro": "A report."},
    )


@pytest.fixture
def worker_task_request():
    """Run the test as if inside the email task `send_ticket_email` on a worker."""
    task = app.tasks["send_ticket_email"]
    task.push_request(id="t-1", called_directly=False, timelimit=(None, None))
    _task_stack.push(task)
    yield task
    _task_stack.pop()
    task.pop_request()


@pytest.mark.django_db(transaction=True)
def test_a_done_side_effect_is_recorded_through_a_database_outage(monkeypatch, settings) -> None:
    """The mail went out, then the database went away: the record waits for it to come back
    rather than leave the claim to run out (and the mail to go out again)."""
    from django.db.models import QuerySet
    from django.db.utils import OperationalError

    settings.LEDGER_RECORD_PATIENCE_SECONDS = 10
    claim = claim_side_effect("outage:recorded")
    batch = claim_many(["outage:batch-1", "outage:batch-2"])
    outage = {"failures_left": 4}
    real_update = QuerySet.update

    def update_while_the_database_is_away(queryset, **fields):
        if outage["failures_left"]:
            outage["failures_left"] -= 1
            raise OperationalError("server closed the connection unexpectedly")
        return real_update(queryset, **fields)

    monkeypatch.setattr(QuerySet, "update", update_while_the_database_is_away)
    claim.complete()
    batch.complete({"outage:batch-1"})
    monkeypatch.undo()
    assert dict(IdempotencyKey.objects.values_list("key", "status")) == {
        "outage:recorded": "DONE",
        "outage:batch-1": "DONE",
        "outage:batch-2": "IN_PROGRESS",
    }

    settings.LEDGER_RECORD_PATIENCE_SECONDS = 1
    lost = claim_side_effect("outage:too-long")
    outage["failures_left"] = 100
    monkeypatch.setattr(QuerySet, "update", update_while_the_database_is_away)
    with pytest.raises(OperationalError):  # past its patience the error is the task's to handle
        lost.complete()


@pytest.mark.django_db
@pytest.mark.parametrize("skew", [timedelta(minutes=5), -timedelta(minutes=5)], ids=str)
def test_a_hosts_skewed_clock_changes_no_lease(monkeypatch, skew) -> None:
    """Leases are written and judged by the database's clock: a worker whose clock is minutes
    off neither takes over a live claim early nor writes a lease that ends early or late."""
    host_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: host_now() + skew)
    claim_side_effect("skewed", lease=timedelta(minutes=2))
    with pytest.raises(SideEffectInProgress) as held:
        claim_side_effect("skewed")
    assert 110 <= held.value.retry_after <= 120
    row = IdempotencyKey.objects.get(key="skewed")
    assert abs(row.lease_expires_at - host_now() - timedelta(minutes=2)) < timedelta(seconds=10)


@pytest.mark.django_db
def test_a_run_renews_its_claim_before_an_effect_and_stops_on_a_lost_one() -> None:
    claim = claim_side_effect("renewed", lease=timedelta(seconds=30))
    IdempotencyKey.objects.filter(key="renewed").update(
        lease_expires_at=Now() + timedelta(seconds=2)
    )
    claim.ensure_held()  # renewed a moment ago: nothing to do yet
    assert _seconds_left("renewed") < 3
    claim.renewed_at -= 11  # a third of the lease has gone by
    claim.ensure_held()
    assert 25 < _seconds_left("renewed") <= 30

    # The run was cut off past its lease; another run took the claim over.
    IdempotencyKey.objects.filter(key="renewed").update(
        lease_expires_at=Now() - timedelta(seconds=1)
    )
    assert claim_side_effect("renewed") is not None
    claim.renewed_at -= 11
    with pytest.raises(ClaimLost, match="nothing was done"):
        claim.ensure_held()


def _seconds_left(key: str) -> float:
    row = IdempotencyKey.objects.get(key=key)
    return (row.lease_expires_at - timezone.now()).total_seconds()


@pytest.mark.django_db
def test_deliver_sends_nothing_more_on_claims_another_run_took_over(monkeypatch) -> None:
    monkeypatch.setattr(idempotency, "RENEW_AFTER_SHARE", 0)  # renew before every send
    real_send = locmem.EmailBackend.send_messages
    outbox: list[str] = []

    def send_then_lose_the_rest(self, messages):
        outbox.extend(message.subject for message in messages)
        # While the first mail went out, the run's claims ran out and another run took the
        # second one over.
        IdempotencyKey.objects.filter(key="mail:second").update(owner="another-run")
        return real_send(self, messages)

    monkeypatch.setattr(locmem.EmailBackend, "send_messages", send_then_lose_the_rest)
    delivery = deliver([_mail("mail:first"), _mail("mail:second")])
    assert outbox == ["mail:first"]
    assert delivery.sent == ["mail:first"]
    assert isinstance(delivery.error, ClaimLost) and delivery.error.keys == ["mail:second"]
    with pytest.raises(ClaimLost):
        delivery.raise_error()


@pytest.mark.django_db
def test_every_copy_of_a_mail_carries_its_keys_message_id(mailoutbox) -> None:
    deliver([_mail("mail:once"), _mail("mail:other")])
    IdempotencyKey.objects.filter(key="mail:once").delete()  # as if the record were lost
    deliver([_mail("mail:once")])
    ids = [message.extra_headers["Message-ID"] for message in mailoutbox]
    assert ids[0] == ids[2] == message_id("mail:once") != ids[1]
    assert str(mailoutbox[0].message()["Message-ID"]) == ids[0]
