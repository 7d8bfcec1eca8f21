"""Producer and inspector for the fault suite, run as ``python -m tests.faults.driver`` inside a
stack's environment (its own database, broker and cache), so the suite's pytest process never
mixes settings. Each command prints one JSON line.

    reset                       empty the tables the scenarios count and the broker's queues
    seed N                      N tickets, each mailed to one assignee; prints their ids
    enqueue-ticket-mails ID...  send_ticket_email(id, 1) for each (--time-limit S: per call)
    enqueue-publishes N         publish_mqtt to intelliwiz/faults/<i> for i < N
    beat-every S                only the heartbeat entry, every S seconds (beat scenarios)
    create-user LOGIN PASSWORD  a staff person who can sign in
    enqueue-cache-warming N     cache_warming_scheduled N times
    report                      dead letters, claims in progress, task results by state,
                                workers' heartbeats with their clock offsets
    health                      the /healthz report
    task-states ID...           the result state of each task id
    requeue-dead-letters        re-queue every dead letter through the admin's function
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "intelliwiz_config.settings")

import django

django.setup()

from django.db.models import Count  # noqa: E402
from django_celery_beat.models import IntervalSchedule, PeriodicTask  # noqa: E402
from django_celery_results.models import TaskResult  # noqa: E402

from apps.core.dead_letters import requeue  # noqa: E402
from apps.core.models import BeatLock, DeadLetter, IdempotencyKey, WorkerHeartbeat  # noqa: E402
from apps.core.services import health_report  # noqa: E402
from apps.onboarding.models import BusinessUnit  # noqa: E402
from apps.peoples.models import People  # noqa: E402
from apps.reports.models import PdfJob  # noqa: E402
from apps.y_helpdesk.models import Ticket, TicketEvent  # noqa: E402
from background_tasks import (  # noqa: E402
    cache_warming_scheduled,
    publish_mqtt,
    send_ticket_email,
)
from intelliwiz_config.celery import app  # noqa: E402
from tests import factories  # noqa: E402


def reset() -> dict[str, Any]:
    with app.connection_for_write() as conn:
        purged = app.control.purge(connection=conn)
    PdfJob.objects.all().delete()
    TicketEvent.objects.all().delete()
    Ticket.objects.all().delete()
    for model in (IdempotencyKey, DeadLetter, TaskResult, WorkerHeartbeat, BeatLock):
        model.objects.all().delete()
    return {"purged": purged}


def seed(count: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]  # each call its own client: the driver's processes share no counter
    client = BusinessUnit.objects.create(code=f"FC-{run}", name=f"Client {run}", kind="CLIENT")
    site = BusinessUnit.objects.create(
        code=f"FS-{run}", name=f"Site {run}", kind="SITE", parent=client
    )
    assignee = People.objects.create_user(
        f"assignee-{run}", None, email="assignee@facility.test", client=client, site=site
    )
    category = factories.lookup("TICKETCATEGORY", "ELECTRICAL")
    tickets = Ticket.objects.bulk_create(
        [
            Ticket(
                description=f"Fault drill {n}",
                site=site,
                client=client,
                category=category,
                assigned_people=assignee,
            )
            for n in range(count)
        ]
    )
    return {"tickets": [ticket.pk for ticket in tickets], "site": site.name}


def enqueue_ticket_mails(ids: list[int], time_limit: int | None) -> dict[str, Any]:
    options = {"time_limit": time_limit, "soft_time_limit": time_limit - 2} if time_limit else {}
    with app.producer_or_acquire() as producer:
        task_ids = [
            send_ticket_email.apply_async((pk, 1), producer=producer, **options).id for pk in ids
        ]
    return {"task_ids": task_ids}


def enqueue_publishes(count: int) -> dict[str, Any]:
    with app.producer_or_acquire() as producer:
        task_ids = [
            publish_mqtt.apply_async((f"intelliwiz/faults/{n}", {"n": n}), producer=producer).id
            for n in range(count)
        ]
    return {"task_ids": task_ids}


def beat_every(seconds: int) -> dict[str, Any]:
    entry = PeriodicTask.objects.get(name="worker-heartbeat-every-minute")
    PeriodicTask.objects.exclude(pk=entry.pk).update(enabled=False)
    entry.interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
    entry.crontab = None
    entry.last_run_at = None
    entry.expire_seconds = None
    entry.save()
    return {"entry": entry.name}


def create_user(loginid: str, password: str) -> dict[str, Any]:
    person = People.objects.create_user(
        loginid, password, is_staff=True, email=f"{loginid}@facility.test"
    )
    return {"id": person.pk}


def report() -> dict[str, Any]:
    return {
        "dead_letters": list(
            DeadLetter.objects.values("task_name", "task_id", "exception_type", "error")
        ),
        "claims_in_progress": IdempotencyKey.objects.filter(
            status=IdempotencyKey.Status.IN_PROGRESS
        ).count(),
        "results": dict(
            TaskResult.objects.values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        ),
        "pdf_jobs": dict(
            PdfJob.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n")
        ),
        "heartbeat_runs": sum(WorkerHeartbeat.objects.values_list("beats", flat=True)),
        "workers": dict(WorkerHeartbeat.objects.values_list("worker", "clock_offset_seconds")),
    }


def enqueue_cache_warming(count: int) -> dict[str, Any]:
    with app.producer_or_acquire() as producer:
        return {
            "task_ids": [
                # Results asked for: the scenario reads their states (task-states).
                cache_warming_scheduled.apply_async(producer=producer, ignore_result=False).id
                for _ in range(count)
            ]
        }


def task_states(ids: list[str]) -> dict[str, Any]:
    stored = dict(TaskResult.objects.filter(task_id__in=ids).values_list("task_id", "status"))
    return {"states": [stored.get(task_id, "PENDING") for task_id in ids]}


def requeue_dead_letters() -> dict[str, Any]:
    return {"task_ids": [requeue(letter) for letter in DeadLetter.objects.all()]}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="tests.faults.driver")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("reset")
    commands.add_parser("seed").add_argument("count", type=int)
    mails = commands.add_parser("enqueue-ticket-mails")
    mails.add_argument("ids", type=int, nargs="*")
    mails.add_argument("--time-limit", type=int)
    commands.add_parser("enqueue-publishes").add_argument("count", type=int)
    commands.add_parser("beat-every").add_argument("seconds", type=int)
    user = commands.add_parser("create-user")
    user.add_argument("loginid")
    user.add_argument("password")
    commands.add_parser("report")
    commands.add_parser("health")
    commands.add_parser("enqueue-cache-warming").add_argument("count", type=int)
    commands.add_parser("task-states").add_argument("ids", nargs="*")
    commands.add_parser("requeue-dead-letters")
    args = parser.parse_args(argv)
    if args.command == "enqueue-ticket-mails" and not args.ids:
        args.ids = [int(n) for n in sys.stdin.read().split()]
    outcome = {
        "reset": reset,
        "seed": lambda: seed(args.count),
        "enqueue-ticket-mails": lambda: enqueue_ticket_mails(args.ids, args.time_limit),
        "enqueue-publishes": lambda: enqueue_publishes(args.count),
        "beat-every": lambda: beat_every(args.seconds),
        "create-user": lambda: create_user(args.loginid, args.password),
        "report": report,
        "health": health_report,
        "enqueue-cache-warming": lambda: enqueue_cache_warming(args.count),
        "task-states": lambda: task_states(args.ids),
        "requeue-dead-letters": requeue_dead_letters,
    }[args.command]()
    print(json.dumps(outcome, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
