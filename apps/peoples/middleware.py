"""What every page request goes through: times in the signed-in person's time zone, signed-in
pages never stored by the browser, and a form sent after the session ended kept as a draft."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from apps.peoples.drafts import is_sign_in_redirect, keep_draft


def time_zone_of(person) -> str:
    """The IANA name of the zone a person's pages show times in."""
    for unit_id, unit in ((person.site_id, "site"), (person.client_id, "client")):
        if unit_id:
            return getattr(person, unit).time_zone
    return timezone.get_default_timezone_name()


class SiteTimeZoneMiddleware:
    """Pages and the admin show times in the signed-in person's time zone: their site's, else
    their client's, else the server's (UTC), the same zone their mails use."""

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


class SignedInPagesMiddleware:
    """A signed-in page is never kept by the browser (`Cache-Control: no-store`): Back after
    signing out on a shared computer shows the sign-in page, not the last person's work. A form
    sent after the session ended is kept as a draft (apps.peoples.drafts) for after sign-in."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.user.is_authenticated:
            add_never_cache_headers(response)
        elif request.method == "POST" and is_sign_in_redirect(request, response):
            keep_draft(request)
        return response
