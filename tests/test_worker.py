"""A real worker process on a real broker: results, retries, dead letters, redelivery, inspect."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from celery.result import AsyncResult
from django.core.cache import cache
from kombu import Connection

from apps.core.broker import transport_for
from apps.core.idempotency import ClaimLost
from apps.core.models import DeadLetter, IdempotencyKey, WorkerHeartbeat
from background_tasks import task_every_min
from tests.conftest import BASE_DIR, ManagedProcess, process_env, service_url
from tests.support import worker_tasks
from tests.support.waiting import patience, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def dead_letter_of(task_id: str) -> DeadLetter:
    """The task's dead letter, which Celery's failure handler writes after storing the failure
    that `result.get()` returns on."""
    wait_until(lambda: DeadLetter.objects.filter(task_id=task_id).exists(), 30, what="dead letter")
    return DeadLetter.objects.get(task_id=task_id)


def heartbeat_of(task_id: str, timeout: float = 30) -> WorkerHeartbeat:
    """The heartbeat row that run `task_id` wrote (the task stores no result)."""
    deadline = time.monotonic() + timeout
    while (beat := WorkerHeartbeat.objects.filter(task_id=task_id).first()) is None:
        assert time.monotonic() < deadline, f"no heartbeat from run {task_id}"
        time.sleep(0.1)
    return beat


def test_delay_records_the_heartbeat(worker: ManagedProcess) -> None:
    result = task_every_min.delay()
    beat = heartbeat_of(result.id)
    assert beat.worker.startswith("test-")
    # Sent by hand, not by beat: there is no schedule to be late on.
    assert beat.scheduled_for is None
    assert beat.lateness_seconds is None
    # The run's line is written after the row, as the run ends.
    worker.wait_for_log(f"task_run task=task_every_min id={result.id} outcome=success")


def test_transient_failures_are_retried_until_success(worker: ManagedProcess, clean_cache) -> None:
    result = worker_tasks.flaky.delay("flaky-1", failures=2)
    assert result.get(timeout=patience(30)) == 3
    assert result.retries == 2 or AsyncResult(result.id).status == "SUCCESS"
    assert not DeadLetter.objects.filter(task_id=result.id).exists()


def test_exhausted_retries_leave_a_dead_letter(worker: ManagedProcess, clean_cache) -> None:
    result = worker_tasks.always_transient.delay(key="gone-1")
    with pytest.raises(ConnectionError):
        result.get(timeout=patience(30))
    assert cache.get("attempts:gone-1") == 3  # the first run and max_retries=2 retries
    letter = dead_letter_of(result.id)
    assert letter.task_name == "tests.always_transient"
    assert letter.retries == 2
    assert letter.exception_type == "builtins.ConnectionError"
    assert letter.kwargs == {"key": "gone-1"}


def test_a_real_failure_is_not_retried_and_its_secrets_are_redacted(
    worker: ManagedProcess, clean_cache
) -> None:
    result = worker_tasks.permanent_failure.delay(key="bad-1", password="hunter2", site="S1")
    with pytest.raises(ValueError, match="bad input"):
        result.get(timeout=patience(30))
    assert cache.get("attempts:bad-1") == 1
    letter = dead_letter_of(result.id)
    assert letter.retries == 0
    assert letter.kwargs == {"key": "bad-1", "password": "[redacted]", "site": "S1"}
    assert "hunter2" not in worker.log()
    assert AsyncResult(result.id).status == "FAILURE"


def test_killed_child_is_redelivered_and_the_side_effect_happens_once(
    worker: ManagedProcess, clean_cache
) -> None:
    key = f"effect-{time.time_ns()}"
    result = worker_tasks.effect_then_sleep.delay(key, seconds=60)
    deadline = time.monotonic() + patience(30)
    while cache.get(f"effects:{key}") != 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    first_pid = cache.get(f"pid:{key}")
    assert first_pid in worker.child_pids()
    os.kill(first_pid, signal.SIGKILL)  # the child dies mid-task, after its side effect

    outcome = result.get(timeout=patience(60))
    assert outcome == {"pid": outcome["pid"], "performed_now": False}
    assert outcome["pid"] != first_pid
    assert cache.get(f"effects:{key}") == 1
    assert IdempotencyKey.objects.get(key=key).status == IdempotencyKey.Status.DONE


def test_a_run_whose_claim_was_taken_over_fails_without_a_dead_letter(
    worker: ManagedProcess, clean_cache
) -> None:
    """Another run owns the work now: the late run says so (a failure, its own log line), not
    success, and leaves operators nothing to re-queue."""
    result = worker_tasks.claim_taken_over.delay("taken-1")
    with pytest.raises(ClaimLost):
        result.get(timeout=patience(30))
    worker.wait_for_log(f"side_effect_claim_lost task=tests.claim_taken_over id={result.id}")
    assert cache.get("attempts:taken-1") == 1  # not retried
    assert not DeadLetter.objects.filter(task_id=result.id).exists()


def test_a_soft_time_limit_signal_after_its_task_ended_is_ignored(
    worker: ManagedProcess, clean_cache
) -> None:
    """A late soft-limit signal (the main process's loop was held up) must not strike a child
    between tasks, where it could cut a message to the pool's pipe in half."""
    assert worker_tasks.flaky.delay("late-1", failures=0).get(timeout=patience(30)) == 1
    wait_until(worker.child_pids, 30, what="the worker's child")  # one replaced may be starting
    (child,) = worker.child_pids()
    for _ in range(3):
        os.kill(child, signal.SIGUSR1)
        time.sleep(0.1)
    assert worker_tasks.flaky.delay("late-2", failures=0).get(timeout=patience(30)) == 1
    assert worker.child_pids() == [child]  # the same child, alive and working
    worker.wait_for_log("soft_time_limit_ignored signals=3")


def test_a_message_that_keeps_killing_its_worker_ends_as_a_dead_letter(
    worker: ManagedProcess, clean_cache
) -> None:
    result = worker_tasks.kill_own_worker.delay("poison-1")
    deadline = time.monotonic() + patience(90)
    while not DeadLetter.objects.filter(task_id=result.id).exists():
        assert time.monotonic() < deadline, worker.log()[-3000:]
        time.sleep(0.2)
    letter = dead_letter_of(result.id)
    assert letter.exception_type == "billiard.exceptions.WorkerLostError"
    assert "died 3 times" in letter.error
    assert cache.get("attempts:poison-1") == 3
    assert AsyncResult(result.id).status == "FAILURE"


def test_inspect_registered_lists_the_tasks(worker: ManagedProcess) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "intelliwiz_config",
            "inspect",
            "registered",
            "-d",
            worker.nodename,
            "-t",
            "10",
        ],
        cwd=BASE_DIR,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "* task_every_min" in completed.stdout
    assert "* tests.flaky" in completed.stdout


@pytest.mark.services
@pytest.mark.parametrize("env_name", ["TEST_REDIS_URL", "TEST_RABBITMQ_URL"])
def test_round_trip_on_a_real_broker(env_name: str, start_worker) -> None:
    broker_url = service_url(env_name)
    worker = start_worker(broker_url, name=env_name.removeprefix("TEST_").lower())
    try:
        with Connection(broker_url, transport=transport_for(broker_url)) as connection:
            result = task_every_min.apply_async(connection=connection)
        assert heartbeat_of(result.id).worker.startswith(env_name.removeprefix("TEST_").lower())
        assert f"id={result.id} outcome=success" in worker.log()
    finally:
        worker.stop()  # the broker is free again for tests with workers of their own on it
