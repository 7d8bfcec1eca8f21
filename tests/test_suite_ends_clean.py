"""Stopping the suite, with Ctrl-C or SIGTERM, leaves none of the processes it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import BASE_DIR
from tests.support.waiting import wait_until

EMBEDDED_DEFAULT_OVERRIDES = {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "CACHE_KEY_PREFIX"}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone but for its parent's wait.
    stat = f"/proc/{pid}/stat"
    return os.path.exists(stat) and open(stat).read().split(") ")[1][0] != "Z"


@pytest.mark.worker
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stopped_run_leaves_no_worker_behind(tmp_path, stop) -> None:
    pids_file = tmp_path / "pids"
    # The run is on the embedded default in a folder of its own: on the real services it would
    # share this run's test database (pytest-django names it after DATABASE_URL) and drop it.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTEST_") and k not in EMBEDDED_DEFAULT_OVERRIDES
    }
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/support/hold_a_worker.py",
            "-o",
            "python_files=hold_a_worker.py",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=BASE_DIR,
        env=env | {"HOLD_PIDS_FILE": str(pids_file), "INTELLIWIZ_VAR_DIR": str(tmp_path / "var")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the signal goes to the run, as a terminal's would
        # A run in a terminal's foreground takes Ctrl-C; this suite may itself run in the
        # background of a script (CI), whose children start with SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        wait_until(lambda: pids_file.exists() and pids_file.read_text().strip(), 180)
        held = [int(pid) for pid in pids_file.read_text().split()]
        assert all(_alive(pid) for pid in held)
        os.kill(run.pid, stop)
        try:
            run.wait(90)
        except subprocess.TimeoutExpired:
            os.kill(run.pid, signal.SIGUSR1)  # its threads' stacks
            time.sleep(2)
            os.killpg(run.pid, signal.SIGKILL)
            pytest.fail(f"the stopped run did not end:\n{run.communicate()[0].decode()[-4000:]}")
        wait_until(lambda: not any(_alive(pid) for pid in held), 30, what="the worker gone")
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(30)
