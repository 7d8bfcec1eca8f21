"""task_every_min under real beat with the database scheduler, and /healthz."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from apps.core.beat import LeaderDatabaseScheduler, hold_beat_lock, release_beat_lock
from apps.core.broker import transport_for
from apps.core.broker_safety import broker_problems
from apps.core.models import BeatLock, DeadLetter, IdempotencyKey, WorkerHeartbeat
from apps.core.services import record_heartbeat
from background_tasks import task_every_min
from intelliwiz_config.celery import app
from tests.conftest import CELERY, ManagedProcess, process_env
from tests.support.waiting import patience


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_beat_with_the_database_scheduler_runs_the_heartbeat(
    worker: ManagedProcess, tmp_path, django_db_blocker
) -> None:
    # The declared schedule is in the database after migrate; an operator's edit (here: every
    # second instead of every minute, to keep the test short) is what beat follows.
    entry = PeriodicTask.objects.get(name="worker-heartbeat-every-minute")
    assert entry.task == "task_every_min"
    assert entry.crontab is not None and entry.crontab.minute == "*"
    assert (entry.queue, entry.expire_seconds) == ("default", 50)
    PeriodicTask.objects.exclude(pk=entry.pk).update(enabled=False)  # only the heartbeat here
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    entry.crontab, entry.interval = None, every_second
    entry.save()

    beat = ManagedProcess(
        [*CELERY, "beat", "-l", "INFO", "--pidfile", str(tmp_path / "beat.pid")],
        process_env(),
        tmp_path / "beat.log",
    )
    try:
        deadline = time.monotonic() + patience(45)
        scheduled = None
        while scheduled is None and time.monotonic() < deadline:
            time.sleep(0.5)
            scheduled = WorkerHeartbeat.objects.filter(
                worker=worker.nodename, scheduled_for__isnull=False
            ).first()
        assert scheduled is not None, beat.log()[-3000:]
        assert 0 <= scheduled.lateness_seconds < 120
        assert "Sending due task worker-heartbeat-every-minute (task_every_min)" in beat.log()
    finally:
        beat.stop()


@pytest.mark.django_db
def test_lateness_is_measured_from_the_minute_slot_of_publication() -> None:
    published = timezone.now() - timedelta(seconds=90)
    slot = published.replace(second=0, microsecond=0)
    beat = record_heartbeat(worker="w1", task_id="t1", published_at=published.timestamp())
    assert beat.scheduled_for == slot
    assert beat.lateness_seconds == pytest.approx((beat.ran_at - slot).total_seconds(), abs=0.01)
    assert beat.lateness_seconds >= 90
    again = record_heartbeat(worker="w1", task_id="t2", published_at=None)
    assert (again.beats, again.task_id, again.lateness_seconds) == (2, "t2", None)


@pytest.mark.django_db(transaction=True)
def test_a_beat_and_the_metrics_commit_without_waiting_for_the_disk() -> None:
    """A durable commit waits 1 to 3 ms for PostgreSQL's log flush, more than the rest of a
    heartbeat; a beat or a metrics flush lost in a database crash is written again by the next."""
    from django.db import connection

    from apps.core import metrics

    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")
    statements: list[str] = []

    def spy(execute, sql, *args):
        statements.append(sql)
        return execute(sql, *args)

    with connection.execute_wrapper(spy):
        record_heartbeat(worker="w1", task_id="t1", published_at=None)
        metrics._pending[("task_started", metrics._labels(task="t", queue="q"))] += 1
        metrics.flush()
    beat, *flush = statements
    assert "INSERT INTO" in beat and "core_workerheartbeat" in beat
    assert "set_config('synchronous_commit', 'off', true)" in beat  # in its own statement
    assert flush[0] == "SET LOCAL synchronous_commit TO OFF"
    assert "core_taskmetric" in flush[1]


@pytest.fixture
def client(client):
    """/healthz tells its details to operators only: these tests read them as one."""
    from apps.peoples.models import People

    client.force_login(People.objects.create_superuser("operator", "pw", email="op@x.test"))
    return client


@pytest.mark.django_db
def test_healthz_tells_others_the_status_only_and_operators_and_monitors_everything(
    settings,
) -> None:
    from django.test import Client

    from apps.peoples.models import People
    from tests import factories

    settings.HEALTHZ_TOKEN = "m0nitor-" + "t" * 32
    record_heartbeat(worker="worker-host-7", task_id="t1", published_at=None)
    hold_beat_lock("beat-host:4242:abc", timedelta(seconds=30))
    staff = factories.person(factories.client_and_site()[1], is_staff=True, is_client_admin=True)
    signed_in = Client()
    signed_in.force_login(staff)
    # The machine's own Redis keeps no append-only file: as a broker it is unsafe, said so.
    working = "degraded" if broker_problems(app) else "healthy"
    for reader, headers in (
        (Client(), {}),
        (signed_in, {}),
        (Client(), {"Authorization": "Bearer wrong-token"}),
    ):
        response = reader.get("/healthz", headers=headers)
        assert (response.status_code, response.json()) == (200, {"status": working})
        assert b"worker-host-7" not in response.content and b"4242" not in response.content
    monitor = Client().get(
        "/healthz", headers={"Authorization": f"Bearer {settings.HEALTHZ_TOKEN}"}
    )
    operator = Client()
    operator.force_login(People.objects.create_superuser("root", "pw", email="r@x.test"))
    for response in (monitor, operator.get("/healthz")):
        assert response.json()["checks"]["heartbeat"]["worker"] == "worker-host-7"
        assert response.json()["checks"]["beat"]["holder"] == "beat-host:4242:abc"
    BeatLock.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = Client().get("/healthz")
    assert (response.status_code, response.json()) == (503, {"status": "unhealthy"})


@pytest.mark.django_db
def test_healthz_is_healthy_with_a_fresh_heartbeat_and_a_leading_beat(client) -> None:
    record_heartbeat(worker="w1", task_id="t1", published_at=None)
    hold_beat_lock("beat-host:1:abc", timedelta(seconds=30))
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    # The machine's own Redis keeps no append-only file: as a broker it is unsafe, said so.
    unsafe = broker_problems(app)
    assert body["status"] == ("degraded" if unsafe else "healthy")
    assert body["degraded"] == unsafe
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["heartbeat"]["worker"] == "w1"
    assert body["checks"]["beat"]["holder"] == "beat-host:1:abc"
    assert 25 < body["checks"]["beat"]["expires_in_seconds"] <= 30


@pytest.mark.django_db
def test_healthz_is_unhealthy_when_no_beat_leads(client) -> None:
    record_heartbeat(worker="w1", task_id="t1", published_at=None)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["beat"] == {
        "ok": False,
        "error": "no beat holds the beat lock",
    }
    hold_beat_lock("beat-host:1:abc", timedelta(seconds=30))
    BeatLock.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get("/healthz").status_code == 503


@pytest.mark.django_db
def test_healthz_shows_backlogs_dead_letters_and_claims_past_their_lease(client) -> None:
    from intelliwiz_config.celery import app

    with app.connection_for_write() as conn:
        app.control.purge(connection=conn)
    task_every_min.apply_async(headers={"published_at": time.time() - 42})
    DeadLetter.objects.create(task_name="send_ticket_email", task_id="t1", exception_type="x")
    IdempotencyKey.objects.create(
        key="ticket:1:v1",
        owner="dead-run",
        claimed_at=timezone.now() - timedelta(minutes=5),
        lease_expires_at=timezone.now() - timedelta(minutes=3),
    )
    body = client.get("/healthz").json()
    assert body["queues"]["default"]["waiting"] == 1
    assert 42 <= body["queues"]["default"]["oldest_age_seconds"] < 60
    assert body["queues"]["email"] == {"waiting": 0, "oldest_age_seconds": None}
    assert body["tasks"]["dead_letters_last_hour"] == 1
    assert body["tasks"]["claims_past_lease"] == 1
    assert body["tasks"]["oldest_claim_past_lease"]["key"] == "ticket:1:v1"
    with app.connection_for_write() as conn:
        app.control.purge(connection=conn)


@pytest.mark.django_db
def test_healthz_is_unhealthy_without_a_heartbeat_or_with_a_stale_one(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["heartbeat"] == {
        "ok": False,
        "error": "no heartbeat recorded yet",
    }

    WorkerHeartbeat.objects.create(
        worker="w1", ran_at=timezone.now() - timedelta(minutes=3, seconds=5)
    )
    response = client.get("/healthz")
    assert response.status_code == 503
    heartbeat = response.json()["checks"]["heartbeat"]
    assert heartbeat["ok"] is False and heartbeat["age_seconds"] >= 185


@pytest.mark.django_db
def test_healthz_reports_a_broker_that_does_not_answer(client, monkeypatch) -> None:
    from intelliwiz_config.celery import app

    record_heartbeat(worker="w1", task_id="t1", published_at=None)
    # Nothing listens on the discard port.
    unreachable = "redis://127.0.0.1:9/0"
    monkeypatch.setattr(app.conf, "broker_write_url", unreachable)
    monkeypatch.setitem(app.conf, "broker_transport", transport_for(unreachable))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


@pytest.mark.django_db
def test_one_beat_holds_the_lock_and_another_takes_over_when_it_expires() -> None:
    lease = timedelta(seconds=30)
    assert hold_beat_lock("beat-a", lease) is True
    assert hold_beat_lock("beat-b", lease) is False
    assert hold_beat_lock("beat-a", lease) is True  # renewal
    BeatLock.objects.update(expires_at=timezone.now() - timedelta(seconds=1))  # a dies
    assert hold_beat_lock("beat-b", lease) is True
    assert hold_beat_lock("beat-a", lease) is False
    release_beat_lock("beat-b")
    assert hold_beat_lock("beat-a", lease) is True


@pytest.mark.django_db(transaction=True)  # the scheduler commits and closes connections
def test_two_beats_due_for_the_same_period_send_it_once(monkeypatch) -> None:
    from intelliwiz_config.celery import app

    sent: list[tuple[str, str]] = []

    def record_send(self, entry, producer=None, advance=True, **options) -> None:
        sent.append((self.holder, entry.name))

    monkeypatch.setattr(LeaderDatabaseScheduler, "apply_async", record_send)
    PeriodicTask.objects.filter(name="worker-heartbeat-every-minute").update(
        last_run_at=timezone.now() - timedelta(minutes=2)
    )
    beats = [LeaderDatabaseScheduler(app=app, lazy=True) for _ in range(2)]
    entries = [beat.schedule["worker-heartbeat-every-minute"] for beat in beats]
    for beat, entry in zip(beats, entries, strict=True):  # both read the row before either sends
        assert beat.is_due(entry).is_due
    for beat, entry in zip(beats, entries, strict=True):
        beat.reserve(entry)
        beat.apply_entry(entry)
    assert sent == [(beats[0].holder, "worker-heartbeat-every-minute")]
    row = PeriodicTask.objects.get(name="worker-heartbeat-every-minute")
    assert timezone.now() - row.last_run_at < timedelta(seconds=5)
    for beat in beats:
        beat.close()


@pytest.mark.django_db
def test_a_worker_whose_clock_is_off_the_databases_says_so(client, monkeypatch, caplog) -> None:
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 300)  # this host runs 5 min ahead
    beat = record_heartbeat(worker="skewed@host", task_id="t1", published_at=None)
    monkeypatch.undo()
    assert 299 < beat.clock_offset_seconds < 301
    assert "clock_skew worker=skewed@host offset_s=300" in caplog.text
    # The heartbeat's own time is the database's: the worker counts as fresh, not 5 min away.
    assert abs((timezone.now() - beat.ran_at).total_seconds()) < 5
    hold_beat_lock("beat-host:1:abc", timedelta(seconds=30))
    body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert "worker skewed@host's clock is 300 s ahead of the database's" in body["degraded"]
    assert body["workers"]["skewed@host"]["clock_offset_seconds"] == pytest.approx(300, abs=1)


@pytest.mark.django_db
def test_an_outage_of_what_workers_call_is_degraded_not_healthy(client, clean_cache) -> None:
    from apps.core.mail import TransientMailError
    from apps.core.outages import record_retry

    record_heartbeat(worker="w1", task_id="t1", published_at=None)
    hold_beat_lock("beat-host:1:abc", timedelta(seconds=30))
    breaker = app.tasks["publish_mqtt"].circuit_breaker()
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()
    record_retry("send_ticket_email", TransientMailError("421 try later"))
    response = client.get("/healthz")
    assert response.status_code == 200  # the system works: mail and publishes wait and retry
    body = response.json()
    assert body["status"] == "degraded"
    assert "the circuit of mqtt-broker is open" in body["degraded"]
    assert "send_ticket_email is retrying (1 retries, last TransientMailError)" in body["degraded"]
    assert body["services"]["circuits"]["mqtt-broker"] == "open"
