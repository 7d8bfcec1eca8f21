"""Throwaway service instances for fault injection, never the machine's shared ones.

Each instance runs on a free loopback port in a temporary folder and is stopped by the PID it
started: a Redis (append-only file on, so a restart keeps its backlog), a PostgreSQL cluster
made with ``initdb``, a Mosquitto, and an SMTP sink (aiosmtpd) that can refuse connections, hold
every session at RCPT or at the end of DATA, and be stopped and started again.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from typing import Protocol

from aiosmtpd.controller import Controller

from tests.support import processes
from tests.support.waiting import wait_until

PG_BIN = Path("/usr/lib/postgresql") / sorted(os.listdir("/usr/lib/postgresql"))[-1] / "bin"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def _read_pid(path: Path, timeout: float = 10) -> int:
    wait_until(lambda: path.exists() and path.read_text().strip(), timeout, what=f"{path}")
    return int(path.read_text().split()[0])


def _kill(pid: int | None, sig: int = signal.SIGKILL, timeout: float = 15) -> None:
    if pid is None:
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise TimeoutError(f"process {pid} did not exit")


class Loopback:
    """This machine as a host: commands run as they are, services listen on 127.0.0.1 on free
    ports. A host of the multi-host suite (tests/faults/hosts.py) answers the same two names."""

    address = "127.0.0.1"

    def argv(self, command: list[str]) -> list[str]:
        return command


LOOPBACK = Loopback()


class ServiceHost(Protocol):
    address: str

    def argv(self, command: list[str]) -> list[str]: ...


class RedisInstance:
    """A Redis of its own, with or without its append-only file, on this machine (a free port)
    or on a host of the multi-host suite (its address, port 6379)."""

    def __init__(
        self, folder: Path, *, appendonly: bool = True, host: ServiceHost = LOOPBACK
    ) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = free_port() if host is LOOPBACK else 6379
        self.appendonly = appendonly
        self.pid: int | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host.address}:{self.port}/{db}"

    def start(self, *, appendonly: bool | None = None) -> None:
        if appendonly is not None:
            self.appendonly = appendonly
        pidfile = self.folder / "redis.pid"
        pidfile.unlink(missing_ok=True)
        subprocess.run(
            self.host.argv(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    self.host.address,
                    "--protected-mode",
                    "no",
                    "--daemonize",
                    "yes",
                    "--dir",
                    str(self.folder),
                    "--pidfile",
                    str(pidfile),
                    "--logfile",
                    str(self.folder / "redis.log"),
                    "--save",
                    "",
                    "--appendonly",
                    "yes" if self.appendonly else "no",
                    "--appendfsync",
                    "always",
                ]
            ),
            check=True,
        )
        self.pid = _read_pid(pidfile)
        processes.track_daemon(self.pid)
        ping = self.host.argv(["redis-cli", "-h", self.host.address, "-p", str(self.port), "ping"])
        wait_until(
            lambda: subprocess.run(ping, capture_output=True, text=True).stdout.strip() == "PONG",
            30,
            what=f"Redis at {self.url()}",
        )

    def kill(self) -> None:
        """SIGKILL: what a crash or an OOM kill does."""
        _kill(self.pid)
        if self.pid is not None:
            processes.forget_daemon(self.pid)
        self.pid = None


class PostgresCluster:
    """A PostgreSQL cluster of its own (initdb), run as the `postgres` OS user, on this machine
    (a free port) or on a host of the multi-host suite (its address, port 5432, trusting
    `trusted_subnet`), in a folder of its own under the system's temp folder: pytest keeps its
    own folders private (0700), which the postgres user could not enter."""

    def __init__(self, *, host: ServiceHost = LOOPBACK, trusted_subnet: str = "") -> None:
        self.host = host
        self.folder = Path(tempfile.mkdtemp(prefix="intelliwiz-faults-pg-"))
        self._forget_folder = processes.on_exit(
            lambda: shutil.rmtree(self.folder, ignore_errors=True)
        )
        self.port = free_port() if host is LOOPBACK else 5432
        self.pid = 0
        self.folder.chmod(0o755)
        shutil.chown(self.folder, "postgres")
        self.data = self.folder / "data"
        self._as_postgres(
            [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]
        )
        if trusted_subnet:
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all all {trusted_subnet} trust\n")

    def _as_postgres(self, argv: list[str]) -> None:
        subprocess.run(
            self.host.argv(["runuser", "-u", "postgres", "--", *argv]),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@{self.host.address}:{self.port}/{database}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses={self.host.address} "
            "-c max_connections=200"
        )
        log = str(self.folder / "pg.log")
        self._as_postgres(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start"]
        )
        self.pid = _read_pid(self.data / "postmaster.pid")
        processes.track_daemon(self.pid)

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])
        processes.forget_daemon(self.pid)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)
        self._forget_folder()

    def create_database(self, name: str) -> str:
        self._as_postgres(
            [
                str(PG_BIN / "createdb"),
                "-h",
                self.host.address,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                name,
            ]
        )
        return self.url(name)


class MosquittoInstance:
    def __init__(self, folder: Path, *, extra_config: str = "allow_anonymous true\n") -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.pid: int | None = None
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"{extra_config}"
            f"pid_file {folder / 'mosquitto.pid'}\n"
            f"log_dest file {folder / 'mosquitto.log'}\n"
            "persistence false\n"
            # Stay the user that started it (as root it would switch to one that cannot write
            # into this folder).
            f"user {pwd.getpwuid(os.getuid()).pw_name}\n"
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        pidfile = self.folder / "mosquitto.pid"
        pidfile.unlink(missing_ok=True)
        subprocess.run(["mosquitto", "-c", str(self.config), "-d"], check=True)
        self.pid = _read_pid(pidfile)
        processes.track_daemon(self.pid)
        wait_for_port(self.port)

    def kill(self) -> None:
        _kill(self.pid)
        if self.pid is not None:
            processes.forget_daemon(self.pid)
        self.pid = None

    def reload(self) -> None:
        """Read the password and ACL files again (SIGHUP)."""
        os.kill(self.pid, signal.SIGHUP)


@dataclass
class ReceivedMail:
    recipients: tuple[str, ...]
    subject: str
    at: float
    message_id: str = ""


@dataclass
class SmtpSink:
    """An SMTP server that keeps what it accepts and can be told to misbehave.

    ``hold("RCPT")`` or ``hold("DATA")`` keeps every new session waiting at that stage (DATA:
    after the message arrived, before the 250 reply) until ``release()``; ``held`` counts them.
    ``stop()`` closes the port (connections refused) until ``start()``.
    """

    port: int = field(default_factory=free_port)
    received: list[ReceivedMail] = field(default_factory=list)
    held: int = 0
    _hold_at: str = ""
    _controller: Controller | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def hold(self, stage: str) -> None:
        self._hold_at = stage

    def release(self) -> None:
        self._hold_at = ""

    async def _maybe_hold(self, stage: str) -> None:
        if self._hold_at != stage:
            return
        with self._lock:
            self.held += 1
        try:
            while self._hold_at == stage:
                await asyncio.sleep(0.02)
        finally:
            with self._lock:
                self.held -= 1

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        await self._maybe_hold("RCPT")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        message = message_from_bytes(envelope.content, policy=email_policy.default)
        # Like an MTA that queues the message at the end of DATA: once here it is delivered,
        # even if the client never reads the reply.
        with self._lock:
            self.received.append(
                ReceivedMail(
                    tuple(envelope.rcpt_tos),
                    str(message["Subject"]),
                    time.time(),
                    str(message["Message-ID"] or ""),
                )
            )
        await self._maybe_hold("DATA")
        return "250 OK"

    def subjects(self) -> list[str]:
        with self._lock:
            return [mail.subject for mail in self.received]

    def mails(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self.received)

    def count(self) -> int:
        with self._lock:
            return len(self.received)
