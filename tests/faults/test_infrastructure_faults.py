"""The database, the broker and the MQTT broker go away and come back: nothing accepted is
lost, nothing is done twice, and work resumes without an operator."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import Stack
from tests.faults.harness import (
    MosquittoInstance,
    PostgresCluster,
    RedisInstance,
    SmtpSink,
)
from tests.faults.test_mail_faults import assert_recovered, seed_and_mail, wait_for_mails
from tests.support.mqtt import Subscriber
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(600)


def test_postgresql_stopped_mid_burst_loses_no_mail(
    redis_stack: Stack, postgres: PostgresCluster, sink: SmtpSink, record
) -> None:
    stack = redis_stack
    stack.reset()
    worker = stack.worker(concurrency=2, RETRY_TIME_SCALE="0.1")
    tickets = seed_and_mail(stack, 200)
    wait_for_mails(sink, 20, timeout=120)
    postgres.stop("fast")  # 15 s without a database, mid-burst
    try:
        # The worker stops taking messages it could only turn into retries.
        wait_until(lambda: "worker_paused reason=database_unreachable" in worker.log(), 15)
        time.sleep(15)
    finally:
        postgres.start()
    recovery = assert_recovered(
        stack,
        sink,
        tickets,
        record,
        since=time.monotonic(),
        timeout=240,
        retries=worker.log().count("outcome=retry"),
    )
    assert "worker_resumed reason=database_back" in worker.log()
    assert recovery < 60, recovery
    stack.stop_all()


def test_a_redis_restart_keeps_the_backlog_and_workers_resume(
    redis_stack: Stack, redis_server: RedisInstance, sink: SmtpSink, record
) -> None:
    stack = redis_stack
    stack.reset()
    backlog = seed_and_mail(stack, 100)  # waiting, no worker yet
    redis_server.kill()
    redis_server.start()  # the append-only file brings the backlog back
    stack.worker(concurrency=2, RETRY_TIME_SCALE="0.1")
    wait_for_mails(sink, len(backlog), timeout=120)
    # Again, with the worker connected and waiting for work. Not while it takes messages: a
    # message Redis pops for a BRPOP in the instant it is killed (written to its append-only
    # file, the reply not sent yet) reaches no worker and no unacked entry, and is lost: kombu's
    # delivery is a pop, then the client's own unacked write (docs/operations.md, Guarantees).
    redis_server.kill()
    time.sleep(3)
    redis_server.start()
    back_at = time.monotonic()
    more = seed_and_mail(stack, 50)
    assert_recovered(stack, sink, backlog + more, record, since=back_at, timeout=240)
    stack.stop_all()


def test_publishes_wait_out_an_mqtt_broker_outage_and_go_once(
    redis_stack: Stack, tmp_path, sink: SmtpSink, record
) -> None:
    stack = redis_stack
    stack.reset()
    mosquitto = MosquittoInstance(tmp_path / "mosquitto")
    mosquitto.start()
    subscriber = None
    try:
        stack.worker(concurrency=2, MQTT_URL=mosquitto.url, RETRY_TIME_SCALE="0.1")
        mosquitto.kill()
        stack.driver("enqueue-publishes", "20")
        time.sleep(10)  # every publish fails meanwhile and the mqtt-broker circuit opens
        mosquitto.start()
        back_at = time.monotonic()
        # Listening before the circuit's recovery probe (60 s after it opened) lets anything out.
        subscriber = Subscriber(mosquitto.url, "intelliwiz/faults/#")
        wait_until(lambda: len({t for t, _ in subscriber.messages}) >= 20, 150, what="publishes")
        recovery = time.monotonic() - back_at
        time.sleep(2)
        topics = [topic for topic, _ in subscriber.messages]
        record(
            enqueued=20,
            published=len(set(topics)),
            duplicates=len(topics) - len(set(topics)),
            lost=20 - len(set(topics)),
            recovery_s=round(recovery, 1),
        )
        assert sorted(set(topics)) == sorted(f"intelliwiz/faults/{n}" for n in range(20))
        assert len(topics) == 20, "a message was published twice"
        assert stack.driver("report")["dead_letters"] == []
        assert recovery < 90, recovery
    finally:
        if subscriber is not None:
            subscriber.close()
        stack.stop_all()
        mosquitto.kill()
