"""The site dashboard and form lists: computed in the site's day, read from the warmed cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.test import Client

from apps.activity.models import Jobneed
from apps.attendance.models import AttendanceEvent
from apps.onboarding.lookups import lookup_choices
from apps.reports.dashboard import compute_site_dashboard, site_dashboard
from apps.y_helpdesk.models import Ticket
from background_tasks import cache_warming_scheduled
from tests import factories
from tests.support.waiting import patience

NOW = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)  # 11:30 in Kolkata


def seed(site, person) -> None:
    def job(plan_at, status="ASSIGNED"):
        Jobneed.objects.create(
            identifier="TASK",
            description="Round",
            plan_at=plan_at,
            expiry_at=plan_at + timedelta(hours=1),
            site=site,
            client=site.client,
            status=status,
        )

    job(datetime(2026, 5, 31, 20, 0, tzinfo=UTC))  # 01:30 local on June 1st: today
    job(datetime(2026, 6, 1, 5, 0, tzinfo=UTC), status="COMPLETED")
    job(datetime(2026, 5, 31, 18, 0, tzinfo=UTC))  # 23:30 local on May 31st: not today
    for priority, status in (("HIGH", "NEW"), ("HIGH", "OPEN"), ("LOW", "NEW"), ("LOW", "CLOSED")):
        Ticket.objects.create(description="Issue", site=site, priority=priority, status=status)
    for kind in ("PUNCH_IN", "PUNCH_OUT"):
        AttendanceEvent.objects.create(person=person, site=site, kind=kind, at=NOW)


@pytest.fixture
def world(db, clean_cache):
    _, site = factories.client_and_site("Asia/Kolkata")
    person = factories.person(site)
    seed(site, person)
    return {"site": site, "person": person}


def test_the_dashboard_counts_the_sites_own_day(world) -> None:
    board = compute_site_dashboard(world["site"], NOW)
    assert board["day"] == "2026-06-01"
    assert board["jobs_by_status"] == {"ASSIGNED": 1, "COMPLETED": 1}
    assert board["open_tickets_by_priority"] == {"HIGH": 2, "LOW": 1}
    assert board["attendance"] == {"punches": 2, "people": 1}


def test_a_warm_dashboard_costs_no_query(world, django_assert_max_num_queries) -> None:
    cold = site_dashboard(world["site"], NOW)
    with django_assert_max_num_queries(1):  # at most the cache read (when the cache is a table)
        warm = site_dashboard(world["site"], NOW)
    assert warm == cold
    lookup_choices("TICKETCATEGORY")
    factories.lookup("TICKETCATEGORY", "NEWCOMER")
    assert "NEWCOMER" not in str(lookup_choices("TICKETCATEGORY"))  # served from cache


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_warming_on_the_worker_fills_what_the_page_reads(worker) -> None:
    cache.clear()
    _, site = factories.client_and_site("Asia/Kolkata")
    person = factories.person(site, is_staff=True)
    Ticket.objects.create(description="Issue", site=site, priority="HIGH")
    cache_warming_scheduled.apply_async(ignore_result=False).get(timeout=patience(60))
    board = site_dashboard(site)
    assert board["open_tickets_by_priority"] == {"HIGH": 1}
    browser = Client()
    browser.force_login(person)
    page = browser.get("/dashboard/").content.decode()
    assert 'data-code="HIGH">High</span> 1' in page and site.name in page
