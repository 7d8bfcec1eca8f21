"""What the integration tasks return: JSON objects the result backend stores and pages read."""

from __future__ import annotations

from typing import Required, TypedDict

from apps.core.results import JSONValue


class PublishResult(TypedDict):
    topic: str
    published: bool  # False when an earlier run of the same task id published it
    bytes: int


class NocNotification(TypedDict):
    published: bool
    mailed: bool


class MismatchResult(NocNotification):
    alert: int
    new: bool
    occurrences: int


class PartnerCallResult(TypedDict, total=False):
    """The partner's answer; only `host` and `skipped` when an earlier run of the same task id
    made the (non-idempotent) call."""

    host: Required[str]
    status: int
    ok: bool
    elapsed_ms: float
    body: JSONValue  # decoded JSON when the partner says so, else text
    skipped: str


class RejectedRecord(TypedDict):
    index: int
    uuid: str
    reason: str


class BulkSyncResult(TypedDict, total=False):
    """Only `table` and `duplicate` when the message was applied before."""

    table: Required[str]
    applied: int
    rejected: list[RejectedRecord]
    alerting_jobneeds: list[int]  # work with an answer that raised an alert (each mailed)
    duplicate: bool
