"""What the mobile pipeline's tasks return: importable without GraphQL (a worker loads graphene and
the schema with its first mobile task, apps.mobile.execution)."""

from __future__ import annotations

from typing import Required, TypedDict

from apps.core.results import JSONValue


class MutationResult(TypedDict, total=False):
    """`data` when the mutation ran, `errors` when it did not."""

    ok: Required[bool]
    data: dict[str, JSONValue] | None
    errors: list[str]


class DownloadResult(TypedDict, total=False):
    """The expiring link to the stored data when the query ran, `errors` when it did not."""

    ok: Required[bool]
    errors: list[str]
    download: str
    bytes: int
    expires_at: str
