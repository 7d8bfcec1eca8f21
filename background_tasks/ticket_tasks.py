"""Ticket tasks: ticket e-mails, escalation and checklist alert mails."""

from __future__ import annotations

from celery import shared_task

from apps.activity.alerts import NothingToAlert, send_alert
from apps.activity.results import AlertResult
from apps.core.tasks.legacy import UpstreamForm, accepts_upstream, rename
from apps.core.tasks.utils import task_retry_policy
from apps.y_helpdesk.services import (
    EscalationResult,
    TicketMailResult,
    escalate_due_tickets,
    send_ticket_mail,
)


@shared_task(name="send_ticket_email", bind=True, **task_retry_policy("email"))
@accepts_upstream(UpstreamForm("ticket=None, id=None", rename(ticket_id="id")))
def send_ticket_email(self, ticket_id: int, version: int | None = None) -> TicketMailResult:
    """'Ticket #N is created/updated at site S' to its assignee, group, creator and modifier."""
    return send_ticket_mail(ticket_id, version, task_id=self.request.id or "")


@shared_task(name="ticket_escalation", bind=True, **task_retry_policy("bulk_email"))
def ticket_escalation(self) -> EscalationResult:
    """Move every open ticket whose next level is due up one level and mail the escalation."""
    return escalate_due_tickets(task_id=self.request.id or "")


@shared_task(name="alert_sendmail", bind=True, **task_retry_policy("email"))
@accepts_upstream(
    UpstreamForm(
        "id, event, atts=False", rename(jobneed_id="id", event="event", attach_files="atts")
    )
)
def alert_sendmail(self, jobneed_id: int, event: str, attach_files: bool = False) -> AlertResult:
    """'[READINGS ALERT]' (event "observation") or deviation mail for a Jobneed, once."""
    try:
        return send_alert(
            jobneed_id, event, attach_files=attach_files, task_id=self.request.id or ""
        )
    except NothingToAlert as exc:
        return {"sent": False, "reason": str(exc)}
