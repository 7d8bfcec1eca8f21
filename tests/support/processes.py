"""Every process the suite starts ends with the suite, however the suite ends.

A process the suite starts runs in a process group of its own (a worker with its children),
registered here until it is stopped; a server that daemonizes itself (Redis, PostgreSQL,
Mosquitto) is registered by the PID it reports. Whatever is still registered when the suite
ends is killed: after the session's teardown (``pytest_unconfigure``), at interpreter exit, and
on SIGTERM or SIGHUP, which end the run as Ctrl-C does (the teardown runs, then the rest is
killed). Clean-ups that are not processes (network namespaces) register a callable.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
from collections.abc import Callable

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
