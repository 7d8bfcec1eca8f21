"""Partner notifications: a client subscribes a partner endpoint to events (a ticket created or
escalated, a work permit approved or completed, planned work auto-closed); each event goes to
each subscription once, through external_api_call_async, and its outcome is kept on a
PartnerDelivery row (admin: Partner deliveries).

The events are announced inside the transaction that makes them true, so a rolled-back change
tells nobody; the calls start after commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

from celery.signals import task_failure, task_retry, task_success
from django.db.models.signals import post_save
from django.utils import timezone

from apps.core.enqueue import enqueue_on_commit
from apps.core.redaction import redact_text
from apps.integrations.models import PartnerDelivery, PartnerEvent, PartnerSubscription
from apps.integrations.partner_api import credentials_problem

PARTNER_TASK = "external_api_call_async"
CALL_TIMEOUT = 10  # seconds for a whole notification call


Happening = tuple[int, str, dict[str, Any]]  # (client id, subject, payload)


def announce(event: str, happenings: Callable[[], Iterable[Happening]]) -> int:
    """Queue `event` for each happening to that client's enabled subscriptions, once per
    subscription and subject; the calls start after commit. `happenings` is only called (and
    what it reads only read) when somebody subscribes to the event."""
    subscribed = PartnerSubscription.objects.filter(event=event, enabled=True)
    if not subscribed.exists():  # the common case: nobody listens, nothing to read
        return 0
    happened = list(happenings())
    clients = {client_id for client_id, _, _ in happened}
    subscriptions = list(subscribed.filter(client_id__in=clients).select_related("client"))
    if not subscriptions:
        return 0
    # A subscription saved before its credentials were tied to clients, or whose credentials
    # were moved to another client since: its deliveries fail, saying why, and nothing is sent.
    refused = {s.pk: credentials_problem(s.credentials, s.client.code) for s in subscriptions}
    deliveries = [
        PartnerDelivery(
            subscription=subscription,
            subject=subject,
            payload={"event": event, "subject": subject, **payload},
            task_id=str(uuid.uuid4()),
            status=PartnerDelivery.Status.FAILED
            if refused[subscription.pk]
            else PartnerDelivery.Status.QUEUED,
            error=refused[subscription.pk][:300],
            finished_at=timezone.now() if refused[subscription.pk] else None,
        )
        for subscription in subscriptions
        for client_id, subject, payload in happened
        if subscription.client_id == client_id
    ]
    PartnerDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)
    new = list(
        PartnerDelivery.objects.filter(
            task_id__in=[d.task_id for d in deliveries], status=PartnerDelivery.Status.QUEUED
        ).select_related("subscription")
    )
    for delivery in new:
        enqueue_on_commit(
            PARTNER_TASK,
            url=delivery.subscription.url,
            method="POST",
            data=delivery.payload,
            timeout=CALL_TIMEOUT,
            credentials=delivery.subscription.credentials or None,
            task_id=delivery.task_id,
        )
    return len(new)


# --- What happened, told where it happens ----------------------------------------------------


def _ticket_payload(ticket) -> dict[str, Any]:
    return {
        "ticket": ticket.number,
        "site": ticket.site.code,
        "status": ticket.status,
        "priority": ticket.priority,
        "level": ticket.escalation_level,
        "description": ticket.description,
        "at": timezone.now().isoformat(),
    }


def ticket_created(sender, instance, created: bool, **kwargs: Any) -> None:
    if created:
        announce(
            PartnerEvent.TICKET_CREATED,
            lambda: [(instance.client_id, f"ticket:{instance.pk}", _ticket_payload(instance))],
        )


def tickets_escalated(sender: type, tickets: Iterable, **kwargs: Any) -> int:
    """Announce escalations (apps.y_helpdesk.signals.tickets_escalated)."""
    return announce(
        PartnerEvent.TICKET_ESCALATED,
        lambda: [
            (t.client_id, f"ticket:{t.pk}:level:{t.escalation_level}", _ticket_payload(t))
            for t in tickets
        ],
    )


def jobneeds_autoclosed(sender: type, jobneeds: Iterable, **kwargs: Any) -> int:
    """Announce auto-closed work (apps.y_helpdesk.signals.jobneeds_autoclosed)."""
    return announce(
        PartnerEvent.JOB_AUTOCLOSED,
        lambda: [
            (
                jobneed.client_id,
                f"jobneed:{jobneed.pk}",
                {
                    "jobneed": str(jobneed.uuid),
                    "site": jobneed.site.code,
                    "description": jobneed.description,
                    "status": jobneed.status,
                    "planned_at": jobneed.plan_at.isoformat(),
                },
            )
            for jobneed in jobneeds
        ],
    )


def permit_changed(sender, instance, update_fields=None, **kwargs: Any) -> None:
    from apps.work_order_management.models import PermitStatus

    if update_fields is not None and "status" not in update_fields:
        return
    event = {
        PermitStatus.INPROGRESS: PartnerEvent.PERMIT_APPROVED,  # a work permit, approved
        PermitStatus.APPROVED: PartnerEvent.PERMIT_APPROVED,  # an SLA report, approved
        PermitStatus.COMPLETED: PartnerEvent.PERMIT_COMPLETED,
    }.get(instance.status)
    if event is not None:
        announce(
            event,
            lambda: [
                (
                    instance.client_id,
                    f"permit:{instance.pk}:{instance.status.lower()}",
                    {
                        "permit": instance.number,
                        "type": instance.permit_type.name,
                        "site": instance.site.code,
                        "vendor": instance.vendor.name,
                        "status": instance.status,
                        "at": timezone.now().isoformat(),
                    },
                )
            ],
        )


# --- The outcome of each call, recorded where the worker ran it ------------------------------


def _record(task_id: str | None, **fields: Any) -> None:
    if task_id:
        PartnerDelivery.objects.filter(task_id=task_id).update(**fields)


def _delivered(sender=None, result=None, **kwargs: Any) -> None:
    if getattr(sender, "name", "") != PARTNER_TASK or not isinstance(result, dict):
        return
    ok = bool(result.get("ok"))
    _record(
        sender.request.id,
        status=PartnerDelivery.Status.DELIVERED if ok else PartnerDelivery.Status.FAILED,
        response_status=result.get("status"),
        error="" if ok else f"the partner answered {result.get('status')}",
        finished_at=timezone.now(),
    )


def _failed(sender=None, task_id=None, exception=None, **kwargs: Any) -> None:
    if getattr(sender, "name", "") == PARTNER_TASK:
        _record(
            task_id,
            status=PartnerDelivery.Status.FAILED,
            error=redact_text(f"{type(exception).__name__}: {exception}")[:300],
            finished_at=timezone.now(),
        )


def _retrying(sender=None, request=None, reason=None, **kwargs: Any) -> None:
    if getattr(sender, "name", "") == PARTNER_TASK:
        _record(
            getattr(request, "id", None),
            status=PartnerDelivery.Status.RETRYING,
            error=redact_text(str(reason))[:300],
        )


def connect_partner_events() -> None:
    from apps.work_order_management.models import WorkPermit
    from apps.y_helpdesk import signals as helpdesk_signals
    from apps.y_helpdesk.models import Ticket

    post_save.connect(ticket_created, sender=Ticket, dispatch_uid="partner-ticket-created")
    helpdesk_signals.tickets_escalated.connect(
        tickets_escalated, dispatch_uid="partner-tickets-escalated"
    )
    helpdesk_signals.jobneeds_autoclosed.connect(
        jobneeds_autoclosed, dispatch_uid="partner-jobneeds-autoclosed"
    )
    post_save.connect(permit_changed, sender=WorkPermit, dispatch_uid="partner-permit-changed")
    task_success.connect(_delivered, dispatch_uid="partner-delivered")
    task_failure.connect(_failed, dispatch_uid="partner-failed")
    task_retry.connect(_retrying, dispatch_uid="partner-retrying")
