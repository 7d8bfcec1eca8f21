"""Tickets: their e-mails, and set-based escalation under client/site/category-scoped rules."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from typing import Required, TypedDict

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from apps.core.mail import Mail, clean_recipients, deliver, local_times
from apps.peoples.services import group_member_emails
from apps.y_helpdesk.conversation import latest_comment
from apps.y_helpdesk.models import OPEN_TICKET_STATUSES, EscalationMatrix, Ticket, TicketEvent
from apps.y_helpdesk.signals import tickets_escalated

logger = logging.getLogger(__name__)

_MAIL_RELATED = (
    "site",
    "category",
    "assigned_people",
    "assigned_group",
    "created_by",
    "modified_by",
)


def ticket_recipients(ticket: Ticket, group_emails: dict[int, list[str]]) -> list[str]:
    people = (ticket.assigned_people, ticket.created_by, ticket.modified_by)
    group = ticket.assigned_group_id
    return clean_recipients(
        [p.email for p in people if p is not None]
        + (group_emails.get(group, []) if group is not None else [])
    )


def _times(ticket: Ticket, next_escalation_at: datetime | None = None) -> dict[str, str]:
    return local_times(
        ticket.site.tzinfo,
        created_at=ticket.created_at,
        modified_at=ticket.modified_at,
        next_escalation_at=next_escalation_at,
    )


def ticket_mail(ticket_id: int, version: int) -> Mail:
    """'Ticket #N is created/updated at site S' for version `version` of the ticket."""
    ticket = Ticket.objects.select_related(*_MAIL_RELATED).get(pk=ticket_id)
    event = "created" if version == 1 else "updated"
    recipients = ticket_recipients(ticket, group_member_emails([ticket.assigned_group_id]))
    comment = latest_comment(ticket)
    times = _times(ticket) | local_times(
        ticket.site.tzinfo, latest_comment_at=comment.at if comment else None
    )
    return Mail(
        key=f"ticket:{ticket.pk}:v{version}",
        subject=f"Ticket #{ticket.number} is {event} at site {ticket.site.name}",
        to=recipients,
        template="y_helpdesk/mail/ticket",
        context={
            "ticket": ticket,
            "time_zone": ticket.site.time_zone,
            "at": times,
            "latest_comment": comment,
            "link": settings.SITE_URL.rstrip("/")
            + reverse("helpdesk:ticket-detail", args=[ticket.pk]),
        },
    )


class TicketMailResult(TypedDict, total=False):
    """`recipients` when the mail went to delivery; `reason` when it had none."""

    ticket: Required[int]
    sent: Required[bool]
    recipients: int
    reason: str


def send_ticket_mail(ticket_id: int, version: int | None, task_id: str = "") -> TicketMailResult:
    """Send the ticket's created/updated mail once; no valid recipient is a result, not a retry."""
    if version is None:
        version = Ticket.objects.values_list("version", flat=True).get(pk=ticket_id)
    mail = ticket_mail(ticket_id, version)
    if not mail.to:
        return {"ticket": ticket_id, "sent": False, "reason": "no valid recipient"}
    delivery = deliver([mail], task_id=task_id)
    delivery.raise_error()
    return {"ticket": ticket_id, "sent": bool(delivery.sent), "recipients": len(mail.to)}


def record_ticket_saved(
    ticket: Ticket, actor, *, created: bool, changes: list[dict[str, str]] | None = None
) -> None:
    """History for a ticket saved by a person, with what the save changed (in words, for the
    ticket's conversation); bumps its version (the mail's idempotency key)."""
    if not created:
        Ticket.objects.filter(pk=ticket.pk).update(version=F("version") + 1)
        ticket.refresh_from_db(fields=["version"])
    details: dict[str, object] = {"status": ticket.status, "version": ticket.version}
    if changes:
        details["changes"] = changes
    TicketEvent.objects.create(
        ticket=ticket,
        at=timezone.now(),
        actor=actor,
        action=TicketEvent.Action.CREATED if created else TicketEvent.Action.UPDATED,
        details=details,
    )


class EscalationResult(TypedDict):
    escalated: int
    mails_sent: int


def escalate_due_tickets(now: datetime | None = None, task_id: str = "") -> EscalationResult:
    """Move every open ticket whose next level is due one level up, then mail the escalations.

    One UPDATE per rule (a site's own rule wins over its client's general rule for the same
    category and level), so the query count grows with the rules, never with the tickets.
    """
    now = now or timezone.now()
    escalated = 0
    rules = list(EscalationMatrix.objects.filter(job__isnull=True, category__isnull=False))
    # (client, category, level): the rules above all name a category
    sites_with_own_rule: dict[tuple[int, int | None, int], set[int]] = defaultdict(set)
    for rule in rules:
        if rule.site_id:
            sites_with_own_rule[(rule.client_id, rule.category_id, rule.level)].add(rule.site_id)
    with transaction.atomic():
        for rule in rules:
            due = Ticket.objects.filter(
                Q(escalated_at__isnull=True) | Q(escalated_at__lt=now),  # one level per run
                status__in=OPEN_TICKET_STATUSES,
                client_id=rule.client_id,
                category_id=rule.category_id,
                escalation_level=rule.level - 1,
                created_at__lte=now - rule.delay,
            )
            if rule.site_id:
                due = due.filter(site_id=rule.site_id)
            else:
                key = (rule.client_id, rule.category_id, rule.level)
                due = due.exclude(site_id__in=sites_with_own_rule[key])
            changes = {
                "escalation_level": rule.level,
                "escalated_at": now,
                "modified_at": now,
                "version": F("version") + 1,
            }
            if rule.assign_people_id or rule.assign_group_id:
                changes |= {
                    "assigned_people_id": rule.assign_people_id,
                    "assigned_group_id": rule.assign_group_id,
                }
            escalated += due.update(**changes)
        TicketEvent.objects.bulk_create(
            TicketEvent(
                ticket_id=pk,
                at=now,
                action=TicketEvent.Action.ESCALATED,
                details={"level": level, "people": people_id, "group": group_id},
            )
            for pk, level, people_id, group_id in Ticket.objects.filter(
                escalated_at=now
            ).values_list("pk", "escalation_level", "assigned_people_id", "assigned_group_id")
        )
        tickets_escalated.send(
            Ticket, tickets=Ticket.objects.filter(escalated_at=now).select_related("site")
        )
    return EscalationResult(escalated=escalated, mails_sent=notify_escalations(rules, task_id))


def notify_escalations(rules: list[EscalationMatrix], task_id: str = "") -> int:
    """Mail every escalation not mailed yet (also those a crashed run left), once per level."""
    pending = list(
        Ticket.objects.filter(escalation_level__gt=F("escalation_notified_level")).select_related(
            *_MAIL_RELATED
        )
    )
    if not pending:
        return 0
    by_scope = {(r.client_id, r.site_id, r.category_id, r.level): r for r in rules}

    def rule_for(ticket: Ticket, level: int) -> EscalationMatrix | None:
        scope = (ticket.client_id, ticket.site_id, ticket.category_id, level)
        return by_scope.get(scope) or by_scope.get((*scope[:1], None, *scope[2:]))

    groups = group_member_emails(t.assigned_group_id for t in pending)
    mails = []
    for ticket in pending:
        rule = rule_for(ticket, ticket.escalation_level)
        following = rule_for(ticket, ticket.escalation_level + 1)
        next_escalation_at = ticket.created_at + following.delay if following else None
        notify = [rule.notify_email] if rule and rule.notify_email else []
        mails.append(
            Mail(
                key=f"ticket:{ticket.pk}:escalated:{ticket.escalation_level}",
                subject=f"Escalation Level {ticket.escalation_level}: Ticket #{ticket.number} "
                f"at site {ticket.site.name}",
                to=clean_recipients(ticket_recipients(ticket, groups) + notify),
                template="y_helpdesk/mail/ticket",
                context={
                    "ticket": ticket,
                    "time_zone": ticket.site.time_zone,
                    "escalation": rule,
                    "next_escalation": following,
                    "next_escalation_at": next_escalation_at,
                    "at": _times(ticket, next_escalation_at),
                },
            )
        )
    delivery = deliver(mails, task_id=task_id)
    told = [t.pk for t, m in zip(pending, mails, strict=True) if m.key in delivery.settled]
    Ticket.objects.filter(pk__in=told).update(escalation_notified_level=F("escalation_level"))
    delivery.raise_error()
    return len(delivery.sent)
