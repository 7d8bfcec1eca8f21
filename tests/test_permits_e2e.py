"""The permit and SLA life cycles end to end: web pages and e-mailed links, a real worker, a
real SMTP server; every mail's recipients, subject, attachment and link are checked."""

from __future__ import annotations

import threading
import time
from email.message import EmailMessage

import pytest
from django.db import connection
from django.test import Client

from apps.work_order_management import actions
from apps.work_order_management.models import Vendor, WorkPermit
from background_tasks import send_email_notification_for_vendor_and_security_after_approval
from tests import factories
from tests.support.waiting import patience

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world():
    client, site = factories.client_and_site("Asia/Dubai")
    hot_work, sla = factories.permit_types(client)
    people = {
        name: factories.person(site, email=f"{name}@facility.test", name=name.title())
        for name in ("requester", "verifier", "approver", "approver2", "stranger")
    }
    vendor = Vendor.objects.create(
        code="V1", name="Sparks Ltd", email="vendor@sparks.test", client=client
    )
    return {"site": site, "hot_work": hot_work, "sla": sla, "vendor": vendor, **people}


def mails_to(sink, address: str, count: int = 1) -> list[EmailMessage]:
    deadline = time.monotonic() + patience(30)
    while time.monotonic() < deadline:
        found = [m for rcpt, m in sink.messages if address in rcpt]
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{count} mail(s) to {address} did not arrive; got {len(found)}")


def link_in(message: EmailMessage) -> str:
    text = message.get_body(("plain",)).get_content()
    url = next(line.split(": ", 1)[1] for line in text.splitlines() if "/permits/decide/" in line)
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def pdf_of(message: EmailMessage) -> bytes:
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    return attachment.get_content()


def logged_in(person) -> Client:
    browser = Client()
    browser.force_login(person)
    return browser


def test_work_permit_life_cycle_through_pages_links_and_mails(worker, mail_sink, world) -> None:
    requester = logged_in(world["requester"])
    response = requester.post(
        f"/permits/new?type={world['hot_work'].pk}",
        {
            "site": world["site"].pk,
            "vendor": world["vendor"].pk,
            "verifiers": [world["verifier"].pk],
            "approvers": [world["approver"].pk, world["approver2"].pk],
            "a-1-1": "Boiler room",
            "a-1-2": "Yes",
            "a-2-1": "guard@facility.test, GUARD@facility.test",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    permit = WorkPermit.objects.get()
    site = world["site"].name

    (to_verifier,) = mails_to(mail_sink, "verifier@facility.test")
    assert to_verifier["Subject"] == f"Hot Work Permit-1-{site}-Verification Pending"
    assert pdf_of(to_verifier).startswith(b"%PDF")
    verifier_link = link_in(to_verifier)

    anonymous = Client()
    page = anonymous.get(verifier_link)  # opening the link decides nothing
    assert page.status_code == 200 and b"Approve" in page.content
    permit.refresh_from_db()
    assert permit.status == "PENDING_VERIFICATION"
    assert logged_in(world["stranger"]).get(verifier_link).status_code == 403
    tampered = verifier_link[:-3] + ("xyz" if not verifier_link.endswith("xyz") else "abc")
    assert anonymous.post(tampered, {"decision": "approve"}).status_code == 410

    assert anonymous.post(verifier_link, {"decision": "approve"}).status_code == 200
    reuse = anonymous.post(verifier_link, {"decision": "reject"})
    assert reuse.status_code == 410 and b"used already" in reuse.content

    (to_approver,) = mails_to(mail_sink, "approver@facility.test")
    (to_approver2,) = mails_to(mail_sink, "approver2@facility.test")
    assert to_approver["Subject"] == f"Hot Work Permit-1-{site}-Approval Pending"
    assert link_in(to_approver) != link_in(to_approver2)
    # One approver decides by the e-mailed link, the other in the web UI.
    assert anonymous.post(link_in(to_approver), {"decision": "approve"}).status_code == 200
    step2 = permit.steps.get(person=world["approver2"])
    ui = logged_in(world["approver2"])
    assert ui.post(f"/permits/steps/{step2.pk}/decide", {"decision": "approve"}).status_code == 200

    to_vendor = mails_to(mail_sink, "vendor@sparks.test")
    to_guard = mails_to(mail_sink, "guard@facility.test")
    assert to_vendor[0]["Subject"] == f"Hot Work Permit-1-{site}-In progress"
    assert pdf_of(to_guard[0]).startswith(b"%PDF")

    requester.post(f"/permits/{permit.pk}", {"action": "return", "a-3-1": "Yes, swept"})
    to_vendor = mails_to(mail_sink, "vendor@sparks.test", 2)
    mails_to(mail_sink, "guard@facility.test", 2)
    assert to_vendor[1]["Subject"] == f"Hot Work Permit-1-{site}-Completed"
    assert b"Yes, swept" not in pdf_of(to_vendor[0])

    # Every mail went once to each recipient: no duplicates from retries or double events.
    recipients = [r for rcpt, _ in mail_sink.messages for r in rcpt]
    assert sorted(recipients) == sorted(
        ["verifier@facility.test", "approver@facility.test", "approver2@facility.test"]
        + ["vendor@sparks.test", "guard@facility.test"] * 2
        + ["requester@facility.test"]  # told of the approval
    )


def test_cancellation_names_who_and_the_latest_remark(worker, mail_sink, world) -> None:
    permit = actions.create_permit(
        permit_type=world["hot_work"],
        site=world["site"],
        vendor=world["vendor"],
        requester=world["requester"],
        answers={1: {1: "Roof"}, 2: {1: "guard@facility.test"}},
        approvers=[world["approver"]],
    )
    mails_to(mail_sink, "approver@facility.test")
    browser = logged_in(world["requester"])
    browser.post(f"/permits/{permit.pk}", {"action": "cancel", "remark": "Weather turned"})
    (to_guard,) = mails_to(mail_sink, "guard@facility.test")
    text = to_guard.get_body(("plain",)).get_content()
    assert "cancelled by Requester" in text and "Remark: Weather turned" in text
    assert list(to_guard.iter_attachments()) == []


def test_rejection_tells_the_requester(worker, mail_sink, world) -> None:
    permit = actions.create_permit(
        permit_type=world["hot_work"],
        site=world["site"],
        vendor=world["vendor"],
        requester=world["requester"],
        answers={1: {1: "Roof"}},
        approvers=[world["approver"]],
    )
    (request,) = mails_to(mail_sink, "approver@facility.test")
    Client().post(link_in(request), {"decision": "reject", "remark": "No fire watch"})
    (notice,) = mails_to(mail_sink, "requester@facility.test")
    assert notice["Subject"].endswith("-Rejected")
    assert "No fire watch" in notice.get_body(("plain",)).get_content()
    permit.refresh_from_db()
    assert permit.status == "REJECTED"


def test_sla_life_cycle_score_month_and_cc(worker, mail_sink, world) -> None:
    browser = logged_in(world["requester"])
    response = browser.post(
        f"/permits/new?type={world['sla'].pk}",
        {
            "site": world["site"].pk,
            "vendor": world["vendor"].pk,
            "approvers": [world["approver"].pk, world["approver2"].pk],
            "service_month": "2026-02-14",
            "a-1-1": "8",
            "a-1-2": "9",
            "a-1-3": "11",
            "a-1-4": "Good",
            "a-2-1": "7",
            "a-2-2": "10",
        },
    )
    assert response.status_code == 302
    report = WorkPermit.objects.get()
    assert str(report.score) == "85.00"
    requests = [mails_to(mail_sink, f"{n}@facility.test")[0] for n in ("approver", "approver2")]
    assert requests[0]["Subject"] == (
        f"{world['site'].name} Vendor Performance Sparks Ltd of February 2026: Approval Pending"
    )
    assert "Score:  85.00" in requests[0].get_body(("plain",)).get_content()
    for message in requests:
        Client().post(link_in(message), {"decision": "approve"})
    (to_vendor,) = mails_to(mail_sink, "vendor@sparks.test")
    assert to_vendor["Subject"] == (
        f"{world['site'].name}: Vendor Performance of Sparks Ltd of February 2026"
    )
    assert sorted(a.strip() for a in to_vendor["Cc"].split(",")) == [
        "approver2@facility.test",
        "approver@facility.test",
    ]
    assert pdf_of(to_vendor).startswith(b"%PDF")


def test_concurrent_last_approvals_complete_the_phase_once(worker, mail_sink, world) -> None:
    permit = actions.create_permit(
        permit_type=world["hot_work"],
        site=world["site"],
        vendor=world["vendor"],
        requester=world["requester"],
        answers={1: {1: "Roof"}},
        approvers=[world["approver"], world["approver2"]],
    )
    mails_to(mail_sink, "approver2@facility.test")
    barrier = threading.Barrier(2)

    def approve(person) -> None:
        barrier.wait()
        try:
            actions.decide(permit.steps.get(person=person).pk, person, approve=True)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=approve, args=(world[n],)) for n in ("approver", "approver2")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    mails_to(mail_sink, "vendor@sparks.test")
    # The worker runs the same mail task again (a retry or a redelivery): nothing new goes out.
    again = send_email_notification_for_vendor_and_security_after_approval.apply_async(
        (permit.pk,), ignore_result=False
    )
    assert again.get(timeout=patience(30)) == {
        "permit": permit.pk,
        "sent": 0,
        "already_sent": 2,  # the vendor's mail and the requester's
        "invalid_addresses": 0,
    }
    # The sink keeps a message before it answers 250, so a mail the task sent is already here.
    assert len([1 for rcpt, _ in mail_sink.messages if "vendor@sparks.test" in rcpt]) == 1
