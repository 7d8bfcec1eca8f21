"""Set-based auto-close and ticket escalation against a naive per-row baseline, on one data set.

Run from the repository root (see bench/README.md); the run empties the database it uses:

    INTELLIWIZ_VAR_DIR=/tmp/bench-ops .venv/bin/python bench/operations.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_ops .venv/bin/python bench/operations.py

It migrates, seeds expired Jobneeds and open tickets, times the real services
(`autoclose`, `escalate_due_tickets`), seeds the same rows again, times the per-row baseline
and prints one `name  value` line per figure. Mail goes to Django's locmem backend.
"""

# ruff: noqa: E402 (the app modules can only be imported after django.setup())
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import django
import psycopg
from psycopg import sql

# Run as a script, only bench/ would be on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "intelliwiz_config.settings")
os.environ["DJANGO_DEBUG"] = "false"  # no debug cursor: figures of the code as deployed
django.setup()

from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.db.models import F, Q
from django.utils import timezone

import apps.y_helpdesk.autoclose as autoclose_module
import apps.y_helpdesk.services as helpdesk_services
from apps.activity.models import TOURS, Identifier, Jobneed, JobneedStatus
from apps.activity.results import AutocloseResult
from apps.activity.state_machine import allowed
from apps.core.mail import deliver
from apps.onboarding.models import BusinessUnit, TypeAssist
from apps.peoples.models import People
from apps.y_helpdesk.autoclose import (
    AUTOCLOSE_IDENTIFIERS,
    LOOKBACK,
    NOTIFY,
    RAISE_TICKET,
    autoclose,
)
from apps.y_helpdesk.models import OPEN_TICKET_STATUSES, EscalationMatrix, Ticket, TicketEvent
from apps.y_helpdesk.services import EscalationResult, escalate_due_tickets
from bench.measure import load_average

BATCH_SIZE = 2000
SITE_TIME_ZONES = ("Asia/Kolkata", "Asia/Dubai", "Europe/London", "America/New_York")
HELPDESK_CATEGORY = "ELECTRICAL"
TOUR_EVERY = 10  # every 10th Jobneed is an INTERNALTOUR, the rest are TASKs
TICKET_AGE = timedelta(hours=2)
RULES = ((1, 60), (2, 600))  # (level, minutes): only level 1 is due for 2-hour-old tickets

Report = TypeVar("Report", AutocloseResult, EscalationResult)


class BenchError(Exception):
    """A failure that ends the run with a message instead of a traceback."""


@dataclass
class Measurement:
    """What one measured call did: wall time, SQL statements, mails, time inside deliver()."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's (the database's and the sink's are apart)
    queries: int = 0
    mails: int = 0
    mail_seconds: float = 0.0
    error: str = ""


@dataclass
class World:
    client: BusinessUnit
    sites: list[BusinessUnit]
    worker: People
    categories: dict[str, TypeAssist]


@dataclass
class BaselineCounts:
    rows: int = 0  # rows looked at
    changed: int = 0  # Jobneeds closed, tickets escalated
    tickets: int = 0  # tickets raised


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobneeds", type=int, default=100_000, help="expired Jobneeds seeded")
    parser.add_argument("--tickets", type=int, default=50_000, help="open tickets seeded")
    parser.add_argument("--skip-baseline", action="store_true", help="time the services only")
    parser.add_argument(
        "--baseline-sample",
        type=int,
        help="rows per task the baseline processes; its figures are extrapolated linearly "
        "to all rows (default: all rows)",
    )
    args = parser.parse_args()
    if min(args.jobneeds, args.tickets) < 1:
        parser.error("--jobneeds and --tickets must be at least 1")
    if args.baseline_sample is not None and args.baseline_sample < 1:
        parser.error("--baseline-sample must be at least 1")
    return args


def line(name: str, value: object) -> None:
    print(f"{name:<50} {value}", flush=True)


# --- Database --------------------------------------------------------------------------------


def ensure_database() -> None:
    """Refuse a database that is not a bench one (the run empties it); create a missing
    PostgreSQL database through the server's `postgres` database."""
    db = settings.DATABASES["default"]
    name = str(db["NAME"])
    if "bench" not in name:
        raise BenchError(
            f"refusing to empty database {name!r}: its name must contain 'bench' "
            "(set INTELLIWIZ_VAR_DIR=/tmp/bench-ops or a DATABASE_URL naming a bench database)"
        )
    if connection.vendor != "postgresql":
        return
    params = {
        "dbname": "postgres",
        "user": db["USER"] or None,
        "password": db["PASSWORD"] or None,
        "host": db["HOST"] or None,
        "port": db["PORT"] or None,
    }
    with psycopg.connect(autocommit=True, **params) as server:
        exists = server.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if exists.fetchone() is None:
            server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def reset() -> None:
    """Empty every table (TRUNCATE on PostgreSQL, DELETE on SQLite)."""
    call_command("flush", interactive=False, verbosity=0)


# --- Seed ------------------------------------------------------------------------------------


def seed_world() -> World:
    client = BusinessUnit.objects.create(code="BENCHCLIENT", name="Bench client", kind="CLIENT")
    sites = [
        BusinessUnit.objects.create(
            code=f"BENCHSITE{n}", name=f"Bench site {n}", kind="SITE", parent=client, time_zone=tz
        )
        for n, tz in enumerate(SITE_TIME_ZONES, start=1)
    ]
    categories = {
        code: TypeAssist.objects.create(category="TICKETCATEGORY", code=code, name=code)
        for code in (NOTIFY, RAISE_TICKET, HELPDESK_CATEGORY)
    }
    in_charge = TypeAssist.objects.create(
        category="DESIGNATION", code="SITEINCHARGE", name="Site in-charge"
    )
    for site in sites:
        People.objects.create_user(
            f"incharge-{site.code.lower()}",
            email=f"incharge.{site.code.lower()}@facility.test",
            client=client,
            site=site,
            designation=in_charge,
            is_verified=True,
        )
    People.objects.create_user(
        "client-admin",
        email="admin@facility.test",
        client=client,
        site=sites[0],
        is_client_admin=True,
        is_verified=True,
    )
    worker = People.objects.create_user(
        "worker", email="worker@facility.test", client=client, site=sites[0], is_verified=True
    )
    return World(client, sites, worker, categories)


def seed_jobneeds(world: World, count: int, now: datetime) -> None:
    """Unfinished (ASSIGNED) top-level Jobneeds expired within the last 23 hours: a third
    without ticket category, a third AUTOCLOSENOTIFY, a third RAISETICKETNOTIFY."""
    by_third = (None, world.categories[NOTIFY], world.categories[RAISE_TICKET])
    rows = []
    for i in range(count):
        expiry = now - timedelta(minutes=1 + i % (23 * 60))
        tour = i % TOUR_EVERY == 0
        rows.append(
            Jobneed(
                identifier=Identifier.INTERNALTOUR if tour else Identifier.TASK,
                description=f"{'Patrol' if tour else 'Check fire pumps'} {i}",
                plan_at=expiry - timedelta(hours=1),
                expiry_at=expiry,
                status=JobneedStatus.ASSIGNED,
                site=world.sites[i % len(world.sites)],
                client=world.client,
                people=world.worker,
                ticket_category=by_third[i % 3],
            )
        )
    Jobneed.objects.bulk_create(rows, batch_size=BATCH_SIZE)


def seed_tickets(world: World, count: int, now: datetime) -> None:
    """Open helpdesk tickets created TICKET_AGE ago, and the two escalation rules."""
    category = world.categories[HELPDESK_CATEGORY]
    Ticket.objects.bulk_create(
        (
            Ticket(
                description=f"Lights out in lobby {i}",
                status=Ticket.Status.NEW,
                category=category,
                site=world.sites[i % len(world.sites)],
                client=world.client,  # bulk_create skips Ticket.save, which sets it
                assigned_people=world.worker,
            )
            for i in range(count)
        ),
        batch_size=BATCH_SIZE,
    )
    Ticket.objects.update(created_at=now - TICKET_AGE)  # created_at is auto_now_add
    EscalationMatrix.objects.bulk_create(
        EscalationMatrix(
            client=world.client,
            category=category,
            level=level,
            frequency=EscalationMatrix.Frequency.MINUTE,
            frequency_value=minutes,
            notify_email=f"escalation{level}@facility.test",
        )
        for level, minutes in RULES
    )


def seed(args: argparse.Namespace, now: datetime) -> float:
    """Empty the tables and seed the data set; returns the seconds it took."""
    start = time.perf_counter()
    reset()
    world = seed_world()
    seed_jobneeds(world, args.jobneeds, now)
    seed_tickets(world, args.tickets, now)
    return time.perf_counter() - start


# --- Measuring -------------------------------------------------------------------------------


@contextmanager
def measure() -> Iterator[Measurement]:
    """Time the block, count its SQL statements and the mails it produced.

    Statements are counted by an execute wrapper rather than CaptureQueriesContext: the latter
    reads `connection.queries_log`, a deque capped at 9000 entries, so it under-counts the
    per-row baseline, and the debug cursor it forces would add formatting cost to each query.
    Time spent inside the services' deliver() (claiming idempotency keys, rendering mails and
    handing them to locmem) is recorded apart, since the baseline sends no mail.
    """
    measured = Measurement()

    def count(execute: Callable[..., Any], *args: Any) -> Any:
        measured.queries += 1
        return execute(*args)

    def timed_deliver(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return deliver(*args, **kwargs)
        finally:
            measured.mail_seconds += time.perf_counter() - start

    mail.outbox = []
    start, cpu = time.perf_counter(), time.process_time()
    try:
        with (
            connection.execute_wrapper(count),
            mock.patch.object(autoclose_module, "deliver", timed_deliver),
            mock.patch.object(helpdesk_services, "deliver", timed_deliver),
        ):
            yield measured
    finally:
        measured.seconds = time.perf_counter() - start
        measured.cpu_seconds = time.process_time() - cpu
        measured.mails = len(mail.outbox)
        mail.outbox = []


def measure_service(call: Callable[[], Report]) -> tuple[Report | None, Measurement]:
    """Measure a service call; a crash is a figure too: recorded, and the run goes on."""
    with measure() as measured:
        try:
            return call(), measured
        except Exception as exc:
            measured.error = f"{type(exc).__name__}: {str(exc)[:300]}"
    return None, measured


# --- Per-row baseline (bench only) -----------------------------------------------------------


def baseline_autoclose_per_row(now: datetime, sample: int | None) -> BaselineCounts:
    """The same state change as autoclose(), one Jobneed at a time, without mail.

    Load each expired Jobneed, check the transition, close its checkpoints and itself with
    save(), then create the RAISETICKETNOTIFY ticket and its history row one by one.
    Jobneeds are not marked notified (autoclose_notified_at) since no mail is sent.
    """
    counts = BaselineCounts()
    expired = Jobneed.objects.filter(
        parent__isnull=True,
        identifier__in=AUTOCLOSE_IDENTIFIERS,
        expiry_at__gte=now - LOOKBACK,
        expiry_at__lte=now,
    ).order_by("pk")
    for pk in list(expired.values_list("pk", flat=True)[:sample]):
        counts.rows += 1
        jobneed = Jobneed.objects.get(pk=pk)
        if jobneed.autoclosed_at or not allowed(
            jobneed.status, JobneedStatus.AUTOCLOSED, by_system=True
        ):
            continue
        target = JobneedStatus.AUTOCLOSED
        if jobneed.identifier in TOURS:
            checkpoints = list(jobneed.checkpoints.all())
            if any(c.status == JobneedStatus.COMPLETED for c in checkpoints):
                target = JobneedStatus.PARTIALLYCOMPLETED
                jobneed.ended_at = now
            for checkpoint in checkpoints:
                if not checkpoint.autoclosed_at and allowed(
                    checkpoint.status, JobneedStatus.AUTOCLOSED, by_system=True
                ):
                    checkpoint.status = JobneedStatus.AUTOCLOSED
                    checkpoint.autoclosed_at = now
                    checkpoint.save()
        jobneed.status = target
        jobneed.autoclosed_at = now
        jobneed.save()
        counts.changed += 1
        if jobneed.ticket_category and jobneed.ticket_category.code == RAISE_TICKET:
            kind = "TOUR" if jobneed.identifier in TOURS else jobneed.identifier
            ticket = Ticket.objects.create(
                jobneed=jobneed,
                description=f"AUTOCLOSED {kind} {jobneed.description} planned on "
                f"{jobneed.plan_at:%Y-%m-%d %H:%M} UTC was not reported in time",
                site_id=jobneed.site_id,
                asset_id=jobneed.asset_id,
                category_id=jobneed.ticket_category_id,
                priority=jobneed.priority,
                assigned_people_id=jobneed.people_id,
                assigned_group_id=jobneed.group_id,
                source=Ticket.Source.SYSTEM,
            )
            TicketEvent.objects.create(
                ticket=ticket,
                at=now,
                action=TicketEvent.Action.CREATED,
                details={"by": "system", "reason": "jobneed auto-closed", "jobneed": pk},
            )
            counts.tickets += 1
    return counts


def baseline_escalate_per_row(now: datetime, sample: int | None) -> BaselineCounts:
    """The same state change as escalate_due_tickets(), one ticket at a time, without mail.

    Load each open ticket, look up its next level's rule with a query (the site's own rule
    first, else the client's), and when due move it up one level with save() and a history row.
    """
    counts = BaselineCounts()
    open_tickets = Ticket.objects.filter(status__in=OPEN_TICKET_STATUSES).order_by("pk")
    for pk in list(open_tickets.values_list("pk", flat=True)[:sample]):
        counts.rows += 1
        ticket = Ticket.objects.get(pk=pk)
        if ticket.category_id is None or (ticket.escalated_at and ticket.escalated_at >= now):
            continue
        rule = (
            EscalationMatrix.objects.filter(
                Q(site_id=ticket.site_id) | Q(site__isnull=True),
                job__isnull=True,
                client_id=ticket.client_id,
                category_id=ticket.category_id,
                level=ticket.escalation_level + 1,
            )
            .order_by(F("site_id").asc(nulls_last=True))
            .first()
        )
        if rule is None or ticket.created_at > now - rule.delay:
            continue
        ticket.escalation_level = rule.level
        ticket.escalated_at = now
        ticket.version += 1
        if rule.assign_people_id or rule.assign_group_id:
            ticket.assigned_people_id = rule.assign_people_id
            ticket.assigned_group_id = rule.assign_group_id
        ticket.save()
        TicketEvent.objects.create(
            ticket=ticket,
            at=now,
            action=TicketEvent.Action.ESCALATED,
            details={
                "level": rule.level,
                "people": ticket.assigned_people_id,
                "group": ticket.assigned_group_id,
            },
        )
        counts.changed += 1
    return counts


# --- Report ----------------------------------------------------------------------------------


def print_measurement(prefix: str, rows: int, measured: Measurement) -> None:
    line(f"{prefix}_rows", rows)
    line(f"{prefix}_seconds", f"{measured.seconds:.2f}")
    line(f"{prefix}_cpu_seconds", f"{measured.cpu_seconds:.2f}")
    line(f"{prefix}_queries", measured.queries)
    if measured.error:
        line(f"{prefix}_error", measured.error)


def print_baseline(
    prefix: str, total: int, counts: BaselineCounts, measured: Measurement
) -> Measurement:
    """Print the baseline's figures, extrapolated linearly to `total` rows when it ran on a
    sample; returns the (extrapolated) measurement the ratios use."""
    scale = total / counts.rows if counts.rows else 1.0
    full = Measurement(measured.seconds * scale, round(measured.queries * scale))
    print_measurement(prefix, total, full)
    if counts.rows < total:
        sample = f"{counts.rows} rows ({measured.seconds:.2f} s, {measured.queries} queries)"
        line(f"{prefix}_extrapolated_from", f"{sample}, x{scale:.1f}")
    return full


def print_ratios(prefix: str, baseline: Measurement, set_based: Measurement) -> None:
    if set_based.error:
        line(f"{prefix}_ratios", "none: the set-based run failed")
        return
    without_mail = set_based.seconds - set_based.mail_seconds
    line(f"{prefix}_ratio_seconds_baseline_to_set", f"{baseline.seconds / set_based.seconds:.1f}")
    line(
        f"{prefix}_ratio_seconds_baseline_to_set_excl_mail",
        f"{baseline.seconds / without_mail:.1f}",
    )
    line(f"{prefix}_ratio_queries_baseline_to_set", f"{baseline.queries / set_based.queries:.0f}")


def print_header(args: argparse.Namespace) -> None:
    line("load_average_at_start", load_average())
    line("debug", settings.DEBUG)
    line("database_vendor", connection.vendor)
    line("database_name", settings.DATABASES["default"]["NAME"])
    line("python", platform.python_version())
    line("django", django.get_version())
    line("nproc", len(os.sched_getaffinity(0)))
    line("email_backend", settings.EMAIL_BACKEND)
    line("seed_jobneeds", args.jobneeds)
    line("seed_tickets", args.tickets)


def run(args: argparse.Namespace) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    ensure_database()
    call_command("migrate", verbosity=0)
    print_header(args)
    now = timezone.now()

    line("seed_seconds", f"{seed(args, now):.2f}")
    # Escalation first, so that it sees only the seeded tickets, not autoclose's system ones.
    escalation_report, escalation = measure_service(lambda: escalate_due_tickets(now=now))
    print_measurement(
        "escalate_set_based", escalation_report["escalated"] if escalation_report else 0, escalation
    )
    line("escalate_set_based_mails", escalation.mails)
    line("escalate_set_based_mail_seconds", f"{escalation.mail_seconds:.2f}")
    close_report, closing = measure_service(lambda: autoclose(now=now))
    closed = close_report["closed"] + close_report["partially_completed"] if close_report else 0
    print_measurement("autoclose_set_based", closed, closing)
    raised = close_report["tickets_raised"] if close_report else 0
    line("autoclose_set_based_tickets_raised", raised)
    line("autoclose_set_based_mails", closing.mails)
    line("autoclose_set_based_mail_seconds", f"{closing.mail_seconds:.2f}")
    if args.skip_baseline:
        return

    line("reseed_seconds", f"{seed(args, now):.2f}")
    with measure() as measured:
        counts = baseline_escalate_per_row(now, args.baseline_sample)
    escalation_baseline = print_baseline("escalate_per_row", args.tickets, counts, measured)
    line("escalate_per_row_escalated", counts.changed)
    with measure() as measured:
        counts = baseline_autoclose_per_row(now, args.baseline_sample)
    autoclose_baseline = print_baseline("autoclose_per_row", args.jobneeds, counts, measured)
    line("autoclose_per_row_closed", counts.changed)
    line("autoclose_per_row_tickets_raised", counts.tickets)
    print_ratios("escalate", escalation_baseline, escalation)
    print_ratios("autoclose", autoclose_baseline, closing)


def main() -> None:
    args = parse_args()
    try:
        run(args)
    except BenchError as exc:
        sys.exit(f"error: {exc}")
    line("load_average_at_end", load_average())


if __name__ == "__main__":
    main()
