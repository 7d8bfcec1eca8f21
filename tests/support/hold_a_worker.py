"""Run only by tests/test_suite_ends_clean.py, as a pytest run of its own that it interrupts:
a test that starts the suite's worker and holds it until the run is stopped."""

from __future__ import annotations

import faulthandler
import os
import signal
import time
from pathlib import Path

# The stacks of a run that does not stop, for the test to print.
faulthandler.register(signal.SIGUSR1, all_threads=True)


def test_hold_the_worker(worker) -> None:
    children = " ".join(map(str, worker.child_pids()))
    Path(os.environ["HOLD_PIDS_FILE"]).write_text(f"{worker.proc.pid} {children}\n")
    time.sleep(600)
