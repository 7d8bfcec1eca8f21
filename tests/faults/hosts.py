"""A deployment of several hosts on one machine: network namespaces joined by a bridge.

Each host is a namespace with one address on a private test network; nothing is routed to any
other address. The database, the broker, the cache and the mail server each run on a host of
their own, as do the workers, the beats and the producer, so the suite can cut one host off from
another (blackhole routes at both ends: established connections stall as in a real partition,
new connects fail), and run one host's processes on a shifted clock (libfaketime).

Every name starts with a prefix of this run; leftovers of earlier runs (any ``iwzf`` prefix) are
removed at the start. See /work/shared/reference/fault-injection.md, "Several hosts".
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import processes
from tests.support.processes import ManagedProcess

PREFIX = "iwzf"
FAKETIME_LIBRARY = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def can_build_hosts() -> str:
    """Empty when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    if not os.path.exists(FAKETIME_LIBRARY):
        return "libfaketime is not installed (Debian package faketime)"
    return ""


def remove_leftovers() -> None:
    """Delete the namespaces of earlier runs whose process is gone (a run names its namespaces
    after its own PID; another run still going keeps its own)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(PREFIX) and not _owner_alive(name):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _owner_alive(namespace: str) -> bool:
    owner = namespace[len(PREFIX) :].partition("-")[0]
    if not owner.isdigit() or int(owner) == os.getpid():
        return False
    try:
        os.kill(int(owner), 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Host:
    name: str  # the role: db, broker, w1...
    namespace: str
    address: str

    def argv(self, command: list[str]) -> list[str]:
        """`command`, run on this host."""
        return ["ip", "netns", "exec", self.namespace, *command]

    def run(self, command: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(command), **kwargs)


@dataclass
class Network:
    """The test network: a bridge in a namespace of its own and one namespace per host."""

    subnet: str = field(
        default_factory=lambda: f"10.{random.randint(64, 250)}.{random.randint(1, 250)}"
    )
    hosts: dict[str, Host] = field(default_factory=dict)
    owner: int = field(default_factory=os.getpid)
    _cuts: set[tuple[str, str]] = field(default_factory=set)
    _forget_cleanup: Callable[[], None] = field(default=lambda: None)

    @property
    def run_id(self) -> str:
        return f"{PREFIX}{self.owner}-"

    @property
    def switch(self) -> str:
        return f"{self.run_id}sw"

    def create(self, roles: list[str]) -> None:
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for number, role in enumerate(roles, start=2):
            namespace = f"{self.run_id}{role}"
            host = Host(role, namespace, f"{self.subnet}.{number}")
            inside, outside = f"v{self.owner}-{number}", f"s{self.owner}-{number}"
            _ip("netns", "add", namespace)
            _ip("link", "add", inside, "type", "veth", "peer", "name", outside)
            _ip("link", "set", inside, "netns", namespace)
            _ip("link", "set", outside, "netns", self.switch)
            _ip("-n", self.switch, "link", "set", outside, "master", "br0", "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
            _ip("-n", namespace, "link", "set", inside, "name", "eth0")
            _ip("-n", namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "eth0", "up")
            self.hosts[role] = host
        self._forget_cleanup = processes.on_exit(self.destroy)

    def destroy(self) -> None:
        self._forget_cleanup()
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.switch], capture_output=True)
        self.hosts.clear()

    def cut(self, one: str, *others: str) -> None:
        """Partition host `one` from `others`, both ways: packets vanish."""
        for other in others:
            a, b = self.hosts[one], self.hosts[other]
            _ip("-n", a.namespace, "route", "add", "blackhole", f"{b.address}/32")
            _ip("-n", b.namespace, "route", "add", "blackhole", f"{a.address}/32")
            self._cuts.add((one, other))

    def heal(self) -> None:
        for one, other in sorted(self._cuts):
            a, b = self.hosts[one], self.hosts[other]
            subprocess.run(
                ["ip", "-n", a.namespace, "route", "del", "blackhole", f"{b.address}/32"],
                capture_output=True,
            )
            subprocess.run(
                ["ip", "-n", b.namespace, "route", "del", "blackhole", f"{a.address}/32"],
                capture_output=True,
            )
        self._cuts.clear()


def on_shifted_clock(env: dict[str, str], offset_seconds: int) -> dict[str, str]:
    """`env` for a process whose wall clock runs `offset_seconds` off (its monotonic clock
    stays true, as NTP slewing would leave it)."""
    if not offset_seconds:
        return env
    return env | {
        "LD_PRELOAD": FAKETIME_LIBRARY,
        "FAKETIME": f"{offset_seconds:+d}s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_NO_CACHE": "1",
    }


class SmtpOnHost:
    """The mail server's host: a sink (tests.faults.smtp_sink) that keeps each message's
    recipients, subject and Message-ID, one JSON line each, and answers DATA after a delay."""

    def __init__(self, host: Host, folder: Path, env: dict[str, str], cwd: Path) -> None:
        self.host = host
        folder.mkdir(parents=True, exist_ok=True)
        self.received = folder / "received.jsonl"
        self.received.touch()
        self.delay_file = folder / "data-delay"
        self.delay_file.write_text("0")
        self.process = ManagedProcess(
            [
                "-m",
                "tests.faults.smtp_sink",
                host.address,
                "2525",
                str(self.received),
                str(self.delay_file),
            ],
            env,
            folder / "smtp.log",
            run_on=host.argv,
            cwd=cwd,
        )
        self.process.wait_for_log("listening", timeout=60)

    def answer_data_after(self, seconds: float) -> None:
        self.delay_file.write_text(str(seconds))

    def stop(self) -> None:
        self.process.kill()
