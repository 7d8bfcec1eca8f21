"""Bulk sync from mobile devices: an allow-list of tables, each with the fields a device may
write; every record must belong to a Jobneed the sender may see (apps.peoples.access).
Valid records are applied in bulk in one transaction; the others are returned with the reason
and kept as RejectedSyncRecord rows, so nothing is lost silently."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from apps.activity.models import MAX_ANSWER_CHARS, Jobneed, JobneedDetails, JobneedStatus
from apps.core.enqueue import enqueue_on_commit
from apps.core.idempotency import claim_side_effect
from apps.integrations.models import RejectedSyncRecord, SyncBatch
from apps.integrations.results import BulkSyncResult, RejectedRecord
from apps.peoples.models import People

MAX_RECORDS = 1000
# A batch travels whole in its task's message: at most this much JSON.
MAX_BATCH_BYTES = 4 * 1024 * 1024
# What a batch keeps of its rejects (every reject is still answered with its reason).
MAX_REJECTS_KEPT = 100
MAX_REJECT_BYTES = 4096
# Work that is over: its answers and times are final.
CLOSED_STATUSES = frozenset({JobneedStatus.COMPLETED, JobneedStatus.AUTOCLOSED})


@dataclass(frozen=True)
class SyncTable:
    model: type[models.Model]
    writable: frozenset[str]
    scope: str  # the path from a row to its Jobneed ("jobneed__"; "" for a Jobneed itself)
    max_chars: dict[str, int] = field(default_factory=dict)  # text fields' caps


SYNC_TABLES: dict[str, SyncTable] = {
    "jobneed": SyncTable(Jobneed, frozenset({"started_at", "ended_at"}), ""),
    "jobneeddetails": SyncTable(
        JobneedDetails, frozenset({"answer"}), "jobneed__", {"answer": MAX_ANSWER_CHARS}
    ),
}

# Upstream's other bulk-sync tables, and what writes their rows here. Upstream upserted any
# column of them by uuid, across clients (a listed defect); each now has a path of its own that
# checks who may write what, so a batch for one of them is refused with the replacement.
UPSTREAM_TABLES: dict[str, str] = {
    "peopleeventlog": "the recordAttendanceEvent mutation",
    "attachment": "the uploadAttachment mutation",
    "ticket": "the createTicket and updateTicket mutations",
    "wom": "POST /permits/api/permits",
    "womdetails": "POST /permits/api/permits (a permit's answers come with it)",
    "asset": "the admin (devices do not write master data)",
    "typeassist": "the admin (devices do not write lookup codes)",
    "business unit": "the admin (devices do not write clients and sites)",
    "assetlog": "nothing: asset logs are not collected here",
    "deviceeventlog": "nothing: device event logs are not collected here",
    "tracking": "nothing: location tracking is not collected here",
}


class SyncError(ValueError):
    """The whole batch is unusable (unknown table, too many records, no sender)."""


def apply_records(records: object, table: str, sender: People) -> BulkSyncResult:
    spec = SYNC_TABLES.get(table)
    if spec is None:
        raise SyncError(f"table {table!r} cannot be synced; allowed: {', '.join(SYNC_TABLES)}")
    if not isinstance(records, list) or len(records) > MAX_RECORDS:
        raise SyncError(f"records must be a list of at most {MAX_RECORDS} objects")
    if sender.client_id is None:
        raise SyncError("the sender belongs to no client")
    rejected: list[RejectedRecord] = []
    keyed: dict[uuid.UUID, tuple[int, dict[str, Any]]] = {}
    for index, record in enumerate(records):
        reason, key = _check_shape(record, spec)
        if key is None:
            rejected.append({"index": index, "uuid": _uuid_text(record), "reason": reason})
        elif key in keyed:
            rejected.append({"index": index, "uuid": str(key), "reason": "uuid repeated in batch"})
        else:
            keyed[key] = (index, record)
    rows = spec.model._default_manager.in_bulk(list(keyed), field_name="uuid")
    reachable = set(
        Jobneed.objects.visible_to(sender)
        .filter(pk__in={_jobneed_id(row, spec) for row in rows.values()})
        .values_list("pk", flat=True)
    )
    changed: list[models.Model] = []
    fields: set[str] = set()
    for key, (index, record) in keyed.items():
        row = rows.get(key)
        reason = (
            "unknown uuid"
            if row is None
            else _check_reach(row, spec, reachable)
            or _assign(row, record, spec)
            or _check_domain(row)
        )
        if row is None or reason:
            rejected.append({"index": index, "uuid": str(key), "reason": reason})
            continue
        changed.append(row)
        fields |= set(record) - {"uuid"}
    alerting: list[int] = []
    with transaction.atomic():
        if changed:
            if spec.model is JobneedDetails:
                fields.add("is_alert")
                alerting = sorted(
                    {r.jobneed_id for r in changed if isinstance(r, JobneedDetails) and r.is_alert}
                )
                Jobneed.objects.filter(pk__in=alerting, has_alerts=False).update(has_alerts=True)
            spec.model._default_manager.bulk_update(changed, sorted(fields))
        RejectedSyncRecord.objects.bulk_create(
            RejectedSyncRecord(
                table=table,
                record_uuid=item["uuid"],
                reason=item["reason"][:300],
                record=_kept(records[item["index"]]),
                sender=sender,
            )
            for item in rejected[:MAX_REJECTS_KEPT]
        )
    rejected.sort(key=lambda item: item["index"])
    return BulkSyncResult(
        table=table, applied=len(changed), rejected=rejected, alerting_jobneeds=alerting
    )


def _uuid_text(record: object) -> str:
    return str(record.get("uuid", ""))[:64] if isinstance(record, dict) else ""


def _check_shape(record: object, spec: SyncTable) -> tuple[str, uuid.UUID | None]:
    if not isinstance(record, dict):
        return "a record must be an object", None
    try:
        key = uuid.UUID(str(record.get("uuid")))
    except ValueError:
        return "uuid is missing or not a UUID", None
    forbidden = sorted(set(record) - spec.writable - {"uuid"})
    if forbidden:
        return f"not writable: {', '.join(forbidden)}", None
    return "", key


def _jobneed_id(row: models.Model, spec: SyncTable) -> int:
    return getattr(row, spec.scope.rstrip("_") + "_id") if spec.scope else row.pk


def _check_reach(row: models.Model, spec: SyncTable, reachable: set[int]) -> str:
    if _jobneed_id(row, spec) not in reachable:  # apps.peoples.access decides
        return "belongs to another client or site, or is not assigned to the sender"
    return ""


def _kept(record: object) -> dict[str, Any]:
    """What is stored of a rejected record: itself, or a note when it is not an object or is
    too large to keep."""
    if not isinstance(record, dict):
        return {}
    size = len(json.dumps(record, default=str))
    if size > MAX_REJECT_BYTES:
        return {"uuid": _uuid_text(record), "truncated": True, "bytes": size}
    return record


def _assign(row: models.Model, record: dict[str, Any], spec: SyncTable) -> str:
    for name, value in record.items():
        if name == "uuid":
            continue
        model_field = spec.model._meta.get_field(name)
        if not isinstance(model_field, models.Field):  # a relation's reverse side
            return f"{name}: not writable"
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            return f"{name}: must be text or a number, not {type(value).__name__}"
        limit = spec.max_chars.get(name)
        if limit is not None and len(str(value)) > limit:
            return f"{name}: {len(str(value))} characters long; at most {limit} are kept"
        try:
            setattr(row, name, model_field.clean(value, row))
        except (ValidationError, TypeError, ValueError) as exc:
            messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
            return f"{name}: {'; '.join(messages)}"
    if isinstance(row, JobneedDetails):
        row.is_alert = row.raises_alert(row.answer)
    return ""


def _check_domain(row: models.Model) -> str:
    """The rules of the work itself: closed work is final; it ends after it starts."""
    jobneed = row.jobneed if isinstance(row, JobneedDetails) else row
    if isinstance(jobneed, Jobneed) and jobneed.status in CLOSED_STATUSES:
        return f"the work is {jobneed.status.lower()}; its record is final"
    started, ended = getattr(row, "started_at", None), getattr(row, "ended_at", None)
    if started and ended and ended < started:
        return "ended_at is before started_at"
    return ""


def apply_records_once(
    records: object, table: str, sender_id: int, message_key: str
) -> BulkSyncResult | None:
    """Apply a message's records unless that message was applied before (None then): the
    ledger entry commits with the rows, all or nothing."""
    sender = People.objects.get(pk=sender_id, is_active=True)
    with transaction.atomic():
        claim = claim_side_effect(f"sync:{message_key}", task_id=message_key)
        if claim is None:
            return None
        result = apply_records(records, table, sender)
        claim.complete()
        SyncBatch.objects.filter(task_id=message_key).update(
            status=SyncBatch.Status.DONE,
            applied=result["applied"],
            rejected=result["rejected"],
            finished_at=timezone.now(),
        )
    return result


def queue_batch(records: object, table: str, sender: People) -> SyncBatch:
    """A device's offline batch: checked as a whole now (table, size), recorded, and applied by
    insert_json_records_async once the caller's transaction commits."""
    if table not in SYNC_TABLES:
        raise SyncError(f"table {table!r} cannot be synced; allowed: {', '.join(SYNC_TABLES)}")
    if not isinstance(records, list) or not 0 < len(records) <= MAX_RECORDS:
        raise SyncError(f"records must be a list of 1 to {MAX_RECORDS} objects")
    size = len(json.dumps(records, default=str))
    if size > MAX_BATCH_BYTES:
        raise SyncError(
            f"the batch is {size} bytes of JSON; at most {MAX_BATCH_BYTES}: send smaller batches"
        )
    batch = SyncBatch.objects.create(
        sender=sender, table=table, records=len(records), task_id=str(uuid.uuid4())
    )
    enqueue_on_commit("insert_json_records_async", records, table, sender.pk, task_id=batch.task_id)
    return batch
