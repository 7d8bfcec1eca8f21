"""Times on pages and in the admin in the signed-in person's time zone: their site's, else
their client's, else the server's (UTC), the same zone their mails use."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone


def time_zone_of(person) -> str:
    """The IANA name of the zone a person's pages show times in."""
    for unit_id, unit in ((person.site_id, "site"), (person.client_id, "client")):
        if unit_id:
            return getattr(person, unit).time_zone
    return timezone.get_default_timezone_name()


class SiteTimeZoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            try:
                timezone.activate(zoneinfo.ZoneInfo(time_zone_of(user)))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
