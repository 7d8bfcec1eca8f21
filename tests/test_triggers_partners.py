"""Partner notifications from their real triggers through a real worker: a client subscribes a
partner endpoint; a ticket created on the web page, its escalation, a permit approved and
completed each reach the partner once through external_api_call_async, with the named
credentials, and the outcome is on the delivery row (admin)."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from apps.activity.models import Jobneed
from apps.integrations.models import PartnerDelivery, PartnerEvent, PartnerSubscription
from apps.work_order_management import actions
from apps.y_helpdesk.models import EscalationMatrix, Ticket
from background_tasks import autoclose_job, ticket_escalation
from tests import factories
from tests.conftest import PARTNER_CREDENTIALS
from tests.support.waiting import patience
from tests.test_permits import new_permit, permit_world

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


class Partner(BaseHTTPRequestHandler):
    received: list[tuple[str, dict]] = []

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Partner.received.append((self.headers.get("Authorization", ""), body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def partner():
    Partner.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Partner)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}/hooks"
    server.shutdown()


def wait_for_deliveries(count: int) -> list[PartnerDelivery]:
    deadline = time.monotonic() + patience(60)
    while PartnerDelivery.objects.filter(status="DELIVERED").count() < count:
        assert time.monotonic() < deadline, list(PartnerDelivery.objects.values())
        time.sleep(0.25)
    time.sleep(0.5)  # a second send would show now
    return list(PartnerDelivery.objects.order_by("pk"))


def subscribe(settings, client, url: str, *events: str) -> None:
    """Subscriptions of `client` naming the credentials "acme", which are the client's (coded
    as the worker's PARTNER_API_CREDENTIALS say)."""
    settings.PARTNER_API_CREDENTIALS = PARTNER_CREDENTIALS
    client.code = PARTNER_CREDENTIALS["acme"]["client"]
    client.save(update_fields=["code"])
    for event in events:
        PartnerSubscription.objects.create(
            client=client, name="CMMS", event=event, url=url, credentials="acme"
        )


def test_ticket_events_reach_the_partner_once_with_the_named_credentials(
    worker, partner, settings
) -> None:
    settings.PARTNER_API_ALLOWED_HOSTS = ["localhost"]
    client, site = factories.client_and_site()
    manager = factories.person(site, is_client_admin=True)
    category = factories.lookup("TICKETCATEGORY", "ELECTRICAL")
    subscribe(settings, client, partner, PartnerEvent.TICKET_CREATED, PartnerEvent.TICKET_ESCALATED)

    browser = Client()
    browser.force_login(manager)
    form = {
        "description": "Lift stuck",
        "site": site.pk,
        "category": category.pk,
        "priority": "HIGH",
        "status": "NEW",
    }
    assert browser.post("/tickets/new", form).status_code == 302
    ticket = Ticket.objects.get()
    assert browser.post(f"/tickets/{ticket.pk}/edit", form | {"status": "OPEN"}).status_code == 302
    EscalationMatrix.objects.create(
        client=client, category=category, level=1, frequency="MINUTE", frequency_value=1
    )
    Ticket.objects.filter(pk=ticket.pk).update(created_at=ticket.created_at - timedelta(hours=1))
    ticket_escalation.apply_async(ignore_result=False).get(timeout=patience(60))
    ticket_escalation.apply_async(ignore_result=False).get(
        timeout=60
    )  # nothing more is due: nothing more is told

    deliveries = wait_for_deliveries(2)
    assert [(d.subject, d.status, d.response_status) for d in deliveries] == [
        (f"ticket:{ticket.pk}", "DELIVERED", 202),
        (f"ticket:{ticket.pk}:level:1", "DELIVERED", 202),
    ]
    assert [(auth, body["event"]) for auth, body in Partner.received] == [
        ("Bearer partner-token", "ticket.created"),
        ("Bearer partner-token", "ticket.escalated"),
    ]
    assert Partner.received[1][1]["level"] == 1 and Partner.received[0][1]["site"] == site.code


def test_permit_approval_and_completion_reach_the_partner(worker, partner, settings) -> None:
    settings.PARTNER_API_ALLOWED_HOSTS = ["localhost"]
    world = permit_world()
    subscribe(
        settings,
        world["site"].client,
        partner,
        PartnerEvent.PERMIT_APPROVED,
        PartnerEvent.PERMIT_COMPLETED,
    )
    permit = new_permit(world, contacts="")
    for role in ("VERIFIER", "APPROVER"):
        for step in permit.steps.filter(role=role):
            actions.decide(step.pk, step.person, approve=True)
    actions.submit_return(permit.pk, {3: {1: "yes"}})
    deliveries = wait_for_deliveries(2)
    assert [d.subject for d in deliveries] == [
        f"permit:{permit.pk}:inprogress",
        f"permit:{permit.pk}:completed",
    ]
    assert [body["event"] for _, body in Partner.received] == [
        "permit.approved",
        "permit.completed",
    ]


def test_an_autoclosed_job_reaches_the_partner_once(worker, partner, settings) -> None:
    settings.PARTNER_API_ALLOWED_HOSTS = ["localhost"]
    client, site = factories.client_and_site()
    _, other_site = factories.client_and_site()
    subscribe(settings, client, partner, PartnerEvent.JOB_AUTOCLOSED)
    now = timezone.now()
    for where, description in ((site, "Night round"), (other_site, "Someone else's round")):
        Jobneed.objects.create(
            identifier="TASK",
            description=description,
            plan_at=now - timedelta(hours=2),
            expiry_at=now - timedelta(minutes=5),
            site=where,
            client=where.client,
        )
    assert autoclose_job.apply_async(ignore_result=False).get(timeout=patience(60))["closed"] == 2
    autoclose_job.apply_async(ignore_result=False).get(
        timeout=60
    )  # nothing more closes: nothing more is told

    [delivery] = wait_for_deliveries(1)
    jobneed = Jobneed.objects.get(site=site)
    assert (delivery.subject, delivery.status) == (f"jobneed:{jobneed.pk}", "DELIVERED")
    [(auth, body)] = Partner.received
    assert auth == "Bearer partner-token"
    assert body["event"] == "job.autoclosed" and body["jobneed"] == str(jobneed.uuid)
    assert (body["site"], body["status"]) == (site.code, "AUTOCLOSED")


def test_a_subscription_to_a_host_off_the_allow_list_is_refused(settings) -> None:
    settings.PARTNER_API_ALLOWED_HOSTS = ["partner.example"]
    client, _ = factories.client_and_site()
    subscription = PartnerSubscription(
        client=client, name="x", event=PartnerEvent.TICKET_CREATED, url="https://evil.example/h"
    )
    with pytest.raises(ValidationError, match="not on the partner allow-list"):
        subscription.full_clean()
    subscription.url, subscription.credentials = "https://partner.example/h", "nobody"
    with pytest.raises(ValidationError, match="no set named 'nobody'"):
        subscription.full_clean()
