"""What someone typed into a form when their session had ended: kept in the new session, said
on the sign-in page, and put back into the same form once they have signed in again.

A form sent after the session ended (it expired, or the person signed out in another tab) is
answered by the sign-in page, not saved. The fields are kept for that page's address for
DRAFT_MINUTES; the first page rendered at that address after signing in takes them back (the
page's script fills the form), so nothing typed is lost and nothing is saved unseen.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.utils import timezone

SESSION_KEY = "form_draft"
DRAFT_MINUTES = 30
# Not kept: the CSRF token (the signed-in page has a new one) and files, which a page cannot
# put back; a draft beyond these sizes keeps what fits.
SKIPPED_FIELDS = frozenset({"csrfmiddlewaretoken"})
MAX_DRAFT_CHARACTERS = 64_000


def is_sign_in_redirect(request: HttpRequest, response: HttpResponse) -> bool:
    """The answer login_required gives: a redirect to the sign-in page back to this page."""
    if response.status_code != 302:
        return False
    target = urlsplit(response.get("Location", ""))
    return target.path == resolve_url(settings.LOGIN_URL) and parse_qs(target.query).get(
        "next"
    ) == [request.get_full_path()]


def keep_draft(request: HttpRequest) -> None:
    fields: dict[str, list[str]] = {}
    size = 0
    for name, values in request.POST.lists():
        size += len(name) + sum(len(v) for v in values)
        if name in SKIPPED_FIELDS or size > MAX_DRAFT_CHARACTERS:
            continue
        fields[name] = values
    if fields:
        request.session[SESSION_KEY] = {
            "path": request.get_full_path(),
            "at": timezone.now().isoformat(),
            "fields": fields,
        }


def _fresh(draft: Any) -> bool:
    try:
        kept_at = datetime.fromisoformat(draft["at"])
    except (KeyError, TypeError, ValueError):
        return False
    return timezone.now() - kept_at < timedelta(minutes=DRAFT_MINUTES)


def draft_waits_for(request: HttpRequest, path: str) -> bool:
    """Whether a draft typed on `path` waits (the sign-in page says so)."""
    draft = request.session.get(SESSION_KEY) or {}
    return draft.get("path") == path and _fresh(draft)


def take_draft(request: HttpRequest) -> dict[str, list[str]] | None:
    """The fields kept for this page, once, for a signed-in person opening it."""
    if request.method != "GET" or not request.user.is_authenticated:
        return None
    if not draft_waits_for(request, request.get_full_path()):
        return None
    return request.session.pop(SESSION_KEY)["fields"]
