from __future__ import annotations

import json
from datetime import date, datetime
from email.utils import parseaddr

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.activity.models import JobneedStatus, Priority
from apps.core.enqueue import enqueue_on_commit
from apps.peoples.access import visible_sites
from apps.reports.builders import REPORT_TYPES, ReportError, check_range, report_title
from apps.reports.dashboard import site_dashboards
from apps.reports.freshness import forget_site_dashboard
from apps.reports.models import GeneratedReport, PdfJob, ProductionStatus
from apps.reports.pdf_jobs import DocumentError, request_pdf
from apps.reports.services import report_headline, reports_area_path, spend_outside_mail


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":  # "Refresh": recompute now rather than wait for the warm-up
        for site in _dashboard_sites(request.user):
            forget_site_dashboard(site)
        return redirect("dashboard")
    return render(
        request, "reports/dashboard.html", {"title": "Dashboard", "boards": _boards(request.user)}
    )


def _dashboard_sites(person) -> list:
    return list(visible_sites(person).order_by("name")[:50])


def _boards(person) -> list[dict]:
    sites = _dashboard_sites(person)
    return [
        readable_dashboard(site, board)
        for site, board in zip(sites, site_dashboards(sites), strict=True)
    ]


def dashboard_report(boards: list[dict], now: datetime) -> dict:
    """The dashboard as a report's table (one row per site) and summary, for mailing: each
    site's day as a date and its "as of" as a time in the site's zone, named beside them (the
    cells travel as ISO text; `column_types` says which are dates)."""
    rows = [
        [
            board["site"].name,
            board["day"].isoformat(),
            timezone.localtime(board["as_of"], board["site"].tzinfo)
            .replace(tzinfo=None, microsecond=0)
            .isoformat()
            if board["as_of"]
            else "",
            board["site"].time_zone,
            board["jobs_total"],
            ", ".join(f"{label} {n}" for _, label, n in board["jobs"]),
            board["tickets_total"],
            ", ".join(f"{label} {n}" for _, label, n in board["tickets"]),
            board["attendance"]["punches"],
            board["attendance"]["people"],
        ]
        for board in boards
    ]
    return {
        "title": f"Dashboard of {timezone.localtime(now):%d %b %Y}",
        "columns": [
            "Site",
            "Day (site)",
            "As of (site time)",
            "Time zone",
            "Jobs today",
            "Jobs by status",
            "Open tickets",
            "Tickets by priority",
            "Punches",
            "People",
        ],
        "column_types": ["text", "date", "datetime", "text"],
        "rows": rows,
        "summary": {
            "Jobs today": sum(b["jobs_total"] for b in boards),
            "Open tickets": sum(b["tickets_total"] for b in boards),
            "Punches": sum(b["attendance"]["punches"] for b in boards),
        },
        "time_note": "Each site's day and time are its own, in the time zone named beside them.",
    }


def readable_dashboard(site, board: dict) -> dict:
    """A cached dashboard with human labels for its codes and its "as of" time in the site's
    time zone."""
    computed = board.get("computed_at")
    return {
        "site": site,
        "day": date.fromisoformat(board["day"]),
        "jobs": [
            (code, _label(JobneedStatus, code), count)
            for code, count in sorted(board["jobs_by_status"].items())
        ],
        "jobs_total": sum(board["jobs_by_status"].values()),
        "tickets": [
            (code, _label(Priority, code), board["open_tickets_by_priority"][code])
            for code in ("HIGH", "MEDIUM", "LOW")
            if code in board["open_tickets_by_priority"]
        ],
        "tickets_total": sum(board["open_tickets_by_priority"].values()),
        "attendance": board["attendance"],
        "as_of": datetime.fromisoformat(computed) if computed else None,
    }


def _label(choices, code: str) -> str:
    try:
        return choices(code).label
    except ValueError:
        return code.replace("_", " ").capitalize()


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
    status = {
        key: str(item.uuid),
        "status": item.status,
        "label": item.get_status_display(),
        "progress": item.progress,
    }
    if item.status == ProductionStatus.DONE:
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
        {
            "title": job.title,
            "item": job,
            "status_url": reverse("pdf-status", args=[job.uuid]),
            "download_url": _progress(job, "job", "pdf-download").get("download_url", ""),
        },
    )


DATE_PICKER = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class ReportForm(forms.Form):
    report_type = forms.ChoiceField(choices=[(k, title) for k, (title, _) in REPORT_TYPES.items()])
    site = forms.ModelChoiceField(queryset=None)
    date_from = forms.DateField(label="From", widget=DATE_PICKER)
    date_to = forms.DateField(
        label="To", widget=DATE_PICKER, help_text="Both days included, in the site's time zone"
    )
    format = forms.ChoiceField(choices=[("pdf", "PDF"), ("xlsx", "Excel (XLSX)")])

    def __init__(self, *args, person, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        sites = visible_sites(person)
        self.fields["site"].queryset = sites
        only = sites[:2]
        if len(only) == 1:  # one site in reach: nothing to choose
            self.fields["site"].initial = only[0].pk

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end:
            # The same rule the worker applies (builders.check_range), said before it is queued.
            try:
                check_range(start, end)
            except ReportError as exc:
                self.add_error("date_to", str(exc))
        return data


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
            enqueue_on_commit(
                "create_save_report_async",
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
    today = timezone.localdate()
    if not form.is_bound:
        form.initial = {"date_from": today.replace(day=1), "date_to": today}
    return render(
        request,
        "core/form.html",
        {
            "title": "Request a report",
            "form": form,
            "intro": "The report is built in the background: its page shows the progress and "
            "the download, and you get the link by mail.",
            "submit_label": "Request report",
        },
    )


@login_required
def report_page(request: HttpRequest, report_uuid) -> HttpResponse:
    report = get_object_or_404(GeneratedReport.objects.visible_to(request.user), uuid=report_uuid)
    return render(
        request,
        "reports/progress.html",
        {
            "title": report_title(report.report_type),
            "subtitle": f"{report.site.name}, {report.date_from:%d %b %Y} to "
            f"{report.date_to:%d %b %Y}, {report.file_format.upper()}",
            "item": report,
            "status_url": reverse("report-status", args=[report.uuid]),
            "send_url": reverse("report-send", args=[report.uuid]),
            # Ready already: the page offers the file at once, without waiting for a poll.
            "download_url": _progress(report, "report", "report-download").get("download_url", ""),
        },
    )


@login_required
def report_status(request: HttpRequest, report_uuid) -> JsonResponse:
    report = get_object_or_404(GeneratedReport.objects.visible_to(request.user), uuid=report_uuid)
    return JsonResponse(_progress(report, "report", "report-download"))


@login_required
def report_download(request: HttpRequest, report_uuid) -> FileResponse:
    report = get_object_or_404(GeneratedReport.objects.visible_to(request.user), uuid=report_uuid)
    if report.status != GeneratedReport.Status.DONE:
        raise Http404("this report is not ready")
    return FileResponse(report.file.open("rb"), as_attachment=True, filename=report.download_name)


MAX_RECIPIENTS = 10


def recipient_list(text: str) -> list[str]:
    """The addresses someone typed, comma-separated, each valid, at most MAX_RECIPIENTS, as
    plain addresses: `Asha Rao <asha@example.org>` (as mail programs copy them) is accepted
    for asha@example.org. An error names the first entry that is not an address."""
    addresses: list[str] = []
    for entry in (part.strip() for part in _entries(text)):
        if not entry:
            continue
        address = _address(entry)
        if address.lower() not in (a.lower() for a in addresses):
            addresses.append(address)
    if len(addresses) > MAX_RECIPIENTS:
        raise ValidationError(f"At most {MAX_RECIPIENTS} addresses, not {len(addresses)}")
    return addresses


def _address(entry: str) -> str:
    """The address of one entry: a plain address, or a display name before one in angle
    brackets; nothing else."""
    address = parseaddr(entry)[1]
    whole = entry.endswith(">") if "<" in entry else address == entry
    try:
        validate_email(address)
    except ValidationError:
        whole = False
    if not whole:
        raise ValidationError(f"“{entry}” is not an e-mail address")
    return address


def _entries(text: str) -> list[str]:
    """`text` split at the commas between entries, not at those inside a quoted display name
    ("Rao, Asha" <asha@example.org>)."""
    entries, current, quoted = [], [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            entries.append("".join(current))
            current = []
        else:
            current.append(char)
    entries.append("".join(current))
    return entries


class RecipientsForm(forms.Form):
    """Addresses a person types for a mail sent on their behalf; valid only within their
    hourly allowance of such mail (spent when the form is valid)."""

    to = forms.CharField(
        label="To",
        help_text=f"One or more e-mail addresses, separated by commas (at most {MAX_RECIPIENTS}); "
        "Name <address> as a mail program copies it is fine",
    )

    def __init__(self, *args, person, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.person = person

    def clean_to(self) -> list[str]:
        addresses = recipient_list(self.cleaned_data["to"])
        if not addresses:
            raise ValidationError("Enter at least one e-mail address")
        return addresses

    def clean(self) -> dict:
        data = super().clean()
        if not self.errors:
            addresses = set(data.get("to") or []) | set(data.get("cc") or [])
            refusal = spend_outside_mail(self.person.pk, len(addresses))
            if refusal:
                raise ValidationError(refusal)
        return data


class SendFileForm(RecipientsForm):
    cc = forms.CharField(label="Cc", required=False, help_text="Optional; separated by commas")

    def clean_cc(self) -> list[str]:
        return recipient_list(self.cleaned_data["cc"])


class MailDashboardForm(RecipientsForm):
    format = forms.ChoiceField(choices=[("pdf", "PDF"), ("xlsx", "Excel (XLSX)")])


@login_required
def report_send(request: HttpRequest, report_uuid) -> HttpResponse:
    """Send the generated file by mail, from the product's address, to whom the person names."""
    report = get_object_or_404(
        GeneratedReport.objects.visible_to(request.user).select_related("site"),
        uuid=report_uuid,
    )
    if report.status != GeneratedReport.Status.DONE:
        raise Http404("this report is not ready")
    form = SendFileForm(request.POST or None, person=request.user)
    if request.method == "POST" and form.is_valid():
        to, cc = form.cleaned_data["to"], form.cleaned_data["cc"]
        enqueue_on_commit(
            "send_generated_report_onfly_email",
            reports_area_path(report),
            settings.DEFAULT_FROM_EMAIL,
            to,
            cc,
            sent_by=request.user.pk,  # named in the mail; an id, never a name, in the task
        )
        messages.success(request, f"The report is on its way to {', '.join(to + cc)}.")
        return redirect("report-page", report.uuid)
    return render(
        request,
        "core/form.html",
        {
            "title": "Send the report by mail",
            "intro": f"{report_headline(report)}, {report.file_format.upper()}, attached to a "
            "mail from this system.",
            "form": form,
            "submit_label": "Send",
            "cancel_url": reverse("report-page", args=[report.uuid]),
        },
    )


@login_required
def dashboard_mail(request: HttpRequest) -> HttpResponse:
    """Mail the dashboard as the person sees it now, rendered as a PDF or a workbook."""
    form = MailDashboardForm(request.POST or None, person=request.user)
    if request.method == "POST" and form.is_valid():
        to = form.cleaned_data["to"]
        enqueue_on_commit(
            "send_report_on_email",
            {
                "emails": ", ".join(to),
                "format": form.cleaned_data["format"],
                "sent_by": request.user.pk,
            },
            dashboard_report(_boards(request.user), timezone.now()),
        )
        messages.success(request, f"The dashboard is on its way to {', '.join(to)}.")
        return redirect("dashboard")
    return render(
        request,
        "core/form.html",
        {
            "title": "Mail the dashboard",
            "intro": "Today's figures of your sites, as the dashboard shows them now, attached "
            "to a mail from this system.",
            "form": form,
            "submit_label": "Send",
            "cancel_url": reverse("dashboard"),
        },
    )
