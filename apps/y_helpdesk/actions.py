"""What a person's save of a ticket triggers: history, a new version, the mail after commit."""

from __future__ import annotations

from django.db import transaction

from apps.peoples.models import People
from apps.y_helpdesk.models import Ticket
from apps.y_helpdesk.services import record_ticket_saved
from background_tasks.ticket_tasks import send_ticket_email


def save_ticket(ticket: Ticket, actor: People, *, created: bool) -> None:
    with transaction.atomic():
        if created:
            ticket.created_by = actor
        ticket.modified_by = actor
        ticket.save()
        record_ticket_saved(ticket, actor, created=created)
        send_ticket_email.delay_on_commit(ticket.pk, ticket.version)
