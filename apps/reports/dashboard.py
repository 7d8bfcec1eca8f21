"""The site dashboard (today's jobs by status, open tickets by priority, attendance today) and
the people and lookup lists of the forms: computed from the database, kept in the shared cache.
Pages read the cache and compute on a miss; cache_warming_scheduled fills it ahead of them."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any, cast

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone

from apps.activity.models import Jobneed
from apps.attendance.models import AttendanceEvent
from apps.onboarding.lookups import lookup_choices, lookup_key
from apps.onboarding.models import BusinessUnit, TypeAssist
from apps.reports.results import DashboardWarmResult
from apps.y_helpdesk.models import OPEN_TICKET_STATUSES, Ticket


def _local_day(site: BusinessUnit, now: datetime) -> tuple[datetime, datetime, str]:
    today = timezone.localtime(now, site.tzinfo).date()
    start = datetime.combine(today, time.min, tzinfo=site.tzinfo)
    return start, start + timedelta(days=1), today.isoformat()


def dashboard_key(site_id: int, day: str) -> str:
    return f"dashboard:v1:site:{site_id}:{day}"


def compute_site_dashboard(site: BusinessUnit, now: datetime | None = None) -> dict[str, Any]:
    start, end, day = _local_day(site, now or timezone.now())
    jobs = Jobneed.objects.filter(
        site=site, parent__isnull=True, plan_at__gte=start, plan_at__lt=end
    )
    tickets = Ticket.objects.filter(site=site, status__in=OPEN_TICKET_STATUSES)
    punches = AttendanceEvent.objects.filter(site=site, at__gte=start, at__lt=end)
    return {
        "site": site.name,
        "day": day,
        "jobs_by_status": dict(jobs.values_list("status").annotate(n=Count("pk")).order_by()),
        "open_tickets_by_priority": dict(
            tickets.values_list("priority").annotate(n=Count("pk")).order_by()
        ),
        "attendance": punches.aggregate(punches=Count("pk"), people=Count("person", distinct=True)),
        "computed_at": timezone.now().isoformat(),
    }


def site_dashboard(site: BusinessUnit, now: datetime | None = None) -> dict[str, Any]:
    """The dashboard from the cache, computed and stored on a miss."""
    _, _, day = _local_day(site, now or timezone.now())
    return cast(
        "dict[str, Any]",
        cache.get_or_set(
            dashboard_key(site.pk, day),
            lambda: compute_site_dashboard(site, now),
            settings.DASHBOARD_CACHE_SECONDS,
        ),
    )


def site_dashboards(sites: list[BusinessUnit], now: datetime | None = None) -> list[dict[str, Any]]:
    """The dashboards of `sites` in one cache read (a page shows up to 50); those missing are
    computed and stored together."""
    now = now or timezone.now()
    keys = [dashboard_key(site.pk, _local_day(site, now)[2]) for site in sites]
    found = cache.get_many(keys)
    missing = {
        key: compute_site_dashboard(site, now)
        for key, site in zip(keys, sites, strict=True)
        if key not in found
    }
    if missing:
        cache.set_many(missing, settings.DASHBOARD_CACHE_SECONDS)
    return [found.get(key) or missing[key] for key in keys]


def warm_all(now: datetime | None = None) -> DashboardWarmResult:
    """Recompute every enabled site's dashboard and every lookup list the forms show (people
    lists are not cached: each person's form offers the people they reach)."""
    now = now or timezone.now()
    sites = list(BusinessUnit.objects.filter(kind=BusinessUnit.Kind.SITE, enabled=True))
    for site in sites:
        _, _, day = _local_day(site, now)
        cache.set(
            dashboard_key(site.pk, day),
            compute_site_dashboard(site, now),
            settings.DASHBOARD_CACHE_SECONDS,
        )
    for category in TypeAssist.Category.values:
        cache.delete(lookup_key(category))
        lookup_choices(category)
    return {"sites": len(sites), "lookup_lists": len(TypeAssist.Category.values)}
