from __future__ import annotations

import json

from django import forms
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.peoples.access import visible_sites
from apps.reports.builders import REPORT_TYPES
from apps.reports.dashboard import site_dashboard
from apps.reports.models import GeneratedReport, PdfJob
from apps.reports.pdf_jobs import DocumentError, request_pdf
from background_tasks.report_tasks import create_save_report_async


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    sites = visible_sites(request.user)
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
    job = get_object_or_404(PdfJob.objects.visible_to(request.user), uuid=job_uuid)
    if job.expires_at < timezone.now():
        raise Http404("this document has expired")
    return job


def _progress(item: PdfJob | GeneratedReport, key: str, download_route: str) -> dict:
    """What a progress page polls: state, percentage, and the download link once done."""
    status = {key: str(item.uuid), "status": item.status, "progress": item.progress}
    if item.status == "DONE":
        status["download_url"] = reverse(download_route, args=[item.uuid])
    if item.error:
        status["error"] = item.error
    return status


@login_required
def pdf_status(request: HttpRequest, job_uuid) -> JsonResponse:
    job = _own_job(request, job_uuid)
    return JsonResponse(
        _progress(job, "job", "pdf-download") | {"expires_at": job.expires_at.isoformat()}
    )


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
    return render(
        request,
        "reports/progress.html",
        {"title": job.title, "item": job, "status_url": reverse("pdf-status", args=[job.uuid])},
    )


class ReportForm(forms.Form):
    report_type = forms.ChoiceField(choices=[(k, title) for k, (title, _) in REPORT_TYPES.items()])
    site = forms.ModelChoiceField(queryset=None)
    date_from = forms.DateField()
    date_to = forms.DateField()
    format = forms.ChoiceField(choices=[("pdf", "PDF"), ("xlsx", "Excel (XLSX)")])

    def __init__(self, *args, person, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = visible_sites(person)


@login_required
def report_request(request: HttpRequest) -> HttpResponse:
    form = ReportForm(request.POST or None, person=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with transaction.atomic():
            report = GeneratedReport.objects.create(
                report_type=data["report_type"],
                site=data["site"],
                date_from=data["date_from"],
                date_to=data["date_to"],
                file_format=data["format"],
                requested_by=request.user,
            )
            create_save_report_async.delay_on_commit(
                {
                    "report_uuid": str(report.uuid),
                    "report_type": data["report_type"],
                    "date_from": data["date_from"].isoformat(),
                    "date_to": data["date_to"].isoformat(),
                    "format": data["format"],
                },
                request.user.client_id,
                request.user.email,
                request.user.pk,
            )
        return redirect("report-page", report.uuid)
    return render(request, "core/form.html", {"title": "Request a report", "form": form})


@login_required
def report_page(request: HttpRequest, report_uuid) -> HttpResponse:
    report = get_object_or_404(GeneratedReport.objects.visible_to(request.user), uuid=report_uuid)
    return render(
        request,
        "reports/progress.html",
        {
            "title": "Your report",
            "item": report,
            "status_url": reverse("report-status", args=[report.uuid]),
        },
    )


@login_required
def report_status(request: HttpRequest, report_uuid) -> JsonResponse:
    report = get_object_or_404(GeneratedReport.objects.visible_to(request.user), uuid=report_uuid)
    return JsonResponse(_progress(report, "report", "report-download"))


@login_required
def report_download(request: HttpRequest, report_uuid) -> FileResponse:
    report = get_object_or_404(GeneratedReport.objects.visible_to(request.user), uuid=report_uuid)
    if report.status != "DONE":
        raise Http404("this report is not ready")
    return FileResponse(
        report.file.open("rb"),
        as_attachment=True,
        filename=f"{report.report_type}-{report.date_from}.{report.file_format}",
    )
