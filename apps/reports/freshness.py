"""Keep the cached dashboards and form lookups fresh: a saved ticket, planned job instance or
punch drops its site's dashboard for today, a saved lookup code its list, so the next page
recomputes them at once instead of showing them stale until the next warm-up."""

from __future__ import annotations

from datetime import timedelta

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from apps.onboarding.lookups import lookup_key
from apps.onboarding.models import BusinessUnit
from apps.reports.dashboard import dashboard_key


def forget_site_dashboard(site: BusinessUnit) -> None:
    today = timezone.localtime(timezone.now(), site.tzinfo).date().isoformat()
    cache.delete(dashboard_key(site.pk, today))


def _forget_site_days(site_id: int) -> None:
    """The site's dashboards of yesterday, today and tomorrow in UTC: its own "today" is one of
    them whatever its time zone, and the site row need not be read."""
    today = timezone.now().date()
    cache.delete_many(
        [dashboard_key(site_id, (today + timedelta(days=d)).isoformat()) for d in (-1, 0, 1)]
    )


def _site_changed(sender, instance, **kwargs) -> None:
    site_id = getattr(instance, "site_id", None)
    if site_id is not None:
        # After commit: a page reading in between would otherwise cache the old figures again.
        transaction.on_commit(lambda: _forget_site_days(site_id))


def _lookup_changed(sender, instance, **kwargs) -> None:
    key = lookup_key(instance.category)
    transaction.on_commit(lambda: cache.delete(key))


def connect() -> None:
    from apps.activity.models import Jobneed
    from apps.attendance.models import AttendanceEvent
    from apps.onboarding.models import TypeAssist
    from apps.y_helpdesk.models import Ticket

    for model in (Ticket, Jobneed, AttendanceEvent):
        for signal in (post_save, post_delete):
            signal.connect(_site_changed, sender=model, dispatch_uid=f"fresh-{model.__name__}")
    for signal in (post_save, post_delete):
        signal.connect(_lookup_changed, sender=TypeAssist, dispatch_uid="fresh-TypeAssist")
