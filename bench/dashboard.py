"""Warm versus cold site dashboard: time and queries per page view.

    INTELLIWIZ_VAR_DIR=/tmp/bench-dashboard .venv/bin/python bench/dashboard.py --jobneeds 50000

Seeds one site with jobneeds planned today, open tickets and punches, then times the dashboard
computed from the database (cold, what a page pays on a cache miss) and read from the warmed
cache (what it pays after cache_warming_scheduled), on the configured database and cache.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "intelliwiz_config.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.activity.models import Jobneed  # noqa: E402
from apps.onboarding.models import BusinessUnit  # noqa: E402
from apps.reports.dashboard import compute_site_dashboard, site_dashboard, warm_all  # noqa: E402
from apps.y_helpdesk.models import Ticket  # noqa: E402

STATUSES = ["ASSIGNED", "INPROGRESS", "COMPLETED", "AUTOCLOSED"]


def clean() -> None:
    Jobneed.objects.filter(site__code="BENCH-DASH-S").delete()
    Ticket.objects.filter(site__code="BENCH-DASH-S").delete()
    BusinessUnit.objects.filter(code="BENCH-DASH-S").delete()
    BusinessUnit.objects.filter(code="BENCH-DASH").delete()


def seed(jobneeds: int, tickets: int) -> BusinessUnit:
    clean()
    client = BusinessUnit.objects.create(code="BENCH-DASH", name="Bench client", kind="CLIENT")
    site = BusinessUnit.objects.create(
        code="BENCH-DASH-S", name="Bench site", kind="SITE", parent=client, time_zone="Asia/Kolkata"
    )
    start = timezone.localtime(timezone.now(), site.tzinfo).replace(hour=0, minute=1)
    step = timedelta(seconds=max(1, 86000 // max(jobneeds, 1)))
    Jobneed.objects.bulk_create(
        (
            Jobneed(
                identifier="TASK",
                description="Round",
                plan_at=start + i * step,
                expiry_at=start + i * step + timedelta(hours=1),
                site=site,
                client=client,
                status=STATUSES[i % len(STATUSES)],
            )
            for i in range(jobneeds)
        ),
        batch_size=2000,
    )
    Ticket.objects.bulk_create(
        (
            Ticket(
                description="Issue",
                site=site,
                client=client,
                priority=("LOW", "MEDIUM", "HIGH")[i % 3],
            )
            for i in range(tickets)
        ),
        batch_size=2000,
    )
    return site


def measure(label: str, view, runs: int) -> float:
    timings, queries = [], 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            view()
            timings.append((time.perf_counter() - started) * 1000)
        queries = len(captured)
    median = statistics.median(timings)
    print(f"{label}_ms_p50 {median:.2f}")
    print(f"{label}_ms_max {max(timings):.2f}")
    print(f"{label}_queries {queries}")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobneeds", type=int, default=20000)
    parser.add_argument("--tickets", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    site = seed(args.jobneeds, args.tickets)
    print(f"database {connection.vendor}")
    print(f"cache {settings.CACHES['default']['BACKEND']}")
    print(f"jobneeds_today {args.jobneeds}")
    print(f"open_tickets {args.tickets}")
    cold = measure("cold", lambda: compute_site_dashboard(site), args.runs)
    cache.clear()
    started = time.perf_counter()
    warm_all()
    print(f"warm_all_ms {(time.perf_counter() - started) * 1000:.1f}")
    warm = measure("warm", lambda: site_dashboard(site), args.runs)
    print(f"speedup_cold_over_warm {cold / warm:.1f}")
    clean()


if __name__ == "__main__":
    main()
