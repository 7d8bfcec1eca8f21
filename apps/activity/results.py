"""What the activity tasks return: JSON objects the result backend stores and pages read."""

from __future__ import annotations

from typing import Required, TypedDict


class ReminderResult(TypedDict):
    sent: int
    failed_for_good: int


class AutocloseResult(TypedDict):
    closed: int
    partially_completed: int
    checkpoints_closed: int
    tickets_raised: int
    mails_sent: int


class FailedJob(TypedDict):
    job_id: int
    error: str


class GenerationResult(TypedDict):
    jobs: int
    instances_created: int
    reminders_created: int
    failed: list[FailedJob]


class TranscriptionResult(TypedDict, total=False):
    """`characters` once transcribed; `already`, `skipped` or `reason` when it was not."""

    detail: Required[int]
    status: Required[str]
    characters: int
    already: bool
    skipped: str
    reason: str


class AlertResult(TypedDict, total=False):
    """`attachments` when the mail went to delivery; `reason` when there was none to send."""

    sent: Required[bool]
    attachments: int
    reason: str
