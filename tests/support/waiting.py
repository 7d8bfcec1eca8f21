"""Waiting in tests: for a condition, never for a fixed time, with deadlines sized to the machine.

A deadline written in a test is what an idle machine needs; ``patience`` stretches it by how
loaded the machine is (the one-minute load average per core, at least 1) and by TEST_PATIENCE
(a factor for slow machines, 1 by default), so a busy CI run waits longer instead of failing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable


def patience(seconds: float) -> float:
    """`seconds` of an idle machine, on this one now."""
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return seconds * max(1.0, load) * float(os.environ.get("TEST_PATIENCE", "1"))


def wait_until(
    predicate: Callable[[], object], timeout: float, step: float = 0.1, what: str = "condition"
) -> float:
    """Poll `predicate` until true, within `timeout` seconds of patience; the seconds it took."""
    started = time.monotonic()
    deadline = started + patience(timeout)
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {deadline - started:.0f} s")
        time.sleep(step)
    return time.monotonic() - started


def stays(predicate: Callable[[], object], seconds: float, what: str = "condition") -> None:
    """Check that `predicate` holds throughout `seconds` (nothing more arrives, say)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), f"{what} no longer holds"
        time.sleep(0.05)
    assert predicate(), f"{what} no longer holds"
