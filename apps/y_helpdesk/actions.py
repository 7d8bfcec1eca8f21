"""What a person's save of a ticket triggers: history, a new version, the mail after commit."""

from __future__ import annotations

from django.db import transaction

from apps.core.enqueue import enqueue_on_commit
from apps.peoples.models import People
from apps.y_helpdesk.models import Ticket
from apps.y_helpdesk.services import record_ticket_saved


def save_ticket(ticket: Ticket, actor: People, *, created: bool) -> None:
    with transaction.atomic():
        if created:
            ticket.created_by = actor
        ticket.modified_by = actor
        ticket.save()
        record_ticket_saved(ticket, actor, created=created)
        enqueue_on_commit("send_ticket_email", ticket.pk, ticket.version)
