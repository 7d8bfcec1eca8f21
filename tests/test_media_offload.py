"""Moving media to the cloud bucket (a local moto S3 server): upload, verify, interruptions."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone
from moto.server import ThreadedMotoServer

from apps.core import offload
from apps.core.models import Attachment
from apps.core.offload import OffloadBusy, offload_media
from tests.support.mqtt import free_port

BUCKET = "intelliwiz-media"


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, settings, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = settings.STORAGES | {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "cloud": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint,
                "region_name": "us-east-1",
                "default_acl": None,
            },
        },
    }
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def attachment(content: bytes, *, days_old: int = 40) -> Attachment:
    item = Attachment(
        owner_type="activity.jobneed",
        owner_uuid="00000000-0000-0000-0000-000000000001",
        filename="photo.jpg",
        size=len(content),
    )
    item.file.save("photo.jpg", ContentFile(content), save=True)
    Attachment.objects.filter(pk=item.pk).update(
        created_at=timezone.now() - timedelta(days=days_old)
    )
    item.refresh_from_db()
    return item


@pytest.mark.django_db(transaction=True)
def test_old_media_moves_verified_and_stays_readable(bucket) -> None:
    old = [attachment(f"photo {n}".encode() * 1000) for n in range(6)]
    recent = attachment(b"new photo", days_old=1)
    seen: list[tuple[int, int]] = []
    report = offload_media(progress=lambda done, total: seen.append((done, total)))
    assert (report["candidates"], report["moved"], report["failed"]) == (6, 6, [])
    assert seen[-1] == (6, 6)
    for item in old:
        item.refresh_from_db()
        assert item.location == "CLOUD" and not default_storage.exists(item.file.name)
        head = bucket.head_object(Bucket=BUCKET, Key=item.file.name)
        assert head["Metadata"]["sha256"] == item.checksum and head["ContentLength"] == item.size
        with item.open() as handle:
            assert handle.read().startswith(b"photo")
    recent.refresh_from_db()
    assert recent.location == "LOCAL" and default_storage.exists(recent.file.name)
    assert offload_media()["candidates"] == 0  # a rerun finds nothing to do


@pytest.mark.django_db(transaction=True)
def test_interruptions_between_steps_are_finished_by_a_rerun(bucket, monkeypatch) -> None:
    uploaded_only = attachment(b"A" * 5000)
    marked_only = attachment(b"B" * 5000)
    # Crash 1: the upload happened, the database update did not.
    bucket.put_object(
        Bucket=BUCKET,
        Key=uploaded_only.file.name,
        Body=b"A" * 5000,
        Metadata={"sha256": offload._sha256(default_storage.path(uploaded_only.file.name))},
    )
    # Crash 2: uploaded and marked moved, but the local copy was not deleted yet.
    bucket.put_object(Bucket=BUCKET, Key=marked_only.file.name, Body=b"B" * 5000)
    Attachment.objects.filter(pk=marked_only.pk).update(location="CLOUD")
    uploads: list[str] = []
    real_upload = bucket.__class__.upload_file

    def counting_upload(self, path, bucket_name, key, **kwargs):
        uploads.append(key)
        return real_upload(self, path, bucket_name, key, **kwargs)

    monkeypatch.setattr(bucket.__class__, "upload_file", counting_upload)
    report = offload_media()
    moved = (report["moved"], report["already_in_bucket"], report["local_copies_removed"])
    assert moved == (1, 1, 1)
    assert uploads == []  # the copy already in the bucket was not uploaded again
    assert not default_storage.exists(marked_only.file.name)
    uploaded_only.refresh_from_db()
    assert uploaded_only.location == "CLOUD"


@pytest.mark.django_db(transaction=True)
def test_one_run_at_a_time_and_a_dry_run_moves_nothing(bucket, capsys) -> None:
    from django.core.cache import cache

    item = attachment(b"C" * 100)
    cache.add(offload.LOCK_KEY, "someone", timeout=60)
    try:
        with pytest.raises(OffloadBusy):
            offload_media()
    finally:
        cache.delete(offload.LOCK_KEY)
    call_command("offload_media", "--dry-run")
    output = capsys.readouterr().out
    assert "candidates: 1" in output and "moved: 0" in output
    item.refresh_from_db()
    assert item.location == "LOCAL"
    call_command("offload_media")
    assert "[##############################] 1/1" in capsys.readouterr().out
