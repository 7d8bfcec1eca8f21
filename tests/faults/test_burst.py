"""A burst of mail tasks far beyond what workers hold at once: every one is mailed once."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import Stack
from tests.faults.harness import SmtpSink
from tests.faults.test_mail_faults import assert_recovered

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
    drained_in = assert_recovered(
        stack, sink, tickets, record, since=started, timeout=800, enqueue_s=round(enqueued_in, 1)
    )
    record(tasks_per_s=round(BURST / drained_in, 1))
