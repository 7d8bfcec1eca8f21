"""Times as pages print them: one wording everywhere. Site work shows its site's time, anything
else the person's zone; the page says which (`zone_note`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, tzinfo

from django.utils import timezone


def local_label(moment: datetime | None, zone: tzinfo) -> str:
    """`moment` in `zone`, as lists and pages print it: "3 Dec 2026, 14:05" ("" for None)."""
    if moment is None:
        return ""
    local = timezone.localtime(moment, zone)
    return f"{local.day} {local:%b %Y, %H:%M}"


def zone_note(zones: Iterable[str], what: str = "Times") -> str:
    """What a page says about the times it shows of site work: one zone, or each site's own."""
    names = sorted(set(zones))
    if not names:
        return ""
    if len(names) == 1:
        return f"{what} in the site's time zone, {names[0]}."
    return f"{what} in each site's own time zone ({', '.join(names)})."
