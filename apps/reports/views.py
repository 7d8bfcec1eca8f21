from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.onboarding.models import BusinessUnit
from apps.reports.dashboard import site_dashboard
from apps.reports.models import PdfJob
from apps.reports.pdf_jobs import DocumentError, request_pdf


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    person = request.user
    sites = BusinessUnit.objects.filter(kind=BusinessUnit.Kind.SITE, enabled=True)
    if person.site_id:
        sites = sites.filter(pk=person.site_id)
    elif person.client_id:
        sites = sites.filter(client_id=person.client_id)
    elif not person.is_superuser:
        sites = sites.none()
    boards = [site_dashboard(site) for site in sites.order_by("name")[:50]]
    return render(request, "reports/dashboard.html", {"title": "Dashboard", "boards": boards})


@login_required
@require_POST
def pdf_request(request: HttpRequest) -> JsonResponse:
    try:
        body = json.loads(request.body)
        job = request_pdf(str(body.get("title", "")), body.get("document"), request.user)
    except (ValueError, DocumentError) as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(
        {"job": str(job.uuid), "status_url": reverse("pdf-status", args=[job.uuid])}, status=202
    )


def _own_job(request: HttpRequest, job_uuid) -> PdfJob:
    job = get_object_or_404(PdfJob, uuid=job_uuid, requested_by=request.user)
    if job.expires_at < timezone.now():
        raise Http404("this document has expired")
    return job


@login_required
def pdf_status(request: HttpRequest, job_uuid) -> JsonResponse:
    job = _own_job(request, job_uuid)
    status = {
        "job": str(job.uuid),
        "status": job.status,
        "progress": job.progress,
        "expires_at": job.expires_at.isoformat(),
    }
    if job.status == PdfJob.Status.DONE:
        status["download_url"] = reverse("pdf-download", args=[job.uuid])
    if job.error:
        status["error"] = job.error
    return JsonResponse(status)


@login_required
def pdf_download(request: HttpRequest, job_uuid) -> FileResponse:
    job = _own_job(request, job_uuid)
    if job.status != PdfJob.Status.DONE:
        raise Http404("this document is not ready")
    return FileResponse(
        job.file.open("rb"),
        content_type="application/pdf",
        as_attachment=True,
        filename=f"{job.title[:50] or 'document'}.pdf",
    )


@login_required
def pdf_page(request: HttpRequest, job_uuid) -> HttpResponse:
    job = _own_job(request, job_uuid)
    return render(request, "reports/pdf_job.html", {"title": job.title, "job": job})
