"""A ticket's conversation (issue 23, point 4): comments appended with their author and the
site's time, status and assignment changes and escalations as sentences, the ticket mail
carrying the latest comment, and the audit trail read-only in the admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.mobile.schema import schema
from apps.y_helpdesk.actions import save_ticket
from apps.y_helpdesk.models import EscalationMatrix, Ticket, TicketComment, TicketEvent
from apps.y_helpdesk.services import escalate_due_tickets, ticket_mail
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    client, site = factories.client_and_site("Asia/Kolkata")
    tech = factories.person(site, name="Tanvi Patil")
    lead = factories.person(site, name="Imran Shaikh", designation="SITEINCHARGE")
    ticket = Ticket(description="Water under the chiller door", site=site, priority="HIGH")
    save_ticket(ticket, tech, created=True, comment="Pooling near the panel.")
    return {"client": client, "site": site, "tech": tech, "lead": lead, "ticket": ticket}


def browser_of(person) -> Client:
    browser = Client()
    browser.force_login(person)
    return browser


def test_comments_are_appended_never_overwritten(world) -> None:
    ticket, tech, lead = world["ticket"], world["tech"], world["lead"]
    ticket.status = "OPEN"
    save_ticket(ticket, lead, created=False, comment="Clearing the drain now.")
    save_ticket(ticket, tech, created=False, comment="Drain clear; mopping up.")
    said = list(ticket.comments.order_by("at", "id").values_list("author__name", "text"))
    assert said == [
        ("Tanvi Patil", "Pooling near the panel."),
        ("Imran Shaikh", "Clearing the drain now."),
        ("Tanvi Patil", "Drain clear; mopping up."),
    ]


def test_the_ticket_page_tells_its_conversation_in_the_sites_time(world) -> None:
    ticket, lead = world["ticket"], world["lead"]
    TicketComment.objects.filter(ticket=ticket).update(at=datetime(2026, 3, 1, 6, 0, tzinfo=UTC))
    TicketEvent.objects.filter(ticket=ticket).update(at=datetime(2026, 3, 1, 5, 59, tzinfo=UTC))
    browser = browser_of(lead)
    response = browser.post(
        f"/tickets/{ticket.pk}",
        {"comment": "On my way", "status": "OPEN", "assigned_people": lead.pk},
    )
    assert response.status_code == 302 and response["Location"].endswith("#conversation")
    page = browser.get(f"/tickets/{ticket.pk}").content.decode()
    conversation = page[page.index('id="conversation"') :]
    assert "Times in the site's time zone, Asia/Kolkata." in conversation
    # 06:00 UTC is 11:30 in Kolkata: the comment says who and when, in the site's time.
    assert "<strong>Tanvi Patil</strong> <time" in conversation
    assert "1 Mar 2026, 11:30</time>" in conversation
    assert "Pooling near the panel." in conversation and "On my way" in conversation
    assert "Tanvi Patil</strong> raised it" in conversation
    assert "changed the status from New to Open; assigned it to Imran Shaikh" in conversation
    assert "{" not in conversation.split("</ol>")[0]  # sentences, never raw JSON


def test_an_escalation_reads_as_a_sentence(world) -> None:
    ticket, tech = world["ticket"], world["tech"]
    category = factories.lookup("TICKETCATEGORY", "PLUMBING")
    Ticket.objects.filter(pk=ticket.pk).update(
        category=category, created_at=timezone.now() - timedelta(hours=2)
    )
    EscalationMatrix.objects.create(
        client=world["client"],
        category=category,
        level=1,
        frequency="MINUTE",
        frequency_value=30,
        assign_people=tech,
    )
    escalate_due_tickets()
    page = browser_of(world["lead"]).get(f"/tickets/{ticket.pk}").content.decode()
    assert "The system</strong> escalated it to level 1 and assigned it to Tanvi Patil" in page


def test_a_reply_needs_a_comment_or_a_change(world) -> None:
    ticket = world["ticket"]
    response = browser_of(world["lead"]).post(
        f"/tickets/{ticket.pk}", {"comment": " ", "status": ticket.status}
    )
    assert response.status_code == 200
    assert "Write a comment or change the status." in response.content.decode()
    assert TicketEvent.objects.filter(ticket=ticket).count() == 1


def test_the_ticket_page_costs_the_same_queries_however_long_the_conversation(world) -> None:
    ticket, tech, lead = world["ticket"], world["tech"], world["lead"]
    browser = browser_of(lead)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert browser.get(f"/tickets/{ticket.pk}").status_code == 200
        return len(captured)

    first = queries()
    for n in range(15):
        ticket.status = "OPEN" if n % 2 else "ONHOLD"
        save_ticket(ticket, tech if n % 2 else lead, created=False, comment=f"note {n}")
    assert queries() == first


def test_the_ticket_mail_carries_the_latest_comment_and_the_conversations_link(world) -> None:
    ticket = world["ticket"]
    mail = ticket_mail(ticket.pk, ticket.version).message()
    assert "Latest comment:   Pooling near the panel." in mail.body
    assert "(Tanvi Patil, " in mail.body
    assert f"/tickets/{ticket.pk}" in mail.body


def test_the_mobile_apps_comments_are_appended(world, rf) -> None:
    ticket = world["ticket"]
    request = rf.post("/graphql")
    request.user = world["tech"]
    result = schema.execute(
        f'mutation {{ updateTicket(id: "{ticket.pk}", comments: "Fixed") {{ ticket {{ id }} }} }}',
        context_value=request,
    )
    assert result.errors is None, result.errors
    assert list(ticket.comments.values_list("text", flat=True)) == [
        "Pooling near the panel.",
        "Fixed",
    ]


def test_the_admin_shows_the_audit_trail_read_only_in_words_and_site_time(world) -> None:
    ticket = world["ticket"]
    TicketEvent.objects.filter(ticket=ticket).update(at=datetime(2026, 3, 1, 6, 0, tzinfo=UTC))
    operator = factories.person(world["site"], is_staff=True, is_superuser=True)
    page = browser_of(operator).get(f"/admin/y_helpdesk/ticket/{ticket.pk}/change/")
    html = page.content.decode()
    assert "01 Mar 2026, 11:30 (Asia/Kolkata)" in html
    assert "Created: raised it" in html and "Pooling near the panel." in html
    for inline in ("events", "comments"):  # nothing to add: the admin offers no new row
        assert f'name="{inline}-MAX_NUM_FORMS" value="0"' in html
    assert "events-0-DELETE" not in html and "comments-0-DELETE" not in html
    assert 'name="events-0-details"' not in html and "&quot;version&quot;" not in html
