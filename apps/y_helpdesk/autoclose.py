"""Close expired, unfinished work and tell the site, in three set-based steps.

1. close: one UPDATE per outcome (PARTIALLYCOMPLETED tours in progress with some but not all
   checkpoints done, AUTOCLOSED rest, open checkpoints);
   a row already closed no longer matches, so each Jobneed is closed exactly once however
   often or concurrently this runs.
2. tickets: one system ticket per RAISETICKETNOTIFY Jobneed (unique per Jobneed).
3. notify: after those commit, one mail per closed Jobneed of a notify category that has not
   been told yet, sent once (idempotency keys), then marked notified. A crash between 1 and 3
   leaves rows un-notified, and the next run mails them.
The number of queries does not depend on the number of Jobneeds.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.activity.models import TOURS, Identifier, Jobneed, JobneedStatus
from apps.activity.results import AutocloseResult
from apps.activity.state_machine import autoclosable, partially_completable
from apps.core.mail import Mail, clean_recipients, deliver, local_times
from apps.peoples.services import site_alert_recipients
from apps.y_helpdesk.models import EscalationMatrix, Ticket, TicketEvent
from apps.y_helpdesk.signals import jobneeds_autoclosed

LOOKBACK = timedelta(hours=24)
AUTOCLOSE_IDENTIFIERS = (*TOURS, Identifier.TASK, Identifier.PPM, Identifier.SITEREPORT)
NOTIFY = "AUTOCLOSENOTIFY"
RAISE_TICKET = "RAISETICKETNOTIFY"
TICKET_SOURCE_FIELDS = (
    "identifier",
    "description",
    "plan_at",
    "site_id",
    "client_id",
    "asset_id",
    "ticket_category_id",
    "priority",
    "people_id",
    "group_id",
    "site__time_zone",  # the plan time is told in the site's time, as every page tells it
)


def autoclose(
    now: datetime | None = None, jobneed_id: int | None = None, task_id: str = ""
) -> AutocloseResult:
    now = now or timezone.now()
    with transaction.atomic():
        closed, partially_completed, checkpoints_closed = _close(now, jobneed_id)
        tickets_raised = _raise_tickets(now)
    return AutocloseResult(
        closed=closed,
        partially_completed=partially_completed,
        checkpoints_closed=checkpoints_closed,
        tickets_raised=tickets_raised,
        mails_sent=_notify(now, task_id),
    )


def _close(now: datetime, jobneed_id: int | None) -> tuple[int, int, int]:
    """How many Jobneeds closed, closed partially completed, and checkpoints closed."""
    if jobneed_id is not None:
        expired = Jobneed.objects.filter(pk=jobneed_id, parent__isnull=True)
    else:
        expired = Jobneed.objects.filter(
            parent__isnull=True,
            identifier__in=AUTOCLOSE_IDENTIFIERS,
            expiry_at__gte=now - LOOKBACK,
            expiry_at__lte=now,
        )
    candidates = autoclosable(expired)
    closing = {"autoclosed_at": now, "modified_at": now}
    partially_completed = partially_completable(candidates).update(
        status=JobneedStatus.PARTIALLYCOMPLETED, ended_at=now, **closing
    )
    closed = candidates.update(status=JobneedStatus.AUTOCLOSED, **closing)
    closed_now = Jobneed.objects.filter(parent__isnull=True, autoclosed_at=now)
    jobneeds_autoclosed.send(Jobneed, jobneeds=closed_now.select_related("site"))
    checkpoints = Jobneed.objects.filter(parent__in=closed_now.values("pk"))
    checkpoints_closed = autoclosable(checkpoints).update(
        status=JobneedStatus.AUTOCLOSED, **closing
    )
    return closed, partially_completed, checkpoints_closed


def _raise_tickets(now: datetime) -> int:
    owed = (
        Jobneed.objects.filter(
            parent__isnull=True,
            autoclosed_at__gte=now - LOOKBACK,
            ticket_category__code=RAISE_TICKET,
            ticket__isnull=True,
        )
        .select_related("site")
        .only(*TICKET_SOURCE_FIELDS)
    )
    tickets = [
        Ticket(
            jobneed_id=jn.pk,
            description=f"AUTOCLOSED {_kind(jn.identifier)} {jn.description} planned on "
            f"{timezone.localtime(jn.plan_at, jn.site.tzinfo):%Y-%m-%d %H:%M} "
            f"({jn.site.time_zone}) was not reported in time",
            site_id=jn.site_id,
            client_id=jn.client_id,
            asset_id=jn.asset_id,
            category_id=jn.ticket_category_id,
            priority=jn.priority,
            assigned_people_id=jn.people_id,
            assigned_group_id=jn.group_id,
            source=Ticket.Source.SYSTEM,
        )
        for jn in owed
    ]
    if not tickets:
        return 0
    Ticket.objects.bulk_create(tickets, ignore_conflicts=True)
    new = Ticket.objects.filter(jobneed_id__in=[t.jobneed_id for t in tickets], events__isnull=True)
    events = [
        TicketEvent(
            ticket_id=pk,
            at=now,
            action=TicketEvent.Action.CREATED,
            details={"by": "system", "reason": "jobneed auto-closed", "jobneed": jobneed_id},
        )
        for pk, jobneed_id in new.values_list("pk", "jobneed_id")
    ]
    TicketEvent.objects.bulk_create(events)
    return len(events)


def _kind(identifier: str) -> str:
    return "TOUR" if identifier in TOURS else identifier


def _notify(now: datetime, task_id: str) -> int:
    pending = list(
        Jobneed.objects.filter(
            parent__isnull=True,
            autoclosed_at__gte=now - LOOKBACK,
            autoclose_notified_at__isnull=True,
            ticket_category__code__in=(NOTIFY, RAISE_TICKET),
        ).select_related("site", "people", "group", "ticket", "ticket__category")
    )
    if not pending:
        return 0
    recipients = site_alert_recipients({(j.site_id, j.client_id) for j in pending})
    first_rules = _first_escalation_rules(pending)
    mails = []
    for jobneed in pending:
        ticket = getattr(jobneed, "ticket", None)
        rule = first_rules.get(
            (jobneed.client_id, jobneed.site_id, jobneed.ticket_category_id)
        ) or (first_rules.get((jobneed.client_id, None, jobneed.ticket_category_id)))
        kind = _kind(jobneed.identifier)
        zone = jobneed.site.tzinfo
        local_plan = timezone.localtime(jobneed.plan_at, zone)
        next_escalation_at = ticket.created_at + rule.delay if ticket and rule else None
        mails.append(
            Mail(
                key=f"jobneed:{jobneed.pk}:autoclosed",
                subject=(
                    f"AUTOCLOSE {kind} planned on {local_plan:%d-%b-%Y %H:%M} not reported in time"
                ),
                to=clean_recipients(recipients[(jobneed.site_id, jobneed.client_id)]),
                template="activity/mail/autoclose",
                context={
                    "jobneed": jobneed,
                    "kind": kind.lower(),
                    "time_zone": jobneed.site.time_zone,
                    "assigned_to": jobneed.people or jobneed.group or "nobody",
                    "ticket": ticket,
                    "next_escalation": rule if ticket else None,
                    "next_escalation_at": next_escalation_at,
                    "at": local_times(
                        zone,
                        plan_at=jobneed.plan_at,
                        expiry_at=jobneed.expiry_at,
                        ticket_created_at=ticket.created_at if ticket else None,
                        next_escalation_at=next_escalation_at,
                    ),
                },
            )
        )
    delivery = deliver(mails, task_id=task_id)
    told = [j.pk for j, m in zip(pending, mails, strict=True) if m.key in delivery.settled]
    Jobneed.objects.filter(pk__in=told).update(autoclose_notified_at=now)
    delivery.raise_error()
    return len(delivery.sent)


def _first_escalation_rules(
    pending: list[Jobneed],
) -> dict[tuple[int, int | None, int | None], EscalationMatrix]:
    """The first-level rules by (client, site, category); a site of None is client-wide."""
    rules = EscalationMatrix.objects.filter(
        job__isnull=True,
        level=1,
        client_id__in={j.client_id for j in pending},
        category_id__in={j.ticket_category_id for j in pending},
    )
    return {(r.client_id, r.site_id, r.category_id): r for r in rules}
