"""PDF jobs (progress, expiry, clean-up) and the clean-up of old report files."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from apps.reports.cleanup import OutsideReportsArea, delete_old_files, reports_root
from apps.reports.models import PdfJob
from apps.reports.pdf_jobs import cleanup_expired, render_job, request_pdf
from background_tasks import cleanup_reports_which_are_12hrs_old
from tests import factories

DOCUMENT = [
    {
        "heading": f"Section {n}",
        "paragraphs": ["Readings of the day."],
        "rows": [["Pump", "Pressure"], ["P1", "4.2"]],
    }
    for n in range(1, 6)
]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_pdf_is_rendered_by_the_worker_with_progress_and_expires(worker) -> None:
    _, site = factories.client_and_site()
    owner, stranger = factories.person(site), factories.person(site)
    browser = Client()
    browser.force_login(owner)
    response = browser.post(
        "/reports/pdf",
        {"title": "Daily readings", "document": DOCUMENT},
        content_type="application/json",
    )
    assert response.status_code == 202
    status_url = response.json()["status_url"]
    assert status_url in browser.get(status_url.removesuffix("/status")).content.decode()
    seen, deadline = [], time.monotonic() + 30
    while time.monotonic() < deadline:
        status = browser.get(status_url).json()
        seen.append(status["progress"])
        if status["status"] in ("DONE", "FAILED"):
            break
        time.sleep(0.05)
    assert status["status"] == "DONE" and seen[-1] == 100 and seen == sorted(seen)
    download = browser.get(status["download_url"])
    assert b"".join(download.streaming_content).startswith(b"%PDF")
    stranger_browser = Client()
    stranger_browser.force_login(stranger)
    assert stranger_browser.get(status_url).status_code == 404

    job = PdfJob.objects.get()
    PdfJob.objects.filter(pk=job.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert browser.get(status_url).status_code == 404
    assert cleanup_expired() == {"jobs": 1, "files": 1}
    assert not job.file.storage.exists(job.file.name)


@pytest.mark.django_db
def test_bad_documents_are_refused(client) -> None:
    _, site = factories.client_and_site()
    client.force_login(factories.person(site))
    bad = client.post(
        "/reports/pdf",
        {"title": "x", "document": [{"rows": "nope"}]},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "needs a heading" in bad.json()["error"]


@pytest.mark.django_db
def test_rendering_twice_is_harmless(settings_media) -> None:
    _, site = factories.client_and_site()
    job = request_pdf("Twice", DOCUMENT, factories.person(site))
    first = render_job(str(job.uuid))
    again = render_job(str(job.uuid))
    assert first.file.name == again.file.name and again.status == "DONE"


@pytest.fixture
def settings_media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def make_file(path, hours_old: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"report")
    stamp = time.time() - hours_old * 3600
    os.utime(path, (stamp, stamp))


@pytest.mark.django_db  # the refused call's failure is stored (errors are, results are not)
def test_old_report_files_go_and_nothing_outside_the_area_is_touched(settings_media) -> None:
    root = reports_root()
    make_file(root / "daily" / "old.pdf", 13)
    make_file(root / "daily" / "new.pdf", 1)
    outside = settings_media / "secret.txt"
    make_file(outside, 100)
    (root / "daily" / "escape").symlink_to(outside)
    assert delete_old_files("daily", hours_old=12) == {"deleted": 1, "kept": 1}
    assert (root / "daily" / "new.pdf").exists() and outside.exists()
    for attempt in ("../", "daily/../../", str(settings_media), "/etc"):
        with pytest.raises(OutsideReportsArea):
            delete_old_files(attempt)
    with pytest.raises(ValueError, match="outside the reports area"):  # MIGRATING.md
        cleanup_reports_which_are_12hrs_old.apply(args=["../../"]).get()
    assert str(root).startswith(str(settings.MEDIA_ROOT))
