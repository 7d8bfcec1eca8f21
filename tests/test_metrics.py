"""Observability: the task_run line of deployed workers, and /metrics after real worker runs."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
import yaml
from django.conf import settings
from django.db import OperationalError, connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from apps.core import metrics
from apps.core.broker import transport_for
from apps.core.models import IdempotencyKey, TaskMetric, WorkerHeartbeat
from apps.core.scrape import TaskLayerCollector
from apps.core.tasks.circuit_breaker import CircuitBreaker
from apps.peoples.models import People
from background_tasks import publish_mqtt, task_every_min
from intelliwiz_config.celery import app
from intelliwiz_config.production_checks import production_problems
from tests.conftest import BASE_DIR, ManagedProcess, process_env
from tests.support import worker_tasks
from tests.support.waiting import patience


def procfile_command(process: str) -> list[str]:
    """The Procfile's command line of `process`, run by this interpreter."""
    for line in (BASE_DIR / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name == process:
            argv = shlex.split(command)
            assert argv[0] == "celery"
            return ["-m", *argv]
    raise AssertionError(f"no {process} in the Procfile")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_procfile_worker_writes_the_task_run_line(tmp_path) -> None:
    # The Procfile's own command (Celery's default WARNING level), on a folder broker of its
    # own whatever the suite's broker is, so the session's test worker cannot take the message.
    var_dir = tmp_path / "var"
    argv = procfile_command("worker_maintenance")
    argv[argv.index("-n") + 1] = f"procfile-{os.getpid()}@{socket.gethostname()}"
    worker = ManagedProcess(
        argv,
        process_env(INTELLIWIZ_VAR_DIR=str(var_dir), CELERY_BROKER_URL="filesystem://"),
        tmp_path / "worker.log",
    )
    broker = var_dir / "broker"
    for folder in ("queue", "inflight", "control"):
        (broker / folder).mkdir(parents=True)
    try:
        with app.connection_for_write(
            "filesystem://",
            transport=transport_for("filesystem://"),
            transport_options={
                "data_folder_in": str(broker / "queue"),
                "data_folder_out": str(broker / "queue"),
                "inflight_folder": str(broker / "inflight"),
                "control_folder": str(broker / "control"),
            },
        ) as connection:
            sent = app.send_task("task_every_min", connection=connection)
        # No "ready." to wait for: the worker logs it at INFO.
        worker.wait_for_log(f"task_run task=task_every_min id={sent.id} outcome=success")
    finally:
        worker.stop()


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
TOKEN = "metrics-token-for-tests-0123456789abcdef"


def scrape(client) -> Samples:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_for_scrape(client, done: Callable[[Samples], bool], timeout: float = 30) -> Samples:
    """Scrape until `done` holds: workers flush their counts every FLUSH_SECONDS."""
    deadline = time.monotonic() + timeout
    while not done(samples := scrape(client)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return samples


@pytest.fixture
def metrics_token(settings) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


@pytest.mark.django_db
def test_metrics_are_for_prometheus_and_operators_only(client, settings) -> None:
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and b"intelliwiz_queue_messages" in response.content
    client_admin = People.objects.create_user("staff", "pw", email="s@x.test", is_staff=True)
    client.force_login(client_admin)
    assert client.get("/metrics").status_code == 403
    client.force_login(People.objects.create_superuser("operator", "pw", email="o@x.test"))
    assert client.get("/metrics").status_code == 200


def test_production_refuses_a_short_metrics_token() -> None:
    values = {name: getattr(settings, name) for name in dir(settings) if name.isupper()}
    short = production_problems(values | {"METRICS_TOKEN": "guessable"})
    assert "METRICS_TOKEN is too short (at least 32 characters)" in short
    assert not [p for p in production_problems(values | {"METRICS_TOKEN": TOKEN}) if "METRICS" in p]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_task_counts_and_histograms_after_real_worker_runs(
    worker: ManagedProcess, client, metrics_token, clean_cache
) -> None:
    def counts(samples: Samples, task: str) -> dict[str, float]:
        labels = {"task": task, "queue": "default"}
        return {
            name: sample(samples, f"intelliwiz_task_{name}", **labels)
            for name in (
                "started_total",
                "succeeded_total",
                "retried_total",
                "failed_total",
                "dead_lettered_total",
                "runtime_seconds_count",
                "queue_wait_seconds_count",
            )
        } | {
            "runtime_inf": sample(
                samples, "intelliwiz_task_runtime_seconds_bucket", le="+Inf", **labels
            )
        }

    before = scrape(client)
    flaky = worker_tasks.flaky.delay("metrics-flaky", failures=1)
    failing = worker_tasks.permanent_failure.delay(key="metrics-bad")
    assert flaky.get(timeout=patience(30)) == 2
    with pytest.raises(ValueError):
        failing.get(timeout=patience(30))
    expected = {
        "tests.flaky": {
            "started_total": 2,
            "succeeded_total": 1,
            "retried_total": 1,
            "failed_total": 0,
            "dead_lettered_total": 0,
            "runtime_seconds_count": 2,
            "queue_wait_seconds_count": 2,
            "runtime_inf": 2,
        },
        "tests.permanent_failure": {
            "started_total": 1,
            "succeeded_total": 0,
            "retried_total": 0,
            "failed_total": 1,
            "dead_lettered_total": 1,
            "runtime_seconds_count": 1,
            "queue_wait_seconds_count": 1,
            "runtime_inf": 1,
        },
    }

    def deltas(samples: Samples) -> dict[str, dict[str, float]]:
        return {
            task: {k: v - counts(before, task)[k] for k, v in counts(samples, task).items()}
            for task in expected
        }

    after = wait_for_scrape(client, lambda samples: deltas(samples) == expected)
    assert deltas(after) == expected


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_queue_depth_and_oldest_message_age_come_from_the_broker(
    worker: ManagedProcess, client, metrics_token
) -> None:
    # The worker stops consuming "reports", so what is sent there waits.
    control = {"destination": [worker.nodename], "reply": True, "timeout": 10}
    assert app.control.cancel_consumer("reports", **control)
    try:
        for _ in range(3):
            task_every_min.apply_async(queue="reports")
        samples = wait_for_scrape(
            client,
            lambda s: (
                sample(s, "intelliwiz_queue_oldest_message_age_seconds", queue="reports") >= 1
            ),
        )
        assert sample(samples, "intelliwiz_queue_messages", queue="reports") == 3
        age = sample(samples, "intelliwiz_queue_oldest_message_age_seconds", queue="reports")
        assert 1 <= age < 60
        assert sample(samples, "intelliwiz_broker_up") == 1
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge("reports")
        assert app.control.add_consumer("reports", **control)
    assert sample(scrape(client), "intelliwiz_queue_messages", queue="reports") == 0


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_heartbeats_per_worker_and_beat_lag(worker: ManagedProcess, client, metrics_token) -> None:
    # As beat sends it: named by its schedule entry, so its lateness is measured.
    sent = task_every_min.apply_async(headers={"periodic_task_name": "worker-heartbeat"})
    samples = wait_for_scrape(
        client,
        lambda s: (
            sample(s, "intelliwiz_worker_heartbeat_lateness_seconds", worker=worker.nodename) > 0
        ),
    )
    beat = WorkerHeartbeat.objects.get(worker=worker.nodename)
    assert beat.task_id == sent.id
    assert sample(
        samples, "intelliwiz_worker_last_heartbeat_timestamp_seconds", worker=worker.nodename
    ) == pytest.approx(beat.ran_at.timestamp())
    assert sample(samples, "intelliwiz_beat_lag_seconds") == pytest.approx(beat.lateness_seconds)
    # The worker and the database share this machine's clock.
    offset = sample(samples, "intelliwiz_worker_clock_offset_seconds", worker=worker.nodename)
    assert offset == pytest.approx(beat.clock_offset_seconds) and abs(offset) < 1


@pytest.mark.django_db
def test_ledger_claims_breakers_and_dead_letters_are_read_when_scraped(
    client, metrics_token, clean_cache
) -> None:
    now = timezone.now()
    for key, lease_left in (("live", 60), ("dead-1", -60), ("dead-2", -1)):
        IdempotencyKey.objects.create(
            key=key,
            owner="o",
            claimed_at=now,
            lease_expires_at=now + timedelta(seconds=lease_left),
        )
    IdempotencyKey.objects.create(
        key="done", owner="o", status="DONE", claimed_at=now, lease_expires_at=now
    )
    mqtt = publish_mqtt.circuit_breaker()
    for _ in range(mqtt.failure_threshold):
        mqtt.record_failure()
    samples = scrape(client)
    assert sample(samples, "intelliwiz_ledger_claims_in_progress") == 3
    assert sample(samples, "intelliwiz_ledger_claims_past_lease") == 2
    assert (
        sample(samples, "intelliwiz_circuit_breaker_state", service="mqtt-broker", state="open")
        == 1
    )
    assert (
        sample(samples, "intelliwiz_circuit_breaker_state", service="mqtt-broker", state="closed")
        == 0
    )


DEPLOY = BASE_DIR / "deploy"
METRIC_NAME = re.compile(r"\bintelliwiz_[a-z_]+")


def exposed_names() -> set[str]:
    """Every sample name /metrics can show."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {f.name + s for f in TaskLayerCollector().collect() for s in suffixes[f.type]}


def alert_rules() -> dict[str, str]:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


@pytest.mark.django_db
def test_alerts_and_the_dashboard_read_metrics_that_exist() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "intelliwiz.json").read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {
        name for expr in [*alert_rules().values(), *queries] for name in METRIC_NAME.findall(expr)
    }
    assert used and used <= exposed_names()
    # The four situations an operator must hear of.
    assert {
        "IntelliwizQueueBackingUp",
        "IntelliwizDeadLettersRising",
        "IntelliwizHeartbeatStale",
        "IntelliwizCircuitBreakerOpen",
    } <= set(alert_rules())


def test_compose_runs_prometheus_with_the_metrics_token_and_grafana_on_loopback() -> None:
    compose = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
    services = compose["services"]
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"] == ["web:8000"]
    assert job["authorization"]["credentials_file"] == "/run/secrets/metrics_token"
    assert services["prometheus"]["secrets"] == ["metrics_token"]
    assert compose["secrets"]["metrics_token"] == {"environment": "METRICS_TOKEN"}
    assert "METRICS_TOKEN" in services["web"]["environment"]
    assert services["web"]["environment"]["DJANGO_ALLOWED_HOSTS"].endswith(",web")
    for name in ("prometheus", "grafana", "flower"):
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"])


@pytest.mark.django_db
def test_a_partners_circuit_that_opened_is_counted_and_its_state_shown(
    client, metrics_token, clean_cache, monkeypatch
) -> None:
    # As in a worker process, with the flush done here rather than by the flusher thread.
    monkeypatch.setattr(metrics, "_enabled", True)
    monkeypatch.setattr(metrics, "_flusher", threading.current_thread())
    partner = CircuitBreaker("partner:api.example.com", failure_threshold=2)
    for _ in range(3):  # the third fails while open: opened again, a full period
        partner.record_failure()
    metrics.flush()
    samples = scrape(client)
    labels = {"service": "partner:api.example.com"}
    assert sample(samples, "intelliwiz_circuit_breaker_opened_total", **labels) == 2
    assert sample(samples, "intelliwiz_circuit_breaker_state", state="open", **labels) == 1


@pytest.mark.django_db
def test_counts_wait_in_memory_while_the_database_is_away(monkeypatch) -> None:
    monkeypatch.setattr(metrics, "_enabled", True)
    monkeypatch.setattr(metrics, "_flusher", threading.current_thread())
    metrics.record_started("tests.flaky", "default")

    def database_away(*args: object, **kwargs: object) -> None:
        raise OperationalError("server closed the connection")

    with monkeypatch.context() as away:
        away.setattr(metrics, "unflushed_commit", database_away)
        metrics.flush()
    metrics.record_started("tests.flaky", "default")
    metrics.flush()
    (row,) = TaskMetric.objects.filter(name="task_started")
    assert json.loads(row.labels) == {"queue": "default", "task": "tests.flaky"}
    assert row.value == 2


@pytest.mark.django_db
def test_every_flush_upserts_its_rows_in_one_order(monkeypatch) -> None:
    """Two workers flushing the same counters in different orders deadlocked on PostgreSQL
    (each holding a row the other wanted): every flush writes its rows sorted."""
    monkeypatch.setattr(metrics, "_enabled", True)
    monkeypatch.setattr(metrics, "_flusher", threading.current_thread())
    for task in ("tests.z", "tests.m", "tests.a"):  # counted in an order that is not sorted
        metrics.record_started(task, "default")
    written: list[tuple[str, str]] = []

    def record(execute, sql, params, many, context):
        if "core_taskmetric" in sql and params:
            written.append((params[0], params[1]))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        metrics.flush()
    assert len(written) == 3 and written == sorted(written)
