"""Two beats: one sends, one stands by; the standby takes over when the leader is killed, and
each period is sent once throughout."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.faults.conftest import Stack
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(300)
PERIOD = 2  # seconds between heartbeats (the minute of production, compressed)


def sends(beat) -> int:
    return beat.log().count("Sending due task worker-heartbeat-every-minute")


def test_a_standby_beat_takes_over_and_no_period_is_sent_twice(stack: Stack, record) -> None:
    stack.driver("beat-every", str(PERIOD))
    first = stack.beat("beat-a")
    first.wait_for_log("beat_lock_acquired", timeout=60)
    second = stack.beat("beat-b")
    time.sleep(6 * PERIOD)
    assert "beat_lock_acquired" not in second.log()  # standing by
    assert sends(second) == 0
    sent_while_leading = sends(first)
    assert 4 <= sent_while_leading <= 7, sent_while_leading

    os.killpg(first.proc.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    first.proc.wait(10)
    takeover = wait_until(lambda: sends(second) > 0, 60, what="the standby's first send")
    assert takeover < 60
    time.sleep(6 * PERIOD)
    taken_over_for = time.monotonic() - killed_at - takeover
    sent_after = sends(second)
    record(
        recovery_s=round(takeover, 1),
        periods_led=sent_while_leading,
        sent_after_takeover=sent_after,
        periods_after_takeover=round(taken_over_for / PERIOD, 1),
    )
    # One send per period: the periods since the takeover, give or take the edges.
    assert sent_after <= taken_over_for / PERIOD + 2, (sent_after, taken_over_for)
    assert sent_after >= taken_over_for / PERIOD - 2, (sent_after, taken_over_for)
