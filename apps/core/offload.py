"""Move old local media to the cloud bucket, safely interruptible at any point.

Per attachment: upload under its storage key (skipped when the bucket already holds the same
bytes), verify size and checksum in the bucket, mark it moved in the database, then delete the
local file. A run that dies after the upload re-verifies and skips it; one that dies after the
database update finds a moved attachment whose local copy remains and deletes that copy. One run
at a time (a lock in the shared cache); uploads run in a bounded thread pool.

The cloud bucket is optional: with no MEDIA_CLOUD_BUCKET (or media already in object storage)
a run is skipped, with the reason in its report and a log line, and nothing fails.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, Required, TypedDict

from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import FileSystemStorage, default_storage, storages
from django.db import connection
from django.utils import timezone

from apps.core.models import Attachment

logger = logging.getLogger(__name__)
LOCK_KEY = "media-offload:lock"
LOCK_SECONDS = 6 * 60 * 60


class OffloadBusy(Exception):
    """Another run holds the lock."""


class OffloadFailure(TypedDict):
    attachment: str  # its uuid
    error: str


class OffloadResult(TypedDict, total=False):
    """Every count of a run; only `skipped` when another run holds the lock."""

    candidates: int
    moved: int
    already_in_bucket: int
    local_copies_removed: int
    failed: list[OffloadFailure]
    bytes: int
    dry_run: bool
    skipped: Required[str]


def _nothing_yet(dry_run: bool, skipped: str = "") -> OffloadResult:
    """A run's counts before it starts; `skipped` says why it will not, if it will not."""
    return OffloadResult(
        candidates=0,
        moved=0,
        already_in_bucket=0,
        local_copies_removed=0,
        failed=[],
        bytes=0,
        dry_run=dry_run,
        skipped=skipped,
    )


def not_configured_reason() -> str:
    """Why media cannot be moved here ("" when it can)."""
    if not isinstance(default_storage, FileSystemStorage):
        return "media is not on local disk (it is in object storage already)"
    if "cloud" not in settings.STORAGES:
        return "MEDIA_CLOUD_BUCKET is not set: there is no bucket to move media to"
    return ""


def _bucket() -> tuple[Any, str]:
    storage: Any = storages["cloud"]  # an S3Storage (settings.STORAGES)
    return storage.connection.meta.client, storage.bucket_name


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _in_bucket(client: Any, bucket: str, key: str, size: int, checksum: str) -> bool:
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except client.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return bool(
        head["ContentLength"] == size and head.get("Metadata", {}).get("sha256") == checksum
    )


def offload_media(
    *,
    older_than: timedelta | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> OffloadResult:
    reason = not_configured_reason()
    if reason:
        logger.warning('media_offload_skipped reason="%s"', reason)
        return _nothing_yet(dry_run, skipped=reason)
    client, bucket = _bucket()
    token = uuid.uuid4().hex
    if not cache.add(LOCK_KEY, token, timeout=LOCK_SECONDS):
        raise OffloadBusy("another media move is running")
    try:
        return _run(client, bucket, older_than, dry_run, progress)
    finally:
        if cache.get(LOCK_KEY) == token:
            cache.delete(LOCK_KEY)


def _run(
    client: Any,
    bucket: str,
    older_than: timedelta | None,
    dry_run: bool,
    progress: Callable[[int, int], None] | None,
) -> OffloadResult:
    report = _nothing_yet(dry_run)
    # Moves interrupted after the database update: the bucket copy is the record; drop ours.
    for attachment in Attachment.objects.filter(location=Attachment.Location.CLOUD).only("file"):
        name = attachment.file.name
        if name and default_storage.exists(name):
            if not dry_run:
                default_storage.delete(name)
            report["local_copies_removed"] += 1
    age = (
        older_than if older_than is not None else timedelta(days=settings.MEDIA_OFFLOAD_AFTER_DAYS)
    )
    candidates = list(
        Attachment.objects.filter(
            location=Attachment.Location.LOCAL, created_at__lte=timezone.now() - age
        ).order_by("pk")
    )
    report["candidates"] = len(candidates)
    if dry_run:
        report["bytes"] = sum(a.size for a in candidates)
        return report

    def move(attachment: Attachment) -> tuple[str, int, str]:
        try:
            return _move_one(client, bucket, attachment)
        except Exception as exc:  # one file's failure is reported; the others still move
            logger.warning("media_offload_failed attachment=%s error=%s", attachment.pk, exc)
            return "failed", 0, f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()  # each pool thread has its own database connection

    with ThreadPoolExecutor(max_workers=settings.MEDIA_OFFLOAD_CONCURRENCY) as pool:
        for done, (attachment, (outcome, size, error)) in enumerate(
            zip(candidates, pool.map(move, candidates), strict=True), start=1
        ):
            if outcome == "failed":
                report["failed"].append({"attachment": str(attachment.uuid), "error": error})
            else:
                report["moved"] += 1
                report["bytes"] += size
                report["already_in_bucket"] += outcome == "already"
            if progress:
                progress(done, len(candidates))
    return report


def _move_one(client: Any, bucket: str, attachment: Attachment) -> tuple[str, int, str]:
    key = attachment.file.name
    if not key or not default_storage.exists(key):
        raise FileNotFoundError(f"local file {key} is missing")
    path = default_storage.path(key)
    size = default_storage.size(key)
    checksum = _sha256(path)
    if attachment.checksum and attachment.checksum != checksum:
        raise ValueError("the local file does not match its recorded checksum")
    outcome = "already"
    if not _in_bucket(client, bucket, key, size, checksum):
        client.upload_file(path, bucket, key, ExtraArgs={"Metadata": {"sha256": checksum}})
        outcome = "uploaded"
        if not _in_bucket(client, bucket, key, size, checksum):
            raise ValueError("the bucket copy does not match the local file")
    Attachment.objects.filter(pk=attachment.pk, location=Attachment.Location.LOCAL).update(
        location=Attachment.Location.CLOUD, moved_at=timezone.now(), size=size, checksum=checksum
    )
    default_storage.delete(key)
    return outcome, size, ""
