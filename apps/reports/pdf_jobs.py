"""General PDF jobs: requested by a person, rendered by the worker with progress, kept until
they expire, then cleaned up with their files."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.utils import timezone

from apps.core.enqueue import enqueue_on_commit
from apps.peoples.models import People
from apps.reports.models import PdfJob
from apps.reports.pdf_fonts import FAMILY, unicode_pdf
from apps.reports.results import PdfCleanupResult

MAX_SECTIONS = 200
MAX_ROWS = 5000


class DocumentError(ValueError):
    """The document description cannot be rendered; the message says what is wrong."""


def validate_document(document: Any) -> list[dict[str, Any]]:
    if not isinstance(document, list) or not 1 <= len(document) <= MAX_SECTIONS:
        raise DocumentError(f"a document is a list of 1 to {MAX_SECTIONS} sections")
    rows = 0
    for index, section in enumerate(document):
        if not isinstance(section, dict) or not isinstance(section.get("heading"), str):
            raise DocumentError(f"section {index} needs a heading")
        table = section.get("rows", [])
        if not isinstance(table, list) or not all(isinstance(r, list) for r in table):
            raise DocumentError(f"section {index}: rows must be a list of lists")
        rows += len(table)
    if rows > MAX_ROWS:
        raise DocumentError(f"a document has at most {MAX_ROWS} table rows")
    return document


def request_pdf(title: str, document: Any, person: People) -> PdfJob:
    job = PdfJob.objects.create(
        title=title.strip()[:200] or "Document",
        document=validate_document(document),
        requested_by=person,
        expires_at=timezone.now() + timedelta(hours=settings.PDF_JOB_RETENTION_HOURS),
    )
    enqueue_on_commit("generate_pdf_async", str(job.uuid))
    return job


def _text(value: object) -> str:
    return "" if value is None else str(value)


def render_job(job_uuid: str) -> PdfJob:
    job = PdfJob.objects.get(uuid=job_uuid)
    if job.status == PdfJob.Status.DONE:
        return job

    def progress(percent: int) -> None:
        PdfJob.objects.filter(pk=job.pk).update(status=PdfJob.Status.PROGRESS, progress=percent)

    progress(1)
    try:
        document = validate_document(job.document)
        pdf = unicode_pdf()
        pdf.set_title(_text(job.title))
        pdf.add_page()
        pdf.set_font(FAMILY, "B", 15)
        pdf.multi_cell(0, 10, _text(job.title), new_x="LMARGIN", new_y="NEXT")
        for number, section in enumerate(document, start=1):
            pdf.set_font(FAMILY, "B", 12)
            pdf.multi_cell(0, 9, _text(section["heading"]), new_x="LMARGIN", new_y="NEXT")
            pdf.set_font(FAMILY, size=10)
            for paragraph in section.get("paragraphs", []):
                pdf.multi_cell(0, 6, _text(paragraph), new_x="LMARGIN", new_y="NEXT")
            if section.get("rows"):
                with pdf.table() as table:
                    for row in section["rows"]:
                        table.row([_text(cell) for cell in row])
            progress(1 + int(98 * number / len(document)))
        content = bytes(pdf.output())
    except DocumentError as exc:
        PdfJob.objects.filter(pk=job.pk).update(
            status=PdfJob.Status.FAILED, error=str(exc)[:300], finished_at=timezone.now()
        )
        job.refresh_from_db()
        return job
    job.file.save(f"{job.uuid}.pdf", ContentFile(content), save=False)
    PdfJob.objects.filter(pk=job.pk).update(
        file=job.file.name, status=PdfJob.Status.DONE, progress=100, finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def cleanup_expired(now=None) -> PdfCleanupResult:
    """Delete expired jobs and their files."""
    now = now or timezone.now()
    expired = list(PdfJob.objects.filter(expires_at__lt=now))
    files = 0
    for job in expired:
        name = job.file.name
        if name and job.file.storage.exists(name):
            job.file.storage.delete(name)
            files += 1
    PdfJob.objects.filter(pk__in=[job.pk for job in expired]).delete()
    return {"jobs": len(expired), "files": files}
