"""Work-permit and SLA rules: numbering, validation, score, month, links, the flow's steps."""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from apps.work_order_management import actions
from apps.work_order_management.links import LinkError, decision_url, step_for_token
from apps.work_order_management.models import ApprovalStep, Vendor, WorkPermit
from apps.work_order_management.notifications import (
    notify_contacts,
    remind_pending,
    request_decisions,
)
from apps.work_order_management.services import PermitError, previous_month
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return permit_world()


def permit_world() -> dict:
    """A client's hot-work and SLA permit types, a vendor, a requester, a verifier, two
    approvers."""
    client, site = factories.client_and_site("Asia/Dubai")
    hot_work, sla = factories.permit_types(client)
    return {
        "site": site,
        "hot_work": hot_work,
        "sla": sla,
        "vendor": Vendor.objects.create(
            code="V1", name="Sparks Ltd", email="vendor@sparks.test", client=client
        ),
        "requester": factories.person(site, email="requester@facility.test"),
        "verifier": factories.person(site, email="verifier@facility.test"),
        "approver": factories.person(site, email="approver@facility.test"),
        "approver2": factories.person(site, email="approver2@facility.test"),
    }


def new_permit(world, contacts: str = "guard@facility.test, Guard@facility.test, bad@", **kw):
    answers = {1: {1: "Boiler room"}, 2: {1: contacts}}
    return actions.create_permit(
        permit_type=world["hot_work"],
        site=world["site"],
        vendor=world["vendor"],
        requester=world["requester"],
        answers=kw.pop("answers", answers),
        verifiers=kw.pop("verifiers", [world["verifier"]]),
        approvers=kw.pop("approvers", [world["approver"], world["approver2"]]),
        **kw,
    )


def enqueued(callbacks) -> list[tuple[str, tuple]]:
    """(task name, positional arguments) of each task sent on commit (apply_async partials)."""
    return [(cb.func.__self__.name, cb.args[0]) for cb in callbacks]


def test_numbers_run_per_site_and_bad_contacts_are_refused(world) -> None:
    with pytest.raises(PermitError, match="'bad@' is not an e-mail address"):
        new_permit(world)
    first = new_permit(world, contacts="guard@facility.test")
    second = new_permit(world, contacts="")
    assert (first.number, second.number) == (1, 2)
    assert first.status == "PENDING_VERIFICATION"
    with pytest.raises(PermitError, match=r"question 1 \(Work location\) needs an answer"):
        new_permit(world, answers={1: {1: "  "}})


def test_sla_score_and_service_month(world) -> None:
    report = actions.create_permit(
        permit_type=world["sla"],
        site=world["site"],
        vendor=world["vendor"],
        requester=world["requester"],
        approvers=[world["approver"]],
        # Quality: 8 and 9 count, 11 is over 10, text is a remark: mean 8.5 x 0.6 = 5.1.
        # Safety: 7 and 10: mean 8.5 x 0.4 = 3.4. (5.1 + 3.4) x 10 = 85.00.
        answers={1: {1: "8", 2: "9", 3: "11", 4: "Good team"}, 2: {1: "7", 2: "10"}},
    )
    assert report.score == Decimal("85.00")
    assert report.status == "PENDING_APPROVAL"
    assert previous_month(date(2026, 1, 15)) == date(2025, 12, 1)
    assert previous_month(date(2026, 7, 31)) == date(2026, 6, 1)


def test_the_flow_moves_by_decisions_and_enqueues_each_mail(
    world, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        permit = new_permit(world, contacts="guard@facility.test")
    assert enqueued(callbacks) == [("send_email_notification_for_wp_verifier", (permit.pk,))]

    steps = {s.person_id: s for s in permit.steps.all()}
    with pytest.raises(PermitError, match="belongs to someone else"):
        actions.decide(steps[world["verifier"].pk].pk, world["approver"], approve=True)
    with pytest.raises(PermitError, match="the permit is verification pending"):
        actions.decide(steps[world["approver"].pk].pk, world["approver"], approve=True)

    with django_capture_on_commit_callbacks() as callbacks:
        actions.decide(steps[world["verifier"].pk].pk, world["verifier"], approve=True)
    assert enqueued(callbacks) == [
        ("send_email_notification_for_workpermit_approval", (permit.pk,))
    ]
    with django_capture_on_commit_callbacks() as callbacks:
        actions.decide(steps[world["approver"].pk].pk, world["approver"], approve=True)
    assert enqueued(callbacks) == []  # one approver is still pending
    with django_capture_on_commit_callbacks() as callbacks:
        actions.decide(steps[world["approver2"].pk].pk, world["approver2"], approve=True)
    assert enqueued(callbacks) == [
        ("send_email_notification_for_vendor_and_security_after_approval", (permit.pk,))
    ]
    with pytest.raises(PermitError, match="decided already"):
        actions.decide(steps[world["approver2"].pk].pk, world["approver2"], approve=True)

    with django_capture_on_commit_callbacks() as callbacks:
        actions.submit_return(permit.pk, {3: {1: "Yes, swept"}})
    assert enqueued(callbacks) == [
        ("send_email_notification_for_vendor_and_security_for_rwp", (permit.pk,))
    ]
    with pytest.raises(PermitError, match="completed cannot be cancelled"):
        actions.cancel(permit.pk, world["requester"], "too late")


def test_a_rejection_stops_the_flow_and_tells_the_requester(
    world, django_capture_on_commit_callbacks
) -> None:
    permit = new_permit(world, contacts="", verifiers=[])
    step = permit.steps.get(person=world["approver"])
    with django_capture_on_commit_callbacks() as callbacks:
        actions.decide(step.pk, world["approver"], approve=False, remark="No fire watch")
    assert enqueued(callbacks) == [("work_order_management.notify_permit_rejected", (permit.pk,))]
    permit.refresh_from_db()
    assert permit.status == "REJECTED"
    with pytest.raises(PermitError, match="the permit is rejected"):
        actions.decide(
            permit.steps.get(person=world["approver2"]).pk, world["approver2"], approve=True
        )


def test_requests_carry_a_personal_link_and_the_pdf_once(world, mailoutbox) -> None:
    permit = new_permit(world, contacts="guard@facility.test")
    assert request_decisions(permit.pk, "VERIFIER")["sent"] == 1
    assert request_decisions(permit.pk, "VERIFIER") == {
        "permit": permit.pk,
        "sent": 0,
        "already_sent": 1,
        "invalid_addresses": 0,
    }
    (mail,) = mailoutbox
    assert mail.to == ["verifier@facility.test"]
    assert mail.subject == f"Hot Work Permit-1-{world['site'].name}-Verification Pending"
    name, content, mimetype = mail.attachments[0]
    assert (name, mimetype) == ("Hot-Work-Permit-1.pdf", "application/pdf")
    assert content.startswith(b"%PDF")
    link = next(line for line in mail.body.splitlines() if "/permits/decide/" in line).split(": ")[
        1
    ]
    assert step_for_token(link.rsplit("/", 1)[1]).person == world["verifier"]


def test_contacts_get_one_mail_each_and_bad_addresses_are_counted(world, mailoutbox) -> None:
    permit = new_permit(world, contacts="guard@facility.test", verifiers=[])
    for approver in (world["approver"], world["approver2"]):
        actions.decide(permit.steps.get(person=approver).pk, approver, approve=True)
    permit.answers.filter(section__role="CONTACTS").update(
        answer="guard@facility.test, GUARD@facility.test, not-an-address"
    )
    result = notify_contacts(permit.pk, "approved")
    assert (result["sent"], result["invalid_addresses"]) == (3, 1)  # and the requester is told
    assert sorted(m.to[0] for m in mailoutbox) == [
        "guard@facility.test",
        "requester@facility.test",
        "vendor@sparks.test",
    ]
    assert notify_contacts(permit.pk, "approved")["sent"] == 0


def test_links_refuse_tampering_expiry_reuse_and_resets(world, monkeypatch) -> None:
    permit = new_permit(world, contacts="")
    step = permit.steps.get(person=world["verifier"])
    token = decision_url(step).rsplit("/", 1)[1]
    assert step_for_token(token) == step
    with pytest.raises(LinkError, match="altered"):
        step_for_token(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    real_time = time.time
    monkeypatch.setattr("time.time", lambda: real_time() + 73 * 3600)
    with pytest.raises(LinkError, match="expired"):
        step_for_token(token)
    monkeypatch.undo()
    ApprovalStep.objects.filter(pk=step.pk).update(link_nonce="reset")
    with pytest.raises(LinkError, match="not valid any more"):
        step_for_token(token)
    step.refresh_from_db()
    token = decision_url(step).rsplit("/", 1)[1]
    actions.decide(step.pk, world["verifier"], approve=True)
    with pytest.raises(LinkError, match="used already: you approved"):
        step_for_token(token)


def test_subjects_cannot_inject_headers(world, mailoutbox) -> None:
    world["site"].name = "Tower\r\nBcc: attacker@evil.test"
    world["site"].save()
    permit = new_permit(world, contacts="")
    request_decisions(permit.pk, "VERIFIER")
    message = mailoutbox[0].message()
    assert "Bcc" not in message
    assert message["Subject"].startswith("Hot Work Permit-1-Tower Bcc: attacker@evil.test")


def test_reminders_go_once_per_person_per_interval(world, mailoutbox, settings) -> None:
    settings.WP_REMINDER_INTERVAL_HOURS = 4
    permit = new_permit(world, contacts="", verifiers=[])
    WorkPermit.objects.filter(pk=permit.pk).update(modified_at=timezone.now() - timedelta(hours=5))
    now = timezone.now()
    assert remind_pending(now=now) == {"permits": 1, "sent": 2}
    assert remind_pending(now=now) == {"permits": 1, "sent": 0}  # same interval: nothing
    assert remind_pending(now=now + timedelta(hours=8))["sent"] == 2  # a later interval
    assert len(mailoutbox) == 4
    assert all("a reminder" in m.body for m in mailoutbox)


def test_the_csrf_logger_never_writes_a_decision_token(world, caplog) -> None:
    """A decision posted without its CSRF cookie: Django's django.security.csrf logs the path,
    redacted like every other line."""
    from django.test import Client

    permit = new_permit(world, contacts="")
    url = decision_url(permit.steps.get(person=world["verifier"])).removeprefix(settings.SITE_URL)
    token = url.rsplit("/", 1)[1]
    with caplog.at_level(logging.INFO):
        response = Client(enforce_csrf_checks=True).post(url, {"decision": "approve"})
    assert response.status_code == 403
    csrf = [r for r in caplog.records if r.name == "django.security.csrf"]
    assert csrf and all(token not in r.getMessage() for r in caplog.records)
    assert "/permits/decide/[token]" in csrf[0].getMessage()


def test_every_logger_of_a_celery_process_redacts_tokens_and_their_tracebacks() -> None:
    """As beat and workers start (the Celery app, its Django set up): any logger, a handler
    of its own, an exception's text."""
    import subprocess
    import sys

    from tests.conftest import BASE_DIR, process_env

    probe = """
import io, logging
from intelliwiz_config.celery import app
app.loader.import_default_modules()  # what celery beat and celery worker do at start
stream = io.StringIO()
own = logging.getLogger("celery.beat.probe")
own.addHandler(logging.StreamHandler(stream))
own.propagate = False
own.warning("sent https://x.test/mobile/downloads/%s", "SECRETTOKEN1")
try:
    raise ValueError("/permits/decide/SECRETTOKEN2 expired")
except ValueError:
    own.exception("failed")
print(stream.getvalue())
"""
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=BASE_DIR,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "SECRETTOKEN" not in out
    assert "/mobile/downloads/[token]" in out and "/permits/decide/[token] expired" in out


@pytest.mark.parametrize("who", ["someone else", "the person, after deciding"])
def test_decision_tokens_never_reach_the_logs(world, client, caplog, who) -> None:
    permit = new_permit(world, contacts="")
    step = permit.steps.get(person=world["verifier"])
    url = decision_url(step).removeprefix(settings.SITE_URL)
    token = url.rsplit("/", 1)[1]
    if who == "someone else":
        client.force_login(world["approver"])  # 403: the link is not theirs
    else:
        actions.decide(step.pk, world["verifier"], approve=True)  # 410: used already
    with caplog.at_level(logging.INFO):
        response = client.get(url)
    assert response.status_code in (403, 410)
    assert caplog.records and all(token not in r.getMessage() for r in caplog.records)
    assert "/permits/decide/[token]" in caplog.text
