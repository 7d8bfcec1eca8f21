"""The Celery app's declared configuration: serialisation, queues, retry policies, beat."""

from __future__ import annotations

import os
import smtplib
import threading

import pytest
from celery import current_app, shared_task
from celery.schedules import crontab
from django.conf import settings
from django.db import OperationalError

from apps.core.idempotency import SideEffectInProgress
from apps.core.tasks.circuit_breaker import CircuitOpenError
from apps.core.tasks.utils import RETRY_POLICIES, task_retry_policy
from intelliwiz_config.celery import BEAT_SCHEDULE, DEFAULT_QUEUE, QUEUE_NAMES, app


def test_the_apps_find_this_app_as_the_current_one_in_any_thread() -> None:
    """The apps never import intelliwiz_config: /healthz, run in a web server's thread, reaches
    the broker through celery.current_app."""
    found = []
    thread = threading.Thread(target=lambda: found.append(current_app._get_current_object()))
    thread.start()
    thread.join()
    assert found == [app]


def test_json_only() -> None:
    assert app.conf.task_serializer == "json"
    assert app.conf.result_serializer == "json"
    assert app.conf.accept_content == ["json"]


def test_declared_queues_with_default_and_no_implicit_ones() -> None:
    assert [q.name for q in app.conf.task_queues] == list(QUEUE_NAMES)
    assert set(QUEUE_NAMES) == {
        "critical",
        "high_priority",
        "email",
        "reports",
        "external_api",
        "media",
        "maintenance",
        "default",
    }
    assert app.conf.task_default_queue == DEFAULT_QUEUE == "default"
    assert app.conf.task_create_missing_queues is False


def test_every_beat_entry_has_a_crontab_a_declared_queue_and_expires() -> None:
    for name, entry in BEAT_SCHEDULE.items():
        assert isinstance(entry["schedule"], crontab), name
        assert entry["options"]["queue"] in QUEUE_NAMES, name
        assert entry["options"]["expires"] > 0, name


def test_the_declared_schedule_is_loaded_into_the_tables_not_beats_own_setting() -> None:
    """django-celery-beat writes app.conf.beat_schedule over the tables at every start, which
    would undo operators' edits; sync_beat_schedule reads the declared schedule instead."""
    assert not app.conf.beat_schedule
    assert app.conf.declared_beat_schedule is BEAT_SCHEDULE


def test_beat_uses_the_database_scheduler() -> None:
    assert app.conf.beat_scheduler == "apps.core.beat:LeaderDatabaseScheduler"
    assert app.conf.result_backend == "apps.core.results:DatabaseBackend"


RABBITMQ_CONSUMER_TIMEOUT = 30 * 60  # RabbitMQ's default: a channel holding a message longer dies


def test_a_dead_workers_messages_come_back_within_five_minutes() -> None:
    options = app.conf.broker_transport_options
    if not settings.CELERY_BROKER_URL.startswith(("redis", "filesystem")):
        pytest.skip("RabbitMQ requeues a dead consumer's messages itself, at once")
    lease = options["visibility_timeout"]
    # Renewed several times per lease, so a live holder never loses a message it holds.
    assert options["lease_renewal_interval"] <= lease / 4
    sweep = options.get("unacked_restore_interval", options["lease_renewal_interval"])
    assert lease + sweep <= 5 * 60


def test_every_policy_holds_a_message_less_than_rabbitmqs_consumer_timeout() -> None:
    for name, policy in RETRY_POLICIES.items():
        assert policy["time_limit"] + policy["retry_backoff_max"] < RABBITMQ_CONSUMER_TIMEOUT, name


def test_every_policy_retries_for_a_window_not_a_count() -> None:
    for name, policy in RETRY_POLICIES.items():
        assert policy["max_retries"] is None, name
        assert policy["retry_window"] >= 3600, name
    # A mail outlives a long mail-server outage and flows within two minutes of its end.
    assert RETRY_POLICIES["email"]["retry_window"] >= 6 * 3600
    assert RETRY_POLICIES["email"]["retry_backoff_max"] <= 120


@pytest.mark.parametrize("name", sorted(RETRY_POLICIES))
def test_policies_are_real_celery_task_options(name: str) -> None:
    policy = task_retry_policy(name)

    @shared_task(name=f"tests.policy.{name}", **policy)
    def probe() -> None: ...

    task = app.tasks[f"tests.policy.{name}"]
    for option, value in policy.items():
        assert getattr(task, option) == value, option
    assert task.soft_time_limit < task.time_limit
    assert task.acks_late and task.reject_on_worker_lost
    assert task.retry_jitter is True
    assert isinstance(task.retry_backoff, int) and task.retry_backoff > 1  # seconds, not True
    del app.tasks[f"tests.policy.{name}"]


def test_policies_retry_only_named_transient_errors() -> None:
    assert smtplib.SMTPServerDisconnected in task_retry_policy("email")["autoretry_for"]
    assert CircuitOpenError in task_retry_policy("external_api")["autoretry_for"]
    assert OperationalError in task_retry_policy("database_heavy")["autoretry_for"]
    assert SideEffectInProgress in task_retry_policy("default")["autoretry_for"]
    for policy in RETRY_POLICIES.values():
        assert Exception not in policy["autoretry_for"]
        assert ValueError not in policy["autoretry_for"]


@pytest.mark.django_db
def test_a_cache_outage_is_retried_like_other_transient_errors(settings) -> None:
    """redis-py's errors are not the built-in ConnectionError: without them named, a cache
    outage dead-lettered cache warming on its first try."""
    from django.core.cache import cache

    settings.CACHES = {  # nothing listens on the discard port
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
        }
    }
    with pytest.raises(Exception) as outage:
        cache.set("probe", 1)
    assert isinstance(outage.value, app.tasks["cache_warming_scheduled"].autoretry_for)
    for name, policy in RETRY_POLICIES.items():
        assert isinstance(outage.value, policy["autoretry_for"]), name


def test_policy_copies_are_independent_and_unknown_names_fail() -> None:
    task_retry_policy("default")["retry_window"] = 99
    assert task_retry_policy("default")["retry_window"] == 3600
    with pytest.raises(KeyError, match="unknown retry policy 'critical'"):
        task_retry_policy("critical")


def test_workers_keep_their_database_connection_between_tasks() -> None:
    # Without CELERY_DB_REUSE_MAX Celery's Django fixup reconnects around every task.
    assert app.conf.get("CELERY_DB_REUSE_MAX") >= 100
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] > 0


@pytest.mark.django_db(transaction=True)
def test_a_broken_kept_connection_is_dropped_before_the_next_task() -> None:
    from django.db import connection

    from intelliwiz_config.celery import recycle_database_connections

    connection.ensure_connection()
    kept = connection.connection
    recycle_database_connections(sender=None)
    assert connection.connection is kept
    connection.errors_occurred = True
    connection.is_usable = lambda: False  # what a health check finds after a database restart
    try:
        recycle_database_connections(sender=None)
        assert connection.connection is None
    finally:
        del connection.is_usable


@pytest.mark.django_db(transaction=True)
def test_a_kept_connection_is_checked_after_an_error_or_idling_not_before_every_task(
    monkeypatch,
) -> None:
    """Django's hook resets the health check around every request; run around every task it
    cost each task a SELECT 1 (99 pings per 100 tasks of the heartbeat)."""
    from celery.signals import task_postrun, task_prerun
    from django.contrib.contenttypes.models import ContentType
    from django.db import DatabaseError, connection

    import intelliwiz_config.celery as config

    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    connection.close()
    connection.ensure_connection()
    checks: list[bool] = []
    usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(usable()) or checks[-1])

    def task(fails: bool = False) -> None:
        config.recycle_database_connections(sender=None, signal=task_prerun)
        ContentType.objects.count()
        if fails:
            with pytest.raises(DatabaseError), connection.cursor() as cursor:
                cursor.execute("SELECT * FROM no_such_table")
        config.recycle_database_connections(sender=None, signal=task_postrun)

    task()  # the worker's first task: its connection has no history yet
    checks.clear()
    for _ in range(5):
        task()
    assert checks == [], "a busy worker's working connection was pinged before its tasks"
    task(fails=True)
    assert checks == [True], "a connection that saw an error was not checked"
    task()
    assert checks == [True]
    monkeypatch.setattr(config, "HEALTH_CHECK_AFTER_IDLE_SECONDS", 0.0)
    task()
    assert checks == [True, True], "a connection that sat idle was not checked"
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    connection.close_at = 0.0  # outlived DB_CONN_MAX_AGE
    config.recycle_database_connections(sender=None, signal=task_prerun)
    assert connection.connection is None


def test_loading_the_tasks_imports_no_heavy_library() -> None:
    """What a worker loads as it starts (the tasks, and what Celery's Django fixup does then):
    fpdf alone took about 1.8 s; Django's system checks imported every URL, view and form and
    GraphQL (graphene, and django.test through graphene-django) about a second more; botocore
    is for S3 only."""
    import subprocess
    import sys

    heavy = (
        "fpdf", "openpyxl", "face_recognition", "dlib", "boto3", "botocore", "paho", "numpy",
        "PIL", "graphene", "graphql", "django.test", "intelliwiz_config.urls",
    )  # fmt: skip
    probe = (
        "import sys, django; from intelliwiz_config.celery import app; django.setup(); "
        "app.loader.import_default_modules(); "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if k != "CELERY_SKIP_CHECKS"}
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    )
    assert completed.stdout.strip() == "[]"


def test_pool_processes_are_recycled_by_memory_not_by_a_count_of_tasks() -> None:
    """Celery starts a replacement on its 5-second pool timer: a -c 1 worker stood still 3-5 s
    every 500 heartbeats when a count recycled its process."""
    assert app.conf.worker_max_tasks_per_child is None
    assert app.conf.worker_max_memory_per_child > 0
