"""The product's pages at a real client's size, beside the Django admin on the same data.

Run from the repository root (see bench/README.md); the run owns the database it names:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_web .venv/bin/python bench/web_pages.py

It seeds ONE client with 20k tickets, 50k jobneeds (of 500 jobs), 5k permits and 2k attendance
events (kept between runs while the sizes match), serves with the Procfile's `web:` command
(gunicorn, DEBUG off) and prints, for every list and detail page and for each role, p50 and p99
of sequential requests, requests/s with concurrent clients, the server's CPU milliseconds per
request (gunicorn's master and workers, from /proc) and the SQL statements of one request;
then the same for the Django admin's changelist and change page of the same models, signed in
as the client's admin: the anchor.
"""

# ruff: noqa: E402 (the app modules can only be imported after django.setup())
from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import random
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("INTELLIWIZ_VAR_DIR", "/tmp/bench-web")  # noqa: S108 (documented scratch)
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_web")
os.environ["DJANGO_DEBUG"] = "false"
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "intelliwiz_config.settings")

import django

django.setup()

import psycopg
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Permission
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from psycopg import sql

from apps.activity.models import Identifier, Job, Jobneed, JobneedStatus, Priority
from apps.attendance.models import AttendanceEvent
from apps.onboarding.models import BusinessUnit, SiteGroup, TypeAssist
from apps.peoples.models import GroupMembership, People, PeopleGroup
from apps.work_order_management.models import (
    ApprovalStep,
    PermitStatus,
    PermitType,
    Vendor,
    WorkPermit,
)
from apps.y_helpdesk.models import Ticket, TicketComment, TicketEvent
from bench.measure import cpu_seconds, load_average, percentile

CLIENT_CODE = "BENCHWEB"
BATCH = 2000
ZONES = ("Asia/Kolkata", "Asia/Dubai", "Europe/London", "America/New_York", "Asia/Singapore")
GOAL_P50_MS, GOAL_P99_MS = 50.0, 200.0


class BenchError(Exception):
    """A failure that ends the run with a message instead of a traceback."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--jobneeds", type=int, default=50_000)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--permits", type=int, default=5_000)
    parser.add_argument("--attendance", type=int, default=2_000)
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--technicians", type=int, default=200)
    parser.add_argument("--requests", type=int, default=100, help="sequential, for p50/p99")
    parser.add_argument("--burst", type=int, default=150, help="concurrent, for requests/s")
    parser.add_argument("--clients", type=int, default=3, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=3, help="WEB_CONCURRENCY")
    parser.add_argument("--reseed", action="store_true", help="seed even if the sizes match")
    parser.add_argument("-k", dest="only", default="", help="only pages whose name has this")
    parser.add_argument("--json", type=Path, help="also write the figures here (bench/all.py)")
    return parser.parse_args()


# --- Database and data -------------------------------------------------------------------------


def ensure_database() -> None:
    """Refuse a database that is not a bench one; create a missing one."""
    db = settings.DATABASES["default"]
    name = str(db["NAME"])
    if "bench" not in name or connection.vendor != "postgresql":
        raise BenchError(f"refusing {name!r}: a PostgreSQL database whose name holds 'bench'")
    params = {
        "dbname": "postgres",
        "user": db["USER"] or None,
        "host": db["HOST"] or None,
        "port": db["PORT"] or None,
    }
    with psycopg.connect(autocommit=True, **params) as server:
        if server.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


@dataclass
class World:
    client: BusinessUnit
    sites: list[BusinessUnit]
    people: dict[str, People]  # by role: admin, in_charge, tech


def sizes(args: argparse.Namespace) -> dict[str, int]:
    return {
        "tickets": args.tickets,
        "jobneeds": args.jobneeds,
        "permits": args.permits,
        "attendance": args.attendance,
    }


def seeded_sizes(client: BusinessUnit) -> dict[str, int]:
    return {
        "tickets": Ticket.objects.filter(client=client).count(),
        "jobneeds": Jobneed.objects.filter(client=client).count(),
        "permits": WorkPermit.objects.filter(client=client).count(),
        "attendance": AttendanceEvent.objects.filter(site__client=client).count(),
    }


def world_of(client: BusinessUnit) -> World:
    sites = list(BusinessUnit.objects.filter(parent=client, kind="SITE").order_by("code"))
    people = {role: People.objects.get(loginid=f"bench-{role}") for role in ROLES}
    return World(client, sites, people)


def seed(args: argparse.Namespace) -> World:
    """One client at a real size; spread like a year of work."""
    rng = random.Random(22)
    call_command("flush", interactive=False, verbosity=0)
    now = timezone.now()
    client = BusinessUnit.objects.create(code=CLIENT_CODE, name="Bench client", kind="CLIENT")
    sites = [
        BusinessUnit.objects.create(
            code=f"BW{n:02d}",
            name=f"Site {n:02d}",
            kind="SITE",
            parent=client,
            time_zone=ZONES[n % len(ZONES)],
        )
        for n in range(args.sites)
    ]
    in_charge_code = TypeAssist.objects.create(
        category="DESIGNATION", code="SITEINCHARGE", name="Site in-charge"
    )
    categories = [
        TypeAssist.objects.create(category="TICKETCATEGORY", code=code, name=code.title())
        for code in ("ELECTRICAL", "PLUMBING", "HVAC", "CLEANING", "SECURITY")
    ]

    def person(loginid: str, site: BusinessUnit, **fields: Any) -> People:
        return People(
            loginid=loginid,
            code=loginid.upper(),
            name=loginid.replace("-", " ").title(),
            email=f"{loginid}@bench.test",
            client=client,
            site=site,
            is_verified=True,
            password="!",  # noqa: S106 (an unusable password: the bench signs in by session)
            **fields,
        )

    staff = People.objects.bulk_create(
        [
            person("bench-admin", sites[0], is_client_admin=True, is_staff=True),
            *(
                person(f"bench-in-charge-{n}", site, designation=in_charge_code)
                for n, site in enumerate(sites)
            ),
        ]
    )
    admin, in_charges = staff[0], staff[1:]
    technicians = People.objects.bulk_create(
        person(f"bench-tech-{n}", sites[n % len(sites)]) for n in range(args.technicians)
    )
    # The names the bench signs in as.
    People.objects.filter(pk=in_charges[0].pk).update(loginid="bench-in_charge")
    People.objects.filter(pk=technicians[0].pk).update(loginid="bench-tech")
    admin.user_permissions.set(
        Permission.objects.filter(
            codename__in=[
                f"{verb}_{model}" for verb in ("view", "change") for model in ADMIN_MODELS
            ]
        )
    )
    region = SiteGroup.objects.create(client=client, name="North")
    region.sites.set(sites[:3])
    in_charges[0].supervised_site_groups.add(region)
    groups = PeopleGroup.objects.bulk_create(
        PeopleGroup(client=client, site=sites[n % len(sites)], name=f"Team {n}") for n in range(20)
    )
    GroupMembership.objects.bulk_create(
        GroupMembership(group=groups[n % len(groups)], people=tech)
        for n, tech in enumerate(technicians)
    )

    def assignment(n: int) -> tuple[People | None, PeopleGroup | None]:
        return (technicians[n % len(technicians)], None) if n % 2 else (None, groups[n % 20])

    tickets = []
    for n in range(args.tickets):
        who, team = assignment(n)
        tickets.append(
            Ticket(
                description=f"{rng.choice(('Leak', 'No power', 'Noise', 'Door jammed'))} {n}",
                status=rng.choice(Ticket.Status.values),
                priority=rng.choice(Priority.values),
                category=categories[n % len(categories)],
                site=sites[n % len(sites)],
                client=client,
                assigned_people=who,
                assigned_group=team,
                created_by=technicians[(n * 7) % len(technicians)],
            )
        )
    Ticket.objects.bulk_create(tickets, batch_size=BATCH)
    # Spread over a year (created_at is auto_now_add): one UPDATE.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE y_helpdesk_ticket SET created_at = %s - (id %% 365) * interval '1 day'"
            " - (id %% 1440) * interval '1 minute'",
            [now],
        )
    tickets = list(Ticket.objects.filter(client=client).only("pk", "created_at", "created_by"))
    TicketEvent.objects.bulk_create(
        (
            TicketEvent(ticket=t, at=t.created_at, actor_id=t.created_by_id, action="CREATED")
            for t in tickets
        ),
        batch_size=BATCH,
    )
    TicketComment.objects.bulk_create(
        (
            TicketComment(
                ticket=t,
                author_id=t.created_by_id,
                at=t.created_at + timedelta(hours=h),
                text=f"Looked at it, hour {h}.",
            )
            for t in tickets[::10]
            for h in (1, 2)
        ),
        batch_size=BATCH,
    )
    jobs = []
    for n in range(args.jobs):
        who, team = assignment(n)
        jobs.append(
            Job(
                name=f"Job {n:04d} {rng.choice(('Pump', 'Chiller', 'Lift', 'Fire panel'))}",
                identifier=(Identifier.PPM, Identifier.TASK, Identifier.INTERNALTOUR)[n % 3],
                cron="0 9 * * *",
                valid_from=now - timedelta(days=60),
                valid_to=now + timedelta(days=60),
                site=sites[n % len(sites)],
                client=client,
                people=who,
                group=team,
                last_generated_at=now,
            )
        )
    jobs = Job.objects.bulk_create(jobs, batch_size=BATCH)
    per_job = max(1, args.jobneeds // len(jobs))
    days = 100
    Jobneed.objects.bulk_create(
        (
            Jobneed(
                job=job,
                identifier=job.identifier,
                description=job.name,
                plan_at=now - timedelta(days=60) + timedelta(days=days * i / per_job, hours=n % 9),
                expiry_at=now
                - timedelta(days=60)
                + timedelta(days=days * i / per_job, hours=n % 9 + 1),
                status=JobneedStatus.COMPLETED if i < per_job * 0.6 else JobneedStatus.ASSIGNED,
                site=job.site,
                client=client,
                people=job.people,
                group=job.group,
            )
            for n, job in enumerate(jobs)
            for i in range(per_job)
        ),
        batch_size=BATCH,
    )
    permit_type = PermitType.objects.create(name="Hot Work Permit", kind="WP", client=client)
    vendors = Vendor.objects.bulk_create(
        Vendor(code=f"BWV{n}", name=f"Vendor {n}", email=f"v{n}@bench.test", client=client)
        for n in range(20)
    )
    permits = WorkPermit.objects.bulk_create(
        (
            WorkPermit(
                permit_type=permit_type,
                kind="WP",
                number=n // len(sites) + 1,
                site=sites[n % len(sites)],
                client=client,
                vendor=vendors[n % len(vendors)],
                status=rng.choice(PermitStatus.values),
                requested_by=technicians[n % len(technicians)],
            )
            for n in range(args.permits)
        ),
        batch_size=BATCH,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE work_order_management_workpermit SET created_at = %s"
            " - (id %% 365) * interval '1 day' - (id %% 1440) * interval '1 minute'",
            [now],
        )
    ApprovalStep.objects.bulk_create(
        (
            ApprovalStep(permit=p, person=person, role=role)
            for n, p in enumerate(permits)
            for person, role in (
                (in_charges[n % len(in_charges)], "VERIFIER"),
                (admin, "APPROVER"),
            )
        ),
        batch_size=BATCH,
    )
    AttendanceEvent.objects.bulk_create(
        (
            AttendanceEvent(
                person=technicians[n % len(technicians)],
                site=sites[n % len(sites)],
                kind=("PUNCH_IN", "PUNCH_OUT")[n % 2],
                at=now - timedelta(minutes=30 * (args.attendance - n)),
            )
            for n in range(args.attendance)
        ),
        batch_size=BATCH,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return world_of(client)


# --- Pages -------------------------------------------------------------------------------------

ROLES = ("admin", "in_charge", "tech")
ADMIN_MODELS = ("ticket", "job", "jobneed", "workpermit", "attendanceevent")


@dataclass
class Page:
    name: str  # what the table prints
    path: str
    role: str
    anchor: str = ""  # the admin page it stands beside


def pages(world: World) -> list[Page]:
    """Every list and detail page for each role, and the admin anchors."""
    found: list[Page] = []
    for role in ROLES:
        person = world.people[role]
        ticket = Ticket.objects.visible_to(person).order_by("-created_at").first()
        job = Job.objects.visible_to(person).filter(parent__isnull=True).order_by("name").first()
        permit = WorkPermit.objects.visible_to(person).order_by("-created_at").first()
        found += [
            Page("tickets", "/tickets/", role, "/admin/y_helpdesk/ticket/"),
            Page("tickets open", "/tickets/?status=open", role, "/admin/y_helpdesk/ticket/"),
            Page("ticket", f"/tickets/{ticket.pk}", role, "ticket change"),
            Page("jobs", "/jobs/", role, "/admin/activity/job/"),
            Page("job", f"/jobs/{job.pk}", role, "job change"),
            Page("planned", "/jobs/planned", role, "/admin/activity/jobneed/"),
            Page("permits", "/permits/", role, "/admin/work_order_management/workpermit/"),
            Page("permit", f"/permits/{permit.pk}", role, "workpermit change"),
            Page("dashboard", "/dashboard/", role, "/admin/attendance/attendanceevent/"),
        ]
    ticket = Ticket.objects.filter(client=world.client).order_by("-created_at").first()
    job = Job.objects.filter(client=world.client).order_by("name").first()
    permit = WorkPermit.objects.filter(client=world.client).order_by("-created_at").first()
    for path in (
        "/admin/y_helpdesk/ticket/",
        "/admin/activity/job/",
        "/admin/activity/jobneed/",
        "/admin/work_order_management/workpermit/",
        "/admin/attendance/attendanceevent/",
    ):
        found.append(Page(path, path, "admin"))
    found += [
        Page("ticket change", f"/admin/y_helpdesk/ticket/{ticket.pk}/change/", "admin"),
        Page("job change", f"/admin/activity/job/{job.pk}/change/", "admin"),
        Page(
            "workpermit change",
            f"/admin/work_order_management/workpermit/{permit.pk}/change/",
            "admin",
        ),
    ]
    return found


def session_cookie(person: People) -> str:
    session = SessionStore()
    session[SESSION_KEY] = str(person.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = person.get_session_auth_hash()
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def count_queries(person: People, path: str) -> int:
    """SQL statements of one request, run in this process on the same database."""
    browser = Client()
    browser.force_login(person)
    browser.get(path)  # warm: the first request of a process loads templates and lookups
    statements = 0

    def count(execute: Callable[..., Any], *args: Any) -> Any:
        nonlocal statements
        statements += 1
        return execute(*args)

    with connection.execute_wrapper(count):
        response = browser.get(path)
    if response.status_code != 200:
        raise BenchError(f"{path} answered {response.status_code} in process")
    return statements


# --- The server --------------------------------------------------------------------------------


def procfile_web_command() -> str:
    for row in (REPO_ROOT / "Procfile").read_text().splitlines():
        if row.startswith("web:"):
            return row.split(":", 1)[1].strip()
    raise BenchError("Procfile has no web: line")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def gunicorn(workers: int, log: Path) -> Iterator[tuple[int, int]]:
    """The Procfile's web process (its command as written), DEBUG off; (pid, port)."""
    port = free_port()
    env = dict(os.environ, PORT=str(port), WEB_CONCURRENCY=str(workers), DJANGO_DEBUG="false")
    env["PATH"] = f"{REPO_ROOT / '.venv' / 'bin'}:{env['PATH']}"
    command = procfile_web_command()
    with log.open("ab") as out:
        server = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = get(port, "/healthz", "")
                if status in (200, 503):
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"gunicorn did not start: see {log}")
            time.sleep(0.2)
        print(f"# web: {shlex.join(['bash', '-c', command])} PORT={port} WEB_CONCURRENCY={workers}")
        yield server.pid, port
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


def get(port: int, path: str, cookie: str) -> tuple[int, int]:
    """One GET on a fresh connection (gunicorn's sync workers close each one); (status, bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers={"Cookie": cookie, "Host": "127.0.0.1"})
        response = conn.getresponse()
        return response.status, len(response.read())
    finally:
        conn.close()


# --- Measuring ---------------------------------------------------------------------------------


@dataclass
class Figures:
    p50_ms: float
    p99_ms: float
    per_s: float
    cpu_ms: float  # the server's CPU per request (master and workers)
    queries: int
    kb: float
    notes: list[str] = field(default_factory=list)


def measure(
    server: int, port: int, path: str, cookie: str, args: argparse.Namespace, queries: int
) -> Figures:
    for _ in range(5):  # warm every worker's templates and caches
        status, size = get(port, path, cookie)
        if status != 200:
            raise BenchError(f"{path} answered {status}")
    samples = []
    for _ in range(args.requests):
        began = time.perf_counter()
        get(port, path, cookie)
        samples.append((time.perf_counter() - began) * 1000)
    left = iter(range(args.burst))
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                if next(left, None) is None:
                    return
            get(port, path, cookie)

    cpu_before = cpu_seconds(server)
    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    cpu = cpu_seconds(server) - cpu_before
    return Figures(
        p50_ms=statistics.median(samples),
        p99_ms=percentile(samples, 0.99),
        per_s=args.burst / elapsed,
        cpu_ms=cpu * 1000 / args.burst,
        queries=queries,
        kb=size / 1024,
    )


def report(results: list[tuple[Page, Figures]]) -> None:
    anchors = {page.name: figures for page, figures in results if page.path.startswith("/admin/")}
    print(
        f"{'page':<22} {'role':<9} {'p50 ms':>7} {'p99 ms':>7} {'req/s':>6} {'cpu ms':>7}"
        f" {'queries':>7} {'KB':>6}  {'p50 / admin':>11} {'req/s / admin':>13}  goal"
    )
    for page, fig in results:
        anchor = anchors.get(page.anchor)
        ratios = (
            f"{fig.p50_ms / anchor.p50_ms:>11.2f} {fig.per_s / anchor.per_s:>13.2f}"
            if anchor
            else f"{'':>11} {'':>13}"
        )
        met = fig.p50_ms <= GOAL_P50_MS and fig.p99_ms <= GOAL_P99_MS
        goal = "" if page.path.startswith("/admin/") else ("met" if met else "MISSED")
        print(
            f"{page.name:<22} {page.role:<9} {fig.p50_ms:>7.1f} {fig.p99_ms:>7.1f}"
            f" {fig.per_s:>6.1f} {fig.cpu_ms:>7.1f} {fig.queries:>7} {fig.kb:>6.1f}"
            f"  {ratios}  {goal}"
        )


def main() -> None:
    args = parse_args()
    print(f"# load average at start: {load_average()}")
    ensure_database()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    client = BusinessUnit.objects.filter(code=CLIENT_CODE).first()
    if args.reseed or client is None or seeded_sizes(client) != sizes(args):
        began = time.perf_counter()
        world = seed(args)
        print(f"# seeded in {time.perf_counter() - began:.1f} s")
    else:
        world = world_of(client)
    print(f"# one client: {seeded_sizes(world.client)}, {len(world.sites)} sites; DEBUG off")
    var = Path(settings.VAR_DIR)
    var.mkdir(parents=True, exist_ok=True)
    cookies = {role: session_cookie(person) for role, person in world.people.items()}
    chosen = [page for page in pages(world) if args.only in page.name]
    queries = {
        (page.path, page.role): count_queries(world.people[page.role], page.path) for page in chosen
    }
    results = []
    with gunicorn(args.workers, var / "gunicorn.log") as (server, port):
        print(
            f"# {args.requests} sequential requests (p50, p99), then {args.burst} from"
            f" {args.clients} clients at once (req/s, server CPU ms per request)"
        )
        for page in chosen:
            figures = measure(
                server, port, page.path, cookies[page.role], args, queries[page.path, page.role]
            )
            results.append((page, figures))
    report(results)
    print(f"# load average at end: {load_average()}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "load": load_average(),
                    "sizes": seeded_sizes(world.client),
                    "pages": [
                        {"name": page.name, "role": page.role, "path": page.path,
                         "anchor": page.anchor, **dataclasses.asdict(figures)}
                        for page, figures in results
                    ],
                },
                indent=1,
            )
        )  # fmt: skip


if __name__ == "__main__":
    try:
        main()
    except BenchError as exc:
        sys.exit(f"error: {exc}")
