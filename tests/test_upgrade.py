"""A rolling upgrade from the upstream code loses nothing: old queues, old names, old forms.

Upstream's producers (its views, its beat, its MQTT client, AsyncExternalAPIService) keep
sending while the deployment's workers are replaced, and messages they sent before are still on
the broker: on Celery's default queue ``celery`` (upstream loaded no routes), on its MQTT
client's ``django5_queue``, and on the queues its beat entries and explicit ``queue=`` named.
The replay below puts such messages on a broker of its own (the embedded folder broker, or
Redis / RabbitMQ from TEST_REDIS_URL / TEST_RABBITMQ_URL), starts a worker of the deployment,
keeps sending, and holds every message to its outcome: it runs (its side effect checked) or is
a dead letter with its reason, never dropped or misread, with one ``task_legacy_call`` line for
each old form or name.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
from celery import Celery
from django.conf import settings
from django.utils import timezone
from kombu.exceptions import ChannelError

from apps.activity.models import Jobneed
from apps.core.broker import transport_for
from apps.core.models import DeadLetter
from apps.reports.models import PdfJob, ReportHistory
from apps.y_helpdesk.models import Ticket
from intelliwiz_config.celery import (
    QUEUE_NAMES,
    RETIRED_UPSTREAM_TASKS,
    TASK_QUEUES,
    UPSTREAM_QUEUE_NAMES,
    UPSTREAM_TASK_NAMES,
    app,
)
from tests import factories
from tests.conftest import ManagedProcess, SmtpSink, process_env, service_url, worker_argv
from tests.support.waiting import patience
from tests.test_call_forms import UPSTREAM_FORMDATA, mails_to, nothing_enqueued

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

REFUSED = "apps.core.tasks.legacy.LegacyCallRefused"
UNRUNNABLE = "apps.core.tasks.consumer.UnrunnableMessage"


# --- Names ------------------------------------------------------------------------------------


def test_upstream_names_are_aliases_never_listed_and_routed_as_their_tasks() -> None:
    listed = set(app.tasks)
    for old, current in UPSTREAM_TASK_NAMES.items():
        assert app.tasks[old] is app.tasks[current]
        assert old not in listed  # the registered names stay the registry's
        assert app.amqp.router.route({}, old)["queue"].name == TASK_QUEUES[current]
    assert not set(RETIRED_UPSTREAM_TASKS) & listed


# --- A deployment on a broker of its own ----------------------------------------------------


class Partner(BaseHTTPRequestHandler):
    calls: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        Partner.calls.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')


class Upstream:
    """Upstream's app as its producers had it: no routes, so Celery's default queue `celery`.
    It sends on the deployment's connection (a Celery app would take CELERY_BROKER_URL, the
    suite's broker, over its own broker_url)."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.app = Celery("intelliwiz_config", set_as_current=False)
        self.app.conf.task_serializer = "json"

    def send_task(self, name: str, args: tuple = (), kwargs: Any = None, **options: Any) -> Any:
        with self.deployment.connection() as connection:
            return self.app.send_task(
                name, args=args, kwargs=kwargs, connection=connection, **options
            )


@dataclass
class Deployment:
    """A broker of the test's own, the deployment's workers on it and an upstream producer."""

    broker_url: str
    transport_options: dict[str, Any]
    env: dict[str, str]
    logs: Path
    workers: list[ManagedProcess] = field(default_factory=list)

    def connection(self) -> Any:
        return app.connection_for_write(
            self.broker_url,
            transport=transport_for(self.broker_url),
            transport_options=self.transport_options,
        )

    def upstream(self) -> Upstream:
        return Upstream(self)

    def start_worker(self, *queues: str, **env: str) -> ManagedProcess:
        name = f"upgrade{len(self.workers)}-{os.getpid()}@{socket.gethostname()}"
        argv = worker_argv(name, 1)
        if queues:
            argv[argv.index("-Q") + 1] = ",".join(queues)
        worker = ManagedProcess(argv, {**self.env, **env}, self.logs / f"{name}.log", name)
        self.workers.append(worker)
        worker.wait_for_log("ready.")
        return worker

    def waiting(self, queue: str) -> int:
        """Messages waiting on `queue` (0 for a queue never declared on this broker)."""
        with self.connection() as connection, connection.channel() as channel:
            try:
                return int(channel.queue_declare(queue, passive=True)[1])
            except (ChannelError, *connection.channel_errors):
                return 0

    def purge(self) -> None:
        for queue in (*QUEUE_NAMES, *UPSTREAM_QUEUE_NAMES):
            if self.waiting(queue):
                with self.connection() as connection, connection.channel() as channel:
                    channel.queue_purge(queue)


@pytest.fixture(params=["folder", "redis", "rabbitmq"])
def deployment(
    request, tmp_path, smtp_server: SmtpSink, worker_mqtt_broker, django_db_blocker
) -> Iterator[Deployment]:
    options: dict[str, Any] = {}
    if request.param == "folder":
        broker_url, var_dir = "filesystem://", tmp_path / "var"
        folders = {name: var_dir / "broker" / name for name in ("queue", "inflight", "control")}
        for folder in folders.values():
            folder.mkdir(parents=True)
        options = {
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "inflight_folder": str(folders["inflight"]),
            "control_folder": str(folders["control"]),
        }
    else:
        broker_url = service_url({"redis": "TEST_REDIS_URL", "rabbitmq": "TEST_RABBITMQ_URL"}[
            request.param
        ])  # fmt: skip
        var_dir = tmp_path / "var"
        if broker_url == settings.CELERY_BROKER_URL:
            pytest.fail(
                f"{broker_url} is also the suite's broker, whose worker would take the replay's "
                "messages: give the TEST_ variable a broker (Redis db, RabbitMQ vhost) of its own"
            )
    with django_db_blocker.unblock():
        env = process_env(
            CELERY_BROKER_URL=broker_url,
            INTELLIWIZ_VAR_DIR=str(var_dir),
            MEDIA_ROOT=str(settings.MEDIA_ROOT),
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(smtp_server.port),
            MQTT_URL=worker_mqtt_broker.url,
            PARTNER_API_ALLOWED_HOSTS="localhost",
            PARTNER_API_PRIVATE_HOSTS="localhost",
        )
    logs = tmp_path / "logs"
    logs.mkdir()
    deployed = Deployment(broker_url, options, env, logs)
    deployed.purge()
    try:
        yield deployed
    finally:
        for worker in deployed.workers:
            worker.stop()
        deployed.purge()


# --- The replay -----------------------------------------------------------------------------


@dataclass
class Sent:
    """One upstream message and what must become of it."""

    id: str
    name: str
    outcome: str  # "runs", "refused" (an old form, dead letter) or "unknown" (dead letter)
    reason: str = ""  # in the dead letter's error
    legacy: bool = True  # an old form or name: exactly one task_legacy_call line
    check: Callable[[], None] | None = None  # the side effect of a run


def send(
    producer: Upstream,
    name: str,
    outcome: str,
    *args: Any,
    queue: str | None = None,
    reason: str = "",
    legacy: bool = True,
    check: Callable[[], None] | None = None,
    **kwargs: Any,
) -> Sent:
    options = {"queue": queue} if queue else {}
    result = producer.send_task(name, args=args, kwargs=kwargs, **options)
    return Sent(result.id, name, outcome, reason, legacy, check)


def settled(worker: ManagedProcess, sent: Sent) -> bool:
    if DeadLetter.objects.filter(task_id=sent.id).exists():
        return True
    return f" id={sent.id} outcome=" in worker.log()


def legacy_lines(worker: ManagedProcess, task_id: str) -> list[str]:
    return [
        line
        for line in worker.log().splitlines()
        if "task_legacy_call " in line and f" id={task_id} " in line
    ]


@pytest.fixture
def world(mail_sink: SmtpSink) -> Iterator[dict[str, Any]]:
    _, site = factories.client_and_site("Asia/Kolkata")
    in_charge = factories.person(site, designation="SITEINCHARGE")
    person = factories.person(site)
    now = timezone.now()
    with nothing_enqueued():
        tickets = [
            Ticket.objects.create(description=f"Leak {n}", site=site, assigned_people=person)
            for n in range(3)
        ]
        job = factories.job(site, person)
    report = Path(settings.MEDIA_ROOT) / "reports" / f"upgrade-{time.time_ns()}" / "Tasks.pdf"
    report.parent.mkdir(parents=True)
    report.write_bytes(b"%PDF-1.4 upstream")
    for _ in range(2):
        PdfJob.objects.create(
            title="Old", document=[{"heading": "A"}], requested_by=person,
            expires_at=now - timedelta(hours=1),
        )  # fmt: skip
    pending = PdfJob.objects.create(
        title="Pending", document=[{"heading": "A", "paragraphs": ["B"]}], requested_by=person,
        expires_at=now + timedelta(hours=1),
    )  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), Partner)
    Thread(target=server.serve_forever, daemon=True).start()
    Partner.calls.clear()
    yield {
        "site": site,
        "in_charge": in_charge,
        "person": person,
        "tickets": tickets,
        "job": job,
        "expired": factories.jobneed(site, people=person),
        "alerting": factories.jobneed(site, people=person, status="COMPLETED", has_alerts=True),
        "report": report,
        "pending_pdf": pending,
        "partner": f"http://localhost:{server.server_port}/hook",
        "mail": mail_sink,
    }
    server.shutdown()
    report.unlink(missing_ok=True)


def ticket_mailed(sink: SmtpSink, ticket: Ticket) -> Callable[[], None]:
    def check() -> None:
        mails = mails_to(sink, ticket.assigned_people.email)
        assert any(f"Ticket #{ticket.number} is " in m["Subject"] for m in mails)

    return check


def already_waiting(producer: Upstream, w: dict[str, Any]) -> list[Sent]:
    """What upstream's producers left on the broker before the deployment's workers started."""
    sink, person, site = w["mail"], w["person"], w["site"]
    records = [json.dumps({"uuid": "5f0e6c1e-0000-4000-8000-000000000001", "answer": "7"})]

    def closed() -> None:
        w["expired"].refresh_from_db()
        assert w["expired"].status == "AUTOCLOSED"

    def planned() -> None:
        assert Jobneed.objects.filter(job=w["job"]).exists()

    def alerted() -> None:
        subjects = [m["Subject"] for m in mails_to(sink, w["in_charge"].email)]
        assert any(s.startswith("[READINGS ALERT]") for s in subjects), subjects

    def expired_pdf_jobs_gone() -> None:
        assert not PdfJob.objects.filter(expires_at__lt=timezone.now()).exists()

    def pdf_rendered() -> None:
        w["pending_pdf"].refresh_from_db()
        assert w["pending_pdf"].status == "DONE"

    def mailed_for_the_person() -> None:
        (mail,) = mails_to(sink, "ops@facility.test")
        assert mail["From"] == settings.DEFAULT_FROM_EMAIL and mail["Reply-To"] == person.email

    def history_under_one_code() -> None:
        assert ReportHistory.objects.get(person=person).report_type == "task_summary"

    partner = w["partner"]
    return [
        # Upstream's views and services: plain .delay(), so queue `celery`.
        send(producer, "send_ticket_email", "runs", id=w["tickets"][0].pk,
             check=ticket_mailed(sink, w["tickets"][0])),
        send(producer, "send_ticket_email", "runs", None, w["tickets"][1].pk,
             check=ticket_mailed(sink, w["tickets"][1])),
        send(producer, "alert_sendmail", "runs", w["alerting"].pk, "observation", atts=True,
             check=alerted),
        send(producer, "auto_close_jobs", "runs", jobneedid=w["expired"].pk, check=closed),
        send(producer, "create_ppm_job", "runs", jobid=w["job"].pk, check=planned),
        send(producer, "create_report_history", "runs", UPSTREAM_FORMDATA, person.pk, site.pk,
             [False, None, None], check=history_under_one_code),
        send(producer, "send_generated_report_onfly_email", "runs", str(w["report"]),
             person.email, ["ops@facility.test"], [], 330, check=mailed_for_the_person),
        send(producer, "insert_json_records_async", "refused", records, "jobneeddetails",
             reason="it names no person"),
        send(producer, "insert_json_records_async", "refused", records, "ticket", person.pk,
             reason="createTicket"),
        # publish_mqtt's decorator named its queue.
        send(producer, "publish_mqtt", "refused", "graphql/mutation/status", '{"status": 1}',
             queue="external_api", reason="outside MQTT_ALLOWED_TOPIC_PREFIXES"),
        send(producer, "publish_mqtt", "refused", "redmine_to_noc", '{"operation": "CREATE"}',
             queue="external_api", reason="change capture is published after commit"),
        send(producer, "send_mismatch_notification", "refused", "count mismatch",
             reason="a NOC alert needs an object"),
        # Upstream's auto-generated names.
        send(producer, "background_tasks.tasks.cleanup_expired_pdf_tasks", "runs",
             check=expired_pdf_jobs_gone),
        send(producer, "background_tasks.maintenance_tasks.cleanup_expired_pdf_tasks", "runs",
             check=expired_pdf_jobs_gone),
        send(producer, "background_tasks.tasks.generate_pdf_async", "runs",
             str(w["pending_pdf"].uuid), check=pdf_rendered),
        send(producer, "background_tasks.tasks.generate_pdf_async", "refused", "a1b2",
             "reports/pdf/base.html", {"title": "x"}, person.pk,
             reason="a template the caller names"),
        send(producer, "background_tasks.integration_tasks.external_api_call_async", "runs",
             partner, "GET"),
        # AsyncExternalAPIService named its queues itself.
        send(producer, "background_tasks.tasks.external_api_call_async", "runs", partner,
             queue="high_priority"),
        send(producer, "background_tasks.tasks.external_api_call_async", "runs", partner,
             queue="default"),
        # Upstream's MQTT client.
        send(producer, "process_graphql_mutation_async", "refused",
             json.dumps({"mutation": "mutation { x }", "variables": {}}), queue="django5_queue",
             reason="an unauthenticated mutation document"),
        # Upstream's beat: its entries' queues; create_job never ran anywhere.
        send(producer, "create_job", "unknown", queue="high_priority",
             reason="upstream task that is gone"),
        send(producer, "create_ppm_job", "runs", queue="high_priority", legacy=False),
        send(producer, "auto_close_jobs", "runs", queue="critical", legacy=False),
        send(producer, "ticket_escalation", "runs", queue="critical", legacy=False),
        send(producer, "send_reminder_email", "runs", queue="email", legacy=False),
        send(producer, "send_generated_report_on_mail", "runs", queue="email", legacy=False),
        # Anything else is kept with the reason.
        send(producer, "background_tasks.core_tasks_refactored.auto_close_jobs", "unknown",
             reason="no task is registered", legacy=False),
    ]  # fmt: skip


def still_sending(producer: Upstream, w: dict[str, Any]) -> list[Sent]:
    """What upstream's producers send while the deployment's workers run."""
    sink = w["mail"]
    return [
        send(producer, "send_ticket_email", "runs", None, w["tickets"][2].pk,
             check=ticket_mailed(sink, w["tickets"][2])),
        send(producer, "background_tasks.tasks.cleanup_expired_pdf_tasks", "runs"),
        send(producer, "background_tasks.integration_tasks.external_api_call_async", "runs",
             w["partner"]),
        send(producer, "create_job", "unknown", reason="upstream task that is gone"),
        send(producer, "process_graphql_download_async", "refused",
             json.dumps({"query": "{ mySite { name } }"}), queue="django5_queue",
             reason="an unauthenticated download document"),
    ]  # fmt: skip


def test_a_replay_of_upstreams_producers_mid_upgrade_runs_or_keeps_every_message(
    deployment: Deployment, world: dict[str, Any]
) -> None:
    producer = deployment.upstream()
    sent = already_waiting(producer, world)
    assert deployment.waiting("celery") > 0 and deployment.waiting("django5_queue") == 1
    worker = deployment.start_worker()  # every queue, as ./dev up's worker
    sent += still_sending(producer, world)

    deadline = time.monotonic() + patience(120)
    while pending := [s for s in sent if not settled(worker, s)]:
        assert time.monotonic() < deadline, (
            f"dropped: {[(s.name, s.id) for s in pending]}\n{worker.log()[-6000:]}"
        )
        time.sleep(0.5)

    for message in sent:
        letter = DeadLetter.objects.filter(task_id=message.id).first()
        where = f"{message.name} {message.id}"
        if message.outcome == "runs":
            assert letter is None, f"{where}: {letter and letter.error}"
            assert f" id={message.id} outcome=success" in worker.log(), where
            if message.check is not None:
                message.check()
        else:
            assert letter is not None, where
            expected = REFUSED if message.outcome == "refused" else UNRUNNABLE
            assert letter.exception_type == expected, (where, letter.exception_type)
            assert message.reason in letter.error, (where, letter.error)
        lines = legacy_lines(worker, message.id)
        assert len(lines) == (1 if message.legacy else 0), (where, lines)
    assert len(Partner.calls) == 4
    for queue in (*QUEUE_NAMES, *UPSTREAM_QUEUE_NAMES):
        assert deployment.waiting(queue) == 0, queue


@pytest.mark.parametrize("deployment", ["folder"], indirect=True)  # the switch is broker-blind
def test_the_operator_turns_the_drain_off_and_only_the_default_queues_worker_drains(
    deployment: Deployment,
) -> None:
    producer = deployment.upstream()
    left = producer.send_task("task_every_min")
    others = [
        deployment.start_worker(*[q for q in QUEUE_NAMES if q != "default"]),
        deployment.start_worker(*QUEUE_NAMES, DRAIN_UPSTREAM_QUEUES="false"),
    ]
    time.sleep(3)
    assert deployment.waiting("celery") == 1
    for worker in others:
        worker.stop()
    drainer = deployment.start_worker("maintenance", "default")
    drainer.wait_for_log(f"id={left.id} outcome=success")
    assert deployment.waiting("celery") == 0


# --- MIGRATING.md lists every difference ---------------------------------------------------

MIGRATING = (Path(settings.BASE_DIR) / "MIGRATING.md").read_text()
# Upstream's beat entries (upstream-tasks.md §2.6).
UPSTREAM_BEAT_ENTRIES = (
    "ppm_schedule_at_minute_3_past_hour_3_and_16",
    "reminder_emails_at_minute_10_past_every_8th_hour",
    "auto_close_at_every_30_minute",
    "ticket_escalation_every_30min",
    "create_job_at_minute_27_past_every_8th_hour",
    "move_media_to_cloud_storage",
    "send_report_generated_on_mail",
    "create_reports_scheduled",
)


def section(title: str) -> str:
    start = MIGRATING.index(f"\n## {title}\n")
    end = MIGRATING.find("\n## ", start + 1)
    return MIGRATING[start : end if end > 0 else None]


def row(text: str, key: str) -> str:
    """The table row of `key`: the one naming it first (or, for beat entries, in the third column
    where the entry is new)."""
    (found,) = [
        line
        for line in text.splitlines()
        if line.startswith(f"| `{key}` |") or f"| `{key}`:" in line or f"**added** `{key}`" in line
    ]
    return found


def test_migrating_lists_the_queues_and_names() -> None:
    queues, names = section("Queues"), section("Task names")
    assert "`DRAIN_UPSTREAM_QUEUES`" in queues
    for queue in UPSTREAM_QUEUE_NAMES:
        assert f"`{queue}`" in queues
    for old, current in UPSTREAM_TASK_NAMES.items():
        assert f"`{current}`" in row(names, old)
    for old, (_, use) in RETIRED_UPSTREAM_TASKS.items():
        assert f"| `{old}` |" in names and use.split(" ")[0] in row(names, old)


def test_migrating_lists_every_beat_entry_with_its_times() -> None:
    from intelliwiz_config.celery import BEAT_SCHEDULE

    beat = section("Beat entries and times")
    for entry in UPSTREAM_BEAT_ENTRIES:
        assert f"`{entry}`" in beat, entry
    for key, entry in BEAT_SCHEDULE.items():
        line = row(beat, key)
        assert f"expires {entry['options']['expires']}" in line, key
    for key in ("move-media-to-cloud-weekly", "create-scheduled-reports"):
        task = app.tasks[BEAT_SCHEDULE[key]["task"]]
        line = row(beat, key)
        assert f"soft {task.soft_time_limit} s, hard {task.time_limit} s" in line, key
    assert "*/10" in str(BEAT_SCHEDULE["send-due-reminders-every-10-min"]["schedule"])
    assert "*/15" in str(BEAT_SCHEDULE["send-generated-reports-every-15-min"]["schedule"])
    added = [line for line in beat.splitlines() if "**added**" in line]
    assert len(added) == len(BEAT_SCHEDULE) - (len(UPSTREAM_BEAT_ENTRIES) - 1)


def test_migrating_lists_every_tasks_return_value_and_the_report_codes() -> None:
    from apps.integrations.bulk_sync import UPSTREAM_TABLES
    from apps.reports.builders import UPSTREAM_REPORT_CODES

    returns = section("Return values")
    permit_mails = {name for name in TASK_QUEUES if "notification_for_" in name} - {
        "send_email_notification_for_wp"
    }
    for name in set(TASK_QUEUES) - permit_mails:
        assert f"`{name}`" in returns, name
    codes = section("Report codes")
    for upstream, code in UPSTREAM_REPORT_CODES.items():
        assert f"| `{upstream}` | `{code}` |" in codes
    for table in UPSTREAM_TABLES:
        assert f"`{table}`" in section("Per task"), table
