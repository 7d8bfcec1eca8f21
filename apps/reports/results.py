"""What the report tasks return: JSON objects the result backend stores and pages read."""

from __future__ import annotations

from typing import Required, TypedDict


class DashboardWarmResult(TypedDict):
    sites: int
    lookup_lists: int


class PdfJobResult(TypedDict):
    job: str
    status: str
    error: str


class PdfCleanupResult(TypedDict):
    jobs: int
    files: int


class FileCleanupResult(TypedDict):
    deleted: int
    kept: int


class RequestedReportResult(TypedDict, total=False):
    """`error` when the report could not be built."""

    report: Required[str]
    status: Required[str]
    error: str


class HistoryResult(TypedDict):
    history: int


class ReportMailResult(TypedDict):
    sent: bool
    recipients: int
    invalid_addresses: int


class FileMailResult(TypedDict):
    sent: bool
    recipients: int


class ScheduleFailure(TypedDict):
    schedule: int
    error: str


class SchedulesResult(TypedDict):
    generated: int
    already: int
    failed: list[ScheduleFailure]


class GeneratedMailResult(TypedDict):
    mailed: int
    reports: int
