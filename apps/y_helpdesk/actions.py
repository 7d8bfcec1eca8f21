"""What a person's save of a ticket triggers: history, a new version, the mail after commit."""

from __future__ import annotations

from django.db import transaction

from apps.core.enqueue import enqueue_on_commit
from apps.peoples.models import People
from apps.y_helpdesk.conversation import changes_between, tracked_values
from apps.y_helpdesk.models import Ticket, TicketComment
from apps.y_helpdesk.services import record_ticket_saved


def save_ticket(ticket: Ticket, actor: People, *, created: bool, comment: str = "") -> None:
    """Save `ticket` as `actor` changed it, appending `comment` to its conversation."""
    with transaction.atomic():
        before = {}
        if not created:
            stored = Ticket.objects.select_for_update().get(pk=ticket.pk)
            before = tracked_values(stored)
        else:
            ticket.created_by = actor
        ticket.modified_by = actor
        ticket.save()
        changes = [] if created else changes_between(before, ticket)
        record_ticket_saved(ticket, actor, created=created, changes=changes)
        if comment.strip():  # after the change it explains, in the conversation's order
            TicketComment.objects.create(ticket=ticket, author=actor, text=comment.strip())
        enqueue_on_commit("send_ticket_email", ticket.pk, ticket.version)
