"""auto_close_jobs' service: what closes, who is told, exactly once, in a bounded query count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.activity.models import Jobneed
from apps.core.mail import TransientMailError
from apps.core.models import IdempotencyKey
from apps.y_helpdesk.autoclose import autoclose
from apps.y_helpdesk.models import EscalationMatrix, Ticket
from tests import factories

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def world():
    client, site = factories.client_and_site("Asia/Kolkata")
    in_charge = factories.person(site, designation="SITEINCHARGE", email="incharge@facility.test")
    admin = factories.person(site, is_client_admin=True, email="admin@facility.test")
    factories.person(
        site, designation="SITEINCHARGE", email="unverified@facility.test", is_verified=False
    )
    worker = factories.person(site, email="worker@facility.test")
    return {
        "client": client,
        "site": site,
        "in_charge": in_charge,
        "admin": admin,
        "worker": worker,
    }


def make_jobneed(world, *, category: str = "", expired_minutes_ago: int = 30, **fields) -> Jobneed:
    expiry = NOW - timedelta(minutes=expired_minutes_ago)
    defaults = {
        "identifier": "TASK",
        "description": "Check fire pumps",
        "plan_at": expiry - timedelta(hours=1),
        "expiry_at": expiry,
        "site": world["site"],
        "client": world["client"],
        "people": world["worker"],
    }
    if category:
        defaults["ticket_category"] = factories.lookup("TICKETCATEGORY", category)
    return Jobneed.objects.create(**(defaults | fields))


def test_closes_expired_unfinished_work_of_the_last_day_only(world) -> None:
    expired = make_jobneed(world)
    in_progress = make_jobneed(world, status="INPROGRESS")
    done = make_jobneed(world, status="COMPLETED")
    too_old = make_jobneed(world, expired_minutes_ago=25 * 60)
    not_yet = make_jobneed(world, expired_minutes_ago=-10)
    report = autoclose(now=NOW)
    status = dict(Jobneed.objects.values_list("pk", "status"))
    assert status[expired.pk] == status[in_progress.pk] == "AUTOCLOSED"
    assert (status[done.pk], status[too_old.pk], status[not_yet.pk]) == (
        "COMPLETED",
        "ASSIGNED",
        "ASSIGNED",
    )
    assert report["closed"] == 2


def test_tour_with_some_checkpoints_done_is_partially_completed(world) -> None:
    tour = make_jobneed(world, identifier="INTERNALTOUR", status="INPROGRESS")
    other_tour = make_jobneed(world, identifier="EXTERNALTOUR")
    for seqno, status in ((1, "COMPLETED"), (2, "ASSIGNED"), (3, "ASSIGNED")):
        make_jobneed(world, identifier="INTERNALTOUR", parent=tour, seqno=seqno, status=status)
    make_jobneed(world, identifier="EXTERNALTOUR", parent=other_tour, seqno=1)
    report = autoclose(now=NOW)
    tour.refresh_from_db()
    other_tour.refresh_from_db()
    assert (tour.status, other_tour.status) == ("PARTIALLYCOMPLETED", "AUTOCLOSED")
    checkpoints = list(tour.checkpoints.order_by("seqno").values_list("status", flat=True))
    assert checkpoints == ["COMPLETED", "AUTOCLOSED", "AUTOCLOSED"]
    assert report["checkpoints_closed"] == 3


def test_notify_category_mails_in_charges_and_admins_once(world, mailoutbox) -> None:
    jobneed = make_jobneed(world, category="AUTOCLOSENOTIFY")
    make_jobneed(world)  # no category: closed, nobody told
    autoclose(now=NOW)
    autoclose(now=NOW + timedelta(minutes=30))
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    # 10:30 UTC plan time is 16:00 in Kolkata.
    assert mail.subject == "AUTOCLOSE TASK planned on 01-Jun-2026 16:00 not reported in time"
    assert sorted(mail.to) == ["admin@facility.test", "incharge@facility.test"]
    html = mail.alternatives[0][0]
    assert "Check fire pumps" in html and "Asia/Kolkata" in html and "Ticket #" not in html
    assert "Check fire pumps" in mail.body
    jobneed.refresh_from_db()
    assert jobneed.autoclose_notified_at == NOW


def test_raise_ticket_category_raises_one_ticket_and_names_next_escalation(
    world, mailoutbox
) -> None:
    category = factories.lookup("TICKETCATEGORY", "RAISETICKETNOTIFY")
    EscalationMatrix.objects.create(
        client=world["client"],
        category=category,
        level=1,
        frequency="MINUTE",
        frequency_value=45,
    )
    jobneed = make_jobneed(world, category="RAISETICKETNOTIFY")
    autoclose(now=NOW)
    autoclose(now=NOW + timedelta(minutes=30), jobneed_id=jobneed.pk)
    ticket = Ticket.objects.get()
    assert ticket.jobneed == jobneed and ticket.source == "SYSTEM"
    assert ticket.events.get().action == "CREATED"
    assert len(mailoutbox) == 1
    body = mailoutbox[0].body
    assert f"Ticket #{ticket.number} raised" in body
    assert "Next escalation: level 1 at" in body and "(after 45 minutes)" in body


def test_crash_between_close_and_mail_is_recovered_by_the_next_run(
    world, mailoutbox, monkeypatch
) -> None:
    make_jobneed(world, category="AUTOCLOSENOTIFY")

    def smtp_down(*args, **kwargs):
        raise ConnectionError("smtp down")

    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", smtp_down)
    with pytest.raises(TransientMailError):
        autoclose(now=NOW)
    assert Jobneed.objects.get().status == "AUTOCLOSED"  # the state change committed
    assert not IdempotencyKey.objects.exists()  # the failed send released its claim
    monkeypatch.undo()
    report = autoclose(now=NOW + timedelta(minutes=30))
    assert (report["closed"], report["mails_sent"], len(mailoutbox)) == (0, 1, 1)


def test_a_mail_already_sent_is_not_sent_again_after_a_crash_before_marking(
    world, mailoutbox
) -> None:
    jobneed = make_jobneed(world, category="AUTOCLOSENOTIFY")
    autoclose(now=NOW)
    Jobneed.objects.filter(pk=jobneed.pk).update(autoclose_notified_at=None)  # lost the mark
    assert autoclose(now=NOW + timedelta(minutes=30))["mails_sent"] == 0
    assert len(mailoutbox) == 1
    assert Jobneed.objects.get().autoclose_notified_at is not None


@pytest.mark.parametrize("rows", [5, 60])
def test_query_count_does_not_grow_with_rows(world, rows, django_assert_max_num_queries) -> None:
    for n in range(rows):
        category = ("AUTOCLOSENOTIFY", "RAISETICKETNOTIFY", "")[n % 3]
        make_jobneed(world, category=category, description=f"Job {n}")
    with django_assert_max_num_queries(30):
        report = autoclose(now=NOW)
    assert report["closed"] == rows


def test_the_soft_time_limit_records_what_was_sent_and_releases_the_rest(
    world, monkeypatch
) -> None:
    from billiard.exceptions import SoftTimeLimitExceeded
    from django.core.mail.backends.locmem import EmailBackend

    for n in range(3):
        make_jobneed(world, category="AUTOCLOSENOTIFY", description=f"Job {n}")
    real_send, calls = EmailBackend.send_messages, []

    def send_then_time_out(self, messages):
        calls.append(1)
        if len(calls) == 2:
            raise SoftTimeLimitExceeded()
        return real_send(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", send_then_time_out)
    with pytest.raises(SoftTimeLimitExceeded):
        autoclose(now=NOW)
    assert IdempotencyKey.objects.filter(status="DONE").count() == 1
    assert IdempotencyKey.objects.filter(status="IN_PROGRESS").count() == 0
    assert Jobneed.objects.filter(autoclose_notified_at__isnull=False).count() == 1
    monkeypatch.undo()
    assert autoclose(now=NOW + timedelta(minutes=30))["mails_sent"] == 2  # the rest, not the first
