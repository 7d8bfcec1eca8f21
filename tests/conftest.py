"""Shared fixtures: real Celery worker and beat processes, and the real services of CI.

Service tests read their URL from an environment variable (TEST_REDIS_URL, TEST_RABBITMQ_URL);
without it they skip with the reason, except under INTELLIWIZ_REQUIRE_SERVICES=1 (as in CI),
where a missing service fails the run.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings
from django.core.cache import cache

from apps.core.broker import transport_for
from intelliwiz_config.celery import QUEUE_NAMES, app
from tests.support import processes
from tests.support.mqtt import AmqttBroker
from tests.support.processes import ManagedProcess
from tests.support.waiting import patience

BASE_DIR = Path(settings.BASE_DIR)


def pytest_configure(config: pytest.Config) -> None:
    processes.install()  # SIGTERM and SIGHUP end the run as Ctrl-C does


def pytest_unconfigure(config: pytest.Config) -> None:
    processes.kill_all()  # whatever the teardown left: nothing outlives the suite


for noisy in ("amqtt", "transitions"):  # the in-process MQTT broker logs every state change
    logging.getLogger(noisy).setLevel(logging.WARNING)
REQUIRE_SERVICES = os.environ.get("INTELLIWIZ_REQUIRE_SERVICES") == "1"
WORKER_TASKS_MODULE = "tests.support.worker_tasks"
# The partner credentials workers know: "acme" belongs to the client coded PARTNER-CLIENT.
PARTNER_CREDENTIALS = {
    "acme": {"client": "PARTNER-CLIENT", "headers": {"Authorization": "Bearer partner-token"}}
}


def service_url(env_name: str) -> str:
    url = os.environ.get(env_name, "")
    if not url:
        reason = f"{env_name} is not set, so this real-service test cannot run"
        if REQUIRE_SERVICES:
            pytest.fail(f"{reason} (INTELLIWIZ_REQUIRE_SERVICES=1)")
        pytest.skip(reason)
    return url


def subprocess_database_url() -> str:
    """DATABASE_URL of the test database, for worker and beat processes."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


CELERY = ["-m", "celery", "-A", "intelliwiz_config"]


def worker_argv(nodename: str, concurrency: int, *extra: str) -> list[str]:
    """`celery worker` consuming every declared queue, prefork, without mingle or gossip."""
    return [
        *CELERY,
        "worker",
        "-n",
        nodename,
        "-Q",
        ",".join(QUEUE_NAMES),
        "-c",
        str(concurrency),
        "-P",
        "prefork",
        "--without-mingle",
        "--without-gossip",
        "-l",
        "INFO",
        *extra,
    ]


def process_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = subprocess_database_url()
    env["DJANGO_SETTINGS_MODULE"] = "intelliwiz_config.settings"
    env.update(overrides)
    return env


def purge_queues(broker_url: str) -> None:
    with app.connection_for_write(broker_url, transport=transport_for(broker_url)) as conn:
        app.control.purge(connection=conn)


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.reject_next = 0  # answer this many DATA commands with 451 (a transient failure)
        with socket.socket() as probe:  # aiosmtpd cannot bind port 0 itself
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's hook
        if self.reject_next > 0:
            self.reject_next -= 1
            return "451 4.3.0 Try again later"
        message = message_from_bytes(envelope.content, policy=email_policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 30) -> list[tuple[list[str], EmailMessage]]:
        deadline = time.monotonic() + patience(timeout)
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return list(self.messages)


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink._controller.start()
    yield sink
    sink._controller.stop()


@pytest.fixture
def mail_sink(smtp_server: SmtpSink) -> Iterator[SmtpSink]:
    smtp_server.messages.clear()
    smtp_server.reject_next = 0
    yield smtp_server
    smtp_server.reject_next = 0


@pytest.fixture(scope="session")
def worker_mqtt_broker() -> Iterator[AmqttBroker]:
    """The MQTT broker of the test workers: in-process, so a test can stop and restart it."""
    broker = AmqttBroker()
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def start_worker(
    django_db_setup: None,
    django_db_blocker,
    tmp_path_factory,
    smtp_server: SmtpSink,
    worker_mqtt_broker: AmqttBroker,
) -> Iterator[Callable[..., ManagedProcess]]:
    """Factory: a real prefork worker on the given broker, consuming every declared queue."""
    started: list[ManagedProcess] = []
    logs = tmp_path_factory.mktemp("celery-logs")

    def start(broker_url: str = settings.CELERY_BROKER_URL, name: str = "test") -> ManagedProcess:
        with django_db_blocker.unblock():
            env = process_env(
                CELERY_BROKER_URL=broker_url,
                EMAIL_HOST="127.0.0.1",
                EMAIL_PORT=str(smtp_server.port),
                MQTT_URL=worker_mqtt_broker.url,
                NOC_ALERT_EMAILS="noc@facility.test",
                PARTNER_API_ALLOWED_HOSTS="localhost",
                PARTNER_API_PRIVATE_HOSTS="localhost",
                PARTNER_API_CREDENTIALS=json.dumps(PARTNER_CREDENTIALS),
            )
        purge_queues(broker_url)
        nodename = f"{name}-{os.getpid()}@{socket.gethostname()}"
        worker = ManagedProcess(
            worker_argv(nodename, 1, "-I", WORKER_TASKS_MODULE),
            env,
            logs / f"worker-{name}-{len(started)}.log",
            nodename,
        )
        started.append(worker)
        worker.wait_for_log("ready.")
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="session")
def worker(start_worker: Callable[..., ManagedProcess]) -> ManagedProcess:
    """The worker on the configured broker (the embedded default, or CELERY_BROKER_URL)."""
    return start_worker()


@pytest.fixture
def clean_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()
