"""Every process the suite starts ends with the suite, however the suite ends.

A process the suite starts runs in a process group of its own (a worker with its children),
registered here until it is stopped; a server that daemonizes itself (Redis, PostgreSQL,
Mosquitto) is registered by the PID it reports. Whatever is still registered when the suite
ends is killed: after the session's teardown (``pytest_unconfigure``), at interpreter exit, and
on SIGTERM or SIGHUP, which end the run as Ctrl-C does (the teardown runs, then the rest is
killed). ``ManagedProcess`` is the suite's one wrapper of a process it starts, on this machine or
on a host of the multi-host suite. Clean-ups that are not processes (network namespaces)
register a callable.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.waiting import patience, wait_until

BASE_DIR = Path(__file__).resolve().parents[2]

_lock = threading.Lock()
_groups: set[int] = set()
_daemons: set[int] = set()
_cleanups: list[Callable[[], None]] = []
_installed = False


def track_group(pgid: int) -> None:
    with _lock:
        _groups.add(pgid)


def forget_group(pgid: int) -> None:
    with _lock:
        _groups.discard(pgid)


def track_daemon(pid: int) -> None:
    with _lock:
        _daemons.add(pid)


def forget_daemon(pid: int) -> None:
    with _lock:
        _daemons.discard(pid)


def on_exit(cleanup: Callable[[], None]) -> Callable[[], None]:
    """Run `cleanup` when the suite ends, unless it is forgotten (the returned callable)."""
    with _lock:
        _cleanups.append(cleanup)

    def forget() -> None:
        with _lock, contextlib.suppress(ValueError):
            _cleanups.remove(cleanup)

    return forget


def kill_all() -> None:
    """Kill every registered process group and daemon; run the registered clean-ups."""
    with _lock:
        groups, daemons, cleanups = list(_groups), list(_daemons), list(_cleanups)
        _groups.clear()
        _daemons.clear()
        _cleanups.clear()
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    for pid in daemons:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    for cleanup in cleanups:
        with contextlib.suppress(Exception):
            cleanup()


def _interrupt(signum: int, _frame: object) -> None:
    # As Ctrl-C: pytest stops, runs the teardown, and pytest_unconfigure kills the rest. A
    # second signal does not wait for the teardown.
    signal.signal(signum, _kill_now)
    raise KeyboardInterrupt(f"signal {signum}")


def _kill_now(signum: int, _frame: object) -> None:
    kill_all()
    os._exit(128 + signum)


def install() -> None:
    """From the suite's configuration, in its main thread."""
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(kill_all)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)


class ManagedProcess:
    """A Python process of the suite (`manage.py ...`, `-m celery ...`) in a process group of
    its own, with its log in a file. `run_on` wraps its command: a host of the multi-host suite
    runs it in its network namespace."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        log_path: Path,
        nodename: str = "",
        *,
        run_on: Callable[[list[str]], list[str]] = list,
        cwd: Path = BASE_DIR,
    ) -> None:
        self.nodename = nodename
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            run_on([sys.executable, *argv]),
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        track_group(self.proc.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        def seen() -> bool:
            if text in self.log():
                return True
            if self.proc.poll() is not None:
                pytest.fail(f"{text!r} not in the log of {self.proc.args}:\n{self.log()[-4000:]}")
            return False

        wait_until(seen, timeout, step=0.2, what=f"{text!r} in {self.log_path.name}")

    def child_pids(self) -> list[int]:
        """The process's children, whichever of its threads forked them (the pool replaces a
        lost child from a thread of its own)."""
        pids: list[int] = []
        for children in Path(f"/proc/{self.proc.pid}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                pids += [int(pid) for pid in children.read_text().split()]
        return sorted(pids)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal the group (a warm shutdown on SIGTERM), then kill whatever of it is left."""
        if self.proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired, ProcessLookupError):
                os.killpg(self.proc.pid, sig)
                self.proc.wait(patience(20))
        self.kill()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        forget_group(self.proc.pid)
        self._log.close()
