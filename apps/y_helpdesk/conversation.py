"""A ticket's conversation: its comments and its history (raised, changed, escalated) as one
timeline of sentences people read, each with who and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django.db.models import Field, Model
from django.utils import timezone

from apps.peoples.models import People, PeopleGroup
from apps.y_helpdesk.models import Ticket, TicketComment, TicketEvent

# The fields whose changes the history tells, with the words it uses for them.
TRACKED = {
    "status": "status",
    "priority": "priority",
    "category": "category",
    "site": "site",
    "asset": "asset",
    "assigned_people": "assignee",
    "assigned_group": "group",
    "description": "description",
}


def _field(name: str) -> Field:
    return cast(Field, Ticket._meta.get_field(name))


def tracked_values(ticket: Ticket) -> dict[str, Any]:
    """The tracked fields as stored (ids for relations), to compare before and after a save."""
    return {name: getattr(ticket, _field(name).attname) for name in TRACKED}


def _shown(ticket: Ticket, name: str, value: Any) -> str:
    if value in (None, ""):
        return "none"
    field = _field(name)
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if field.is_relation:
        current: Model | None = getattr(ticket, name)
        if current is not None and current.pk == value:
            return str(getattr(current, "name", current))
        related = field.related_model._default_manager.filter(pk=value).first()  # type: ignore[union-attr]
        return str(getattr(related, "name", related)) if related else "none"
    return str(value)


def changes_between(before: dict[str, Any], ticket: Ticket) -> list[dict[str, str]]:
    """What a save changed, in words: [{"field", "from", "to"}]; a description only says it
    changed."""
    after = tracked_values(ticket)
    changes = []
    for name, word in TRACKED.items():
        if before.get(name) == after[name]:
            continue
        if name == "description":
            changes.append({"field": word, "from": "", "to": ""})
        else:
            changes.append(
                {
                    "field": word,
                    "from": _shown(ticket, name, before.get(name)),
                    "to": _shown(ticket, name, after[name]),
                }
            )
    return changes


@dataclass
class Entry:
    """One line of the conversation: a comment (text set) or an event (what happened)."""

    at: datetime
    who: str
    what: str
    text: str = ""
    kind: str = "event"

    @property
    def when(self) -> str:
        """`at` as the page prints it, in the zone it was given in (the site's)."""
        return f"{self.at.day} {self.at:%b %Y, %H:%M}"


def _change_sentence(change: dict[str, str]) -> str:
    if change["field"] == "description":
        return "edited the description"
    if change["field"] in ("assignee", "group"):
        if change["to"] == "none":
            return f"unassigned {change['from']}"
        return f"assigned it to {change['to']}"
    return f"changed the {change['field']} from {change['from']} to {change['to']}"


def _event_sentence(event: TicketEvent, names: dict[tuple[str, object], str]) -> str:
    details = event.details or {}
    if event.action == TicketEvent.Action.CREATED:
        if details.get("by") == "system":
            return "raised it: its planned work was auto-closed"
        return "raised it"
    if event.action == TicketEvent.Action.ESCALATED:
        sentence = f"escalated it to level {details.get('level')}"
        to = names.get(("people", details.get("people"))) or names.get(
            ("group", details.get("group"))
        )
        return f"{sentence} and assigned it to {to}" if to else sentence
    changes = details.get("changes")
    if changes:
        return "; ".join(_change_sentence(change) for change in changes)
    if details.get("status"):  # history recorded before changes were
        return f"saved it (status {dict(Ticket.Status.choices).get(details['status'], '')})"
    return "saved it"


def _names(events: list[TicketEvent]) -> dict[tuple[str, object], str]:
    """The people and groups escalations assigned `events`' tickets to, by id: two queries."""
    escalations = [e.details or {} for e in events if e.action == TicketEvent.Action.ESCALATED]
    names: dict[tuple[str, object], str] = {}
    people = {d["people"] for d in escalations if d.get("people")}
    groups = {d["group"] for d in escalations if d.get("group")}
    if people:
        names |= {
            ("people", pk): name
            for pk, name in People.objects.filter(pk__in=people).values_list("pk", "name")
        }
    if groups:
        names |= {
            ("group", pk): name
            for pk, name in PeopleGroup.objects.filter(pk__in=groups).values_list("pk", "name")
        }
    return names


def describe(event: TicketEvent) -> str:
    """One history entry in words (the admin's audit trail)."""
    return _event_sentence(event, _names([event]))


def timeline(ticket: Ticket) -> list[Entry]:
    """Comments and history of `ticket`, oldest first, at times in its site's zone, in a fixed
    number of queries."""
    zone = ticket.site.tzinfo
    events = list(ticket.events.select_related("actor").order_by("at", "id"))
    comments = list(ticket.comments.select_related("author").order_by("at", "id"))
    names = _names(events)
    entries = [
        Entry(
            at=timezone.localtime(event.at, zone),
            who=event.actor.name if event.actor else "The system",
            what=_event_sentence(event, names),
        )
        for event in events
    ] + [
        Entry(
            at=timezone.localtime(comment.at, zone),
            who=comment.author.name if comment.author else "Someone",
            what="wrote",
            text=comment.text,
            kind="comment",
        )
        for comment in comments
    ]
    return sorted(entries, key=lambda entry: entry.at)


def latest_comment(ticket: Ticket) -> TicketComment | None:
    return ticket.comments.select_related("author").order_by("-at", "-id").first()
