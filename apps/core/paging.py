"""Lists that page through all their rows: keyset pages (a cursor names the last row shown, the
next page starts after it), so page 400 costs what page 1 does, and filters kept in the URL.

A list orders by one or two columns ending with the primary key (`("-created_at", "-pk")`), a
database index leads with its filter and follows that order, and a page is one query of
`size + 1` rows (the extra row says whether another page follows).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, QueryDict

PAGE_SIZE = 50
AFTER, BEFORE = "after", "before"  # the URL parameters of the cursors


@dataclass
class Page:
    """One page of a list: its rows and the addresses of the pages around it ("" for none)."""

    rows: list[Any]
    first_url: str = ""
    previous_url: str = ""
    next_url: str = ""
    is_first: bool = True


def _encode(values: list[Any]) -> str:
    text = json.dumps([v.isoformat() if hasattr(v, "isoformat") else v for v in values])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str, model: type[Model], names: list[str]) -> list[Any] | None:
    """The cursor's values as the columns hold them, or None for a cursor that is not ours."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(names):
            return None
        return [
            _field(model, name).to_python(value) for name, value in zip(names, raw, strict=True)
        ]
    except (ValueError, TypeError, binascii.Error, ValidationError):
        return None


def _field(model: type[Model], name: str) -> Any:
    return model._meta.pk if name == "pk" else model._meta.get_field(name)


def _beyond(names: list[str], descending: list[bool], values: list[Any], forward: bool) -> Q:
    """Rows after `values` in the list's order (before them when not `forward`)."""
    condition = Q()
    for index in reversed(range(len(names))):
        lookup = "lt" if descending[index] == forward else "gt"
        here = Q(**{f"{names[index]}__{lookup}": values[index]})
        equal = Q(
            **{name: value for name, value in zip(names[:index], values[:index], strict=True)}
        )
        condition = (equal & here) | condition if condition else equal & here
    return condition


def _url(request: HttpRequest, **changes: str) -> str:
    params: QueryDict = request.GET.copy()
    for name in (AFTER, BEFORE):
        params.pop(name, None)
    for name, value in changes.items():
        params[name] = value
    query = params.urlencode()
    return f"{request.path}?{query}" if query else request.path


def keyset_page(
    request: HttpRequest, queryset: QuerySet, order: tuple[str, ...], size: int = PAGE_SIZE
) -> Page:
    """The page of `queryset` (ordered by `order`, ending with "pk" or "-pk") that the request's
    cursor names: the first page without one."""
    names = [name.lstrip("-") for name in order]
    descending = [name.startswith("-") for name in order]
    after = _decode(request.GET.get(AFTER, ""), queryset.model, names)
    before = None if after else _decode(request.GET.get(BEFORE, ""), queryset.model, names)
    if before is not None:  # the page before: read backwards from the cursor, then turn round
        backwards = [name[1:] if name.startswith("-") else f"-{name}" for name in order]
        rows = list(
            queryset.filter(_beyond(names, descending, before, forward=False)).order_by(*backwards)[
                : size + 1
            ]
        )
        more_before = len(rows) > size
        rows = rows[:size][::-1]
        more_after = True
    else:
        if after is not None:
            queryset = queryset.filter(_beyond(names, descending, after, forward=True))
        rows = list(queryset.order_by(*order)[: size + 1])
        more_after = len(rows) > size
        rows = rows[:size]
        more_before = after is not None

    def cursor(row: Any) -> str:
        return _encode([getattr(row, name) for name in names])

    return Page(
        rows=rows,
        first_url=_url(request),
        previous_url=_url(request, **{BEFORE: cursor(rows[0])}) if more_before and rows else "",
        next_url=_url(request, **{AFTER: cursor(rows[-1])}) if more_after and rows else "",
        is_first=not more_before,
    )


class ListFilters(forms.Form):
    """A list's filters, read from the URL (so a filtered list can be shared); every field is
    optional and a bad value is ignored rather than refused."""

    def __init__(self, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(request.GET or None, **kwargs)

    def values(self) -> dict[str, Any]:
        """The filters given and valid (an invalid one is left out, its error shown)."""
        if not self.is_bound:
            return {}
        self.is_valid()
        return {name: value for name, value in self.cleaned_data.items() if value}

    def active(self) -> int:
        """How many filters other than the search the URL turns on (the panel says so; a
        list's own default is not one)."""
        return len([name for name in self.values() if name != "q" and name in self.data])


def day_range(start: date | None, end: date | None, zone: tzinfo) -> dict[str, datetime]:
    """The moments from the start of day `start` to the end of day `end` in `zone`, as
    `gte`/`lt` bounds."""
    bounds = {}
    if start:
        bounds["gte"] = datetime.combine(start, time.min, tzinfo=zone)
    if end:
        bounds["lt"] = datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone)
    return bounds
