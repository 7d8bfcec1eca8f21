"""Bulk sync: allow-listed tables and fields, scoping to the sender, bulk apply, kept rejects."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.activity.models import Jobneed, JobneedDetails
from apps.integrations.bulk_sync import SyncError, apply_records
from apps.integrations.models import RejectedSyncRecord
from background_tasks import insert_json_records_async
from tests import factories
from tests.support.waiting import patience


@pytest.fixture
def world(db):
    _, site = factories.client_and_site()
    other_client, other_site = factories.client_and_site()
    now = timezone.now()
    sender = factories.person(site)

    def jobneed(site_, people=None):
        jn = Jobneed.objects.create(
            people=people,
            identifier="TASK",
            description="Meter reading",
            plan_at=now,
            expiry_at=now + timedelta(hours=1),
            site=site_,
            client=site_.client,
        )
        JobneedDetails.objects.create(
            jobneed=jn,
            seqno=1,
            question="Pressure",
            answer_type="NUMERIC",
            min_value=1,
            max_value=5,
        )
        return jn

    return {
        "sender": sender,
        "mine": jobneed(site, sender),  # their own work; what they may sync
        "theirs": jobneed(other_site),
        "other_client": other_client,
    }


def detail(jobneed: Jobneed) -> JobneedDetails:
    return jobneed.details.get()


def test_valid_records_apply_and_the_rest_are_kept_with_reasons(world) -> None:
    mine, theirs = detail(world["mine"]), detail(world["theirs"])
    records = [
        {"uuid": str(mine.uuid), "answer": "9"},
        {"uuid": str(theirs.uuid), "answer": "2"},
        {"uuid": str(mine.uuid), "answer": "3"},
        {"uuid": str(uuid.uuid4()), "answer": "1"},
        {"uuid": str(mine.uuid), "is_alert": False},
        {"uuid": "not-a-uuid", "answer": "1"},
        ["not", "an", "object"],
    ]
    result = apply_records(records, "jobneeddetails", world["sender"])
    assert result["applied"] == 1
    assert [(r["index"], r["reason"]) for r in result["rejected"]] == [
        (1, "belongs to another client or site, or is not assigned to the sender"),
        (2, "uuid repeated in batch"),
        (3, "unknown uuid"),
        (4, "not writable: is_alert"),
        (5, "uuid is missing or not a UUID"),
        (6, "a record must be an object"),
    ]
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.answer, mine.is_alert, theirs.answer) == ("9", True, "")
    assert Jobneed.objects.get(pk=world["mine"].pk).has_alerts is True
    assert result["alerting_jobneeds"] == [world["mine"].pk]
    assert RejectedSyncRecord.objects.count() == 6
    kept = RejectedSyncRecord.objects.get(record_uuid=str(theirs.uuid))
    assert (
        kept.record == {"uuid": str(theirs.uuid), "answer": "2"} and kept.sender == world["sender"]
    )


def test_ids_status_and_tenancy_fields_cannot_be_assigned(world) -> None:
    mine = world["mine"]
    result = apply_records(
        [
            {
                "uuid": str(mine.uuid),
                "status": "COMPLETED",
                "client": world["other_client"].pk,
                "id": 1,
                "started_at": "2026-01-01T10:00:00Z",
            }
        ],
        "jobneed",
        world["sender"],
    )
    assert result["rejected"][0]["reason"] == "not writable: client, id, status"
    assert Jobneed.objects.get(pk=mine.pk).status == "ASSIGNED"


def test_bad_values_and_bad_batches_are_refused_clearly(world) -> None:
    result = apply_records(
        [{"uuid": str(world["mine"].uuid), "started_at": "yesterday"}], "jobneed", world["sender"]
    )
    assert result["rejected"][0]["reason"].startswith("started_at:")
    with pytest.raises(SyncError, match="table 'people' cannot be synced"):
        apply_records([], "people", world["sender"])
    with pytest.raises(SyncError, match="at most 1000"):
        apply_records([{}] * 1001, "jobneed", world["sender"])


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_task_applies_once_per_message(worker, mail_sink) -> None:
    client, site = factories.client_and_site()
    factories.person(site, designation="SITEINCHARGE", email="incharge@facility.test")
    sender = factories.person(site)
    now = timezone.now()
    jobneed = Jobneed.objects.create(
        people=sender,
        identifier="TASK",
        description="Boiler",
        plan_at=now,
        expiry_at=now + timedelta(hours=1),
        site=site,
        client=client,
    )
    item = JobneedDetails.objects.create(
        jobneed=jobneed, seqno=1, question="Pressure", answer_type="NUMERIC", max_value=5
    )
    records = [{"uuid": str(item.uuid), "answer": "8"}, {"uuid": str(uuid.uuid4()), "answer": "1"}]
    outcome = insert_json_records_async.apply_async(
        (records, "jobneeddetails", sender.pk), task_id="sync-1", ignore_result=False
    ).get(timeout=patience(30))
    assert (outcome["applied"], len(outcome["rejected"])) == (1, 1)
    # The same message delivered again (same task id): nothing is applied or kept twice.
    again = insert_json_records_async.apply(
        (records, "jobneeddetails", sender.pk), task_id="sync-1"
    )
    assert again.get() == {"table": "jobneeddetails", "duplicate": True}
    assert RejectedSyncRecord.objects.count() == 1
    # The out-of-range answer raises the readings alert, through the worker, once.
    ((_, message),) = mail_sink.wait_for(1)
    assert message["Subject"].startswith("[READINGS ALERT]")


@pytest.mark.parametrize(
    ("table", "field", "value", "reason"),
    [
        ("jobneed", "started_at", 12345, "started_at: "),
        ("jobneed", "started_at", ["2026-01-01"], "must be text or a number, not list"),
        ("jobneed", "started_at", "not a date", "started_at: "),
        ("jobneeddetails", "answer", {"a": 1}, "must be text or a number, not dict"),
        ("jobneeddetails", "answer", True, "must be text or a number, not bool"),
    ],
)
def test_a_bad_value_rejects_its_record_only(world, table, field, value, reason) -> None:
    mine = world["mine"]
    other = Jobneed.objects.create(
        people=world["sender"],
        identifier="TASK",
        description="Second visit",
        plan_at=mine.plan_at,
        expiry_at=mine.expiry_at,
        site=mine.site,
        client=mine.client,
    )
    JobneedDetails.objects.create(jobneed=other, seqno=1, question="Q", answer_type="NUMERIC")
    target, fine = (mine, other) if table == "jobneed" else (detail(mine), detail(other))
    good = {"uuid": str(fine.uuid), field: "2026-01-01T08:00:00Z" if table == "jobneed" else "4"}
    result = apply_records([{"uuid": str(target.uuid), field: value}, good], table, world["sender"])
    assert result["applied"] == 1
    assert result["rejected"][0]["index"] == 0 and reason in result["rejected"][0]["reason"]


def test_closed_work_is_final_and_work_ends_after_it_starts(world) -> None:
    mine = world["mine"]
    backwards = {
        "uuid": str(mine.uuid),
        "started_at": "2026-01-01T09:00:00Z",
        "ended_at": "2026-01-01T08:00:00Z",
    }
    result = apply_records([backwards], "jobneed", world["sender"])
    assert result["rejected"][0]["reason"] == "ended_at is before started_at"
    Jobneed.objects.filter(pk=mine.pk).update(status="COMPLETED")
    late = apply_records(
        [{"uuid": str(detail(mine).uuid), "answer": "3"}], "jobneeddetails", world["sender"]
    )
    assert late["rejected"][0]["reason"] == "the work is completed; its record is final"
    assert detail(mine).answer == ""


def test_rejects_are_kept_capped_in_count_and_size(world) -> None:
    huge = {"uuid": str(uuid.uuid4()), "answer": "x" * 400_000}
    result = apply_records(
        [dict(huge, uuid=str(uuid.uuid4())) for _ in range(150)], "jobneeddetails", world["sender"]
    )
    assert len(result["rejected"]) == 150
    kept = RejectedSyncRecord.objects.all()
    assert kept.count() == 100
    assert all(row.record.get("truncated") is True for row in kept)


def test_answers_over_the_stored_length_are_rejected_and_oversized_batches_refused(world) -> None:
    from apps.activity.models import MAX_ANSWER_CHARS
    from apps.integrations.bulk_sync import MAX_BATCH_BYTES, queue_batch

    mine = detail(world["mine"])
    long_answer = {"uuid": str(mine.uuid), "answer": "7" * (MAX_ANSWER_CHARS + 1)}
    result = apply_records([long_answer], "jobneeddetails", world["sender"])
    assert result["applied"] == 0
    assert result["rejected"][0]["reason"] == (
        f"answer: {MAX_ANSWER_CHARS + 1} characters long; at most {MAX_ANSWER_CHARS} are kept"
    )
    mine.refresh_from_db()
    assert mine.answer == ""
    fits = {"uuid": str(mine.uuid), "answer": "7" * MAX_ANSWER_CHARS}
    assert apply_records([fits], "jobneeddetails", world["sender"])["applied"] == 1

    # 200 KB answers, as in the report: the batch is refused before it is queued.
    batch = [{"uuid": str(uuid.uuid4()), "answer": "x" * 200_000} for _ in range(30)]
    with pytest.raises(SyncError, match=f"at most {MAX_BATCH_BYTES}: send smaller batches"):
        queue_batch(batch, "jobneeddetails", world["sender"])
