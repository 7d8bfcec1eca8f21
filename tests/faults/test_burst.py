"""A burst of mail tasks far beyond what workers hold at once: every one is mailed once."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import Stack
from tests.faults.harness import SmtpSink
from tests.faults.test_mail_faults import assert_each_mailed_once, wait_for_mails

pytestmark = pytest.mark.timeout(900)
BURST = 5000


@pytest.mark.parametrize("on", ["embedded", "postgres-redis"], indirect=True)
def test_a_five_thousand_task_burst_is_mailed_once(on: Stack, sink: SmtpSink, record) -> None:
    stack = on
    tickets = stack.driver("seed", str(BURST))["tickets"]
    stack.worker(concurrency=2)
    started = time.monotonic()
    stack.driver("enqueue-ticket-mails", stdin=" ".join(map(str, tickets)))
    enqueued_in = time.monotonic() - started
    wait_for_mails(sink, BURST, timeout=800)
    elapsed = time.monotonic() - started
    time.sleep(2)
    report = stack.driver("report")
    assert_each_mailed_once(
        sink,
        tickets,
        record,
        dead_letters=len(report["dead_letters"]),
        enqueue_s=round(enqueued_in, 1),
        drain_s=round(elapsed, 1),
        tasks_per_s=round(BURST / elapsed, 1),
    )
    assert report["dead_letters"] == []
