"""What every page's header shows about the signed-in person, and where they are; and what
they typed before their session ended, to put back into the form (apps.peoples.drafts)."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone

from apps.peoples.access import role_of
from apps.peoples.drafts import take_draft

# The header's sections, by the first part of the path.
SECTIONS = {
    "dashboard": "dashboard",
    "jobs": "jobs",
    "tickets": "tickets",
    "permits": "permits",
    "reports": "reports",
}


def signed_in(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    first = request.path.strip("/").split("/", 1)[0]
    return {
        "role": role_of(user),
        "nav_section": SECTIONS.get(first, ""),
        "page_time_zone": timezone.get_current_timezone_name(),
        "restored_draft": take_draft(request),
    }
