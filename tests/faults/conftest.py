"""Stacks for the fault suite: the project configured on its own throwaway services.

- ``embedded``: the embedded default (SQLite, folder broker, database cache) in a temp folder.
- ``postgres-redis``: a PostgreSQL cluster and a Redis (append-only) of the suite's own.
- ``postgres-rabbitmq``: the same PostgreSQL, and a vhost of the machine's RabbitMQ that the
  suite creates and deletes (a second RabbitMQ node is too heavy to start per run).

Every process of a stack (workers, beat, the driver) gets the stack's environment; mail goes
to an SMTP sink in this process. Leases and retries are short so that a fault and its recovery
fit in seconds: a 12 s broker lease, per-call task time limits, RETRY_TIME_SCALE per scenario.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BASE_DIR, CELERY, ManagedProcess, worker_argv
from tests.faults.harness import PostgresCluster, RedisInstance, SmtpSink


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.faults)


VISIBILITY_TIMEOUT = 12  # seconds: a dead worker's messages come back after this
# Settings of the machine's own configuration that must not leak into a stack.
_STACK_VARIABLES = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CACHE_URL",
    "CACHE_KEY_PREFIX",
    "MQTT_URL",
)


@dataclass
class Stack:
    name: str
    folder: Path
    env: dict[str, str]
    processes: list[ManagedProcess] = field(default_factory=list)

    def environment(self, **overrides: str) -> dict[str, str]:
        return {**self.env, **{k: str(v) for k, v in overrides.items()}}

    def driver(self, *args: str, stdin: str = "", **env: str) -> Any:
        completed = subprocess.run(
            [sys.executable, "-m", "tests.faults.driver", *args],
            cwd=BASE_DIR,
            env=self.environment(**env),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if completed.returncode:
            raise AssertionError(f"driver {args} failed:\n{completed.stderr[-4000:]}")
        return json.loads(completed.stdout.strip().splitlines()[-1])

    def reset(self) -> None:
        """A clean start: a failed scenario's processes would take the next one's messages."""
        self.stop_all()
        self.driver("reset")

    def _process(self, name: str, argv: list[str], **env: str) -> ManagedProcess:
        log = self.folder / f"{name}-{len(self.processes)}.log"
        process = ManagedProcess(argv, self.environment(**env), log, nodename=name)
        self.processes.append(process)
        return process

    def worker(self, name: str = "w", concurrency: int = 2, **env: str) -> ManagedProcess:
        nodename = f"{name}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        worker = self._process(nodename, worker_argv(nodename, concurrency), **env)
        worker.wait_for_log("ready.", timeout=90)
        return worker

    def beat(self, name: str = "beat", **env: str) -> ManagedProcess:
        pidfile = self.folder / f"{name}-{uuid.uuid4().hex[:6]}.pid"
        return self._process(
            name, [*CELERY, "beat", "-l", "INFO", "--pidfile", str(pidfile)], **env
        )

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()
        self.processes.clear()


def kill_group(process: ManagedProcess) -> None:
    """SIGKILL a worker's main process and its children at once: a lost machine or container."""
    os.killpg(process.proc.pid, signal.SIGKILL)
    process.proc.wait(15)


def _base_env(folder: Path, sink: SmtpSink) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _STACK_VARIABLES}
    return env | {
        "DJANGO_SETTINGS_MODULE": "intelliwiz_config.settings",
        "INTELLIWIZ_VAR_DIR": str(folder / "var"),
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(sink.port),
        "EMAIL_TIMEOUT": "5",
        "DEFAULT_FROM_EMAIL": "intelliwiz@facility.test",
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "BEAT_LOCK_LEASE_SECONDS": "5",
        "RESULT_STORE_PATIENCE_SECONDS": "5",
        "PYTHONUNBUFFERED": "1",
    }


def _migrate(stack: Stack) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=BASE_DIR,
        env=stack.env,
        check=True,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture
def record(request) -> Callable[..., None]:
    """Print a scenario's figures and, with FAULTS_REPORT set, append them to that file as a
    JSON line (bench/faults.py prints them as a table)."""
    params = request.node.callspec.params if hasattr(request.node, "callspec") else {}
    stack = params.get("stack") or params.get("on")
    if stack is None:
        stack = "postgres-redis" if "redis_stack" in request.fixturenames else "-"
    if "hosts" in request.fixturenames:
        stack = "multi-host"
    scenario = request.node.originalname.removeprefix("test_").replace("_", " ")
    if params.get("stage"):
        scenario += f" (at {params['stage']})"
    for name in ("seconds", "offset"):
        if name in params:
            scenario += f" ({name} {params[name]})"

    def record(**figures: object) -> None:
        line = json.dumps({"scenario": scenario, "stack": stack, **figures}, default=str)
        print(f"faults: {line}")
        if os.environ.get("FAULTS_REPORT"):
            with open(os.environ["FAULTS_REPORT"], "a") as report:
                report.write(line + "\n")

    return record


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def sink(smtp_sink: SmtpSink) -> Iterator[SmtpSink]:
    if smtp_sink._controller is None:
        smtp_sink.start()
    smtp_sink.release()
    smtp_sink.received.clear()
    yield smtp_sink
    smtp_sink.release()
    if smtp_sink._controller is None:
        smtp_sink.start()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.remove()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisInstance]:
    redis = RedisInstance(tmp_path_factory.mktemp("redis"))
    redis.start()
    yield redis
    redis.kill()


@pytest.fixture(scope="session")
def rabbitmq_vhost() -> Iterator[str]:
    vhost = f"intelliwiz-faults-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False, capture_output=True)


def _stack(name: str, folder: Path, env: dict[str, str]) -> Stack:
    stack = Stack(name, folder, env)
    _migrate(stack)
    return stack


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory, smtp_sink) -> Stack:
    folder = tmp_path_factory.mktemp("embedded")
    return _stack("embedded", folder, _base_env(folder, smtp_sink))


@pytest.fixture(scope="session")
def redis_stack(tmp_path_factory, smtp_sink, postgres, redis_server) -> Stack:
    folder = tmp_path_factory.mktemp("postgres-redis")
    env = _base_env(folder, smtp_sink) | {
        "DATABASE_URL": postgres.create_database("faults_redis"),
        "CELERY_BROKER_URL": redis_server.url(0),
        "CACHE_URL": redis_server.url(1),
    }
    return _stack("postgres-redis", folder, env)


@pytest.fixture(scope="session")
def rabbitmq_stack(tmp_path_factory, smtp_sink, postgres, rabbitmq_vhost) -> Stack:
    folder = tmp_path_factory.mktemp("postgres-rabbitmq")
    env = _base_env(folder, smtp_sink) | {
        "DATABASE_URL": postgres.create_database("faults_rabbitmq"),
        "CELERY_BROKER_URL": rabbitmq_vhost,
    }
    return _stack("postgres-rabbitmq", folder, env)


@pytest.fixture(params=["embedded", "postgres-redis"])
def stack(request) -> Iterator[Stack]:
    """Each scenario on the embedded default and on PostgreSQL + Redis."""
    chosen: Stack = request.getfixturevalue(
        {"embedded": "embedded_stack", "postgres-redis": "redis_stack"}[request.param]
    )
    chosen.reset()
    yield chosen
    chosen.stop_all()


@pytest.fixture
def on(request) -> Iterator[Stack]:
    """The stack named by ``@pytest.mark.parametrize("on", [...], indirect=True)``."""
    chosen: Stack = request.getfixturevalue(
        {
            "embedded": "embedded_stack",
            "postgres-redis": "redis_stack",
            "postgres-rabbitmq": "rabbitmq_stack",
        }[request.param]
    )
    chosen.reset()
    yield chosen
    chosen.stop_all()
