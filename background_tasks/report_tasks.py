"""Report tasks: on-demand and scheduled reports, their mails, PDF jobs and clean-ups."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.core.tasks.legacy import (
    Arguments,
    LegacyCallRefused,
    UpstreamForm,
    accepts_upstream,
    refuse,
)
from apps.core.tasks.utils import task_retry_policy
from apps.reports.builders import ReportError
from apps.reports.cleanup import OutsideReportsArea, delete_old_files, resolve_inside_reports
from apps.reports.models import ProductionStatus
from apps.reports.pdf_jobs import render_job
from apps.reports.results import (
    FileCleanupResult,
    FileMailResult,
    GeneratedMailResult,
    HistoryResult,
    PdfJobResult,
    ReportMailResult,
    RequestedReportResult,
    SchedulesResult,
)
from apps.reports.services import (
    is_report_sender,
    mail_file,
    mail_generated,
    mail_report_data,
    person_reply_to,
    produce_requested_report,
    record_history,
    run_schedules,
)


def _outside_reports_form(params: str, path: str, what: str) -> UpstreamForm:
    """Upstream's report folders (TEMP_REPORTS_GENERATED, ...) lay outside the reports area,
    the one place report tasks read, mail or delete files."""

    def outside(arguments: Arguments) -> bool:
        try:
            resolve_inside_reports(str(arguments[path]))
        except OutsideReportsArea:
            return True
        return False

    return UpstreamForm(
        params,
        refuse(f"the {what} is outside the reports area (MEDIA_ROOT/reports)"),
        matches=outside,
        label=f"{path}:outside-reports-area",
    )


def _names_upstream_design(formdata: object) -> bool:
    return (
        isinstance(formdata, dict)
        and "report_name" in formdata
        and not {"report_type", "report_uuid"} & formdata.keys()
    )


def _history_from_upstream(arguments: Arguments) -> Arguments:
    """Upstream's EI was exception info (a flag, ..., a traceback), its formdata named the
    report `report_name`; the history records the same who, what, where and format (the report
    type under its one code: apps.reports.builders.report_code)."""
    formdata = dict(arguments["formdata"])
    formdata.setdefault("report_type", formdata.get("report_name", ""))
    return {
        "formdata": formdata,
        "userid": arguments["userid"],
        "buid": arguments["buid"],
        "EI": {"format": formdata.get("format", "")},
    }


@shared_task(name="generate_pdf_async", **task_retry_policy("default"))
@accepts_upstream(
    UpstreamForm(
        "task_id, template_name, context_data, user_id, filename=None, css_files=None, "
        "output_format='pdf'",
        refuse(
            "it renders a template the caller names with the caller's context; documents are "
            "requested as a PDF job of a signed-in person",
            use="POST /reports/pdf with {title, document} (it queues generate_pdf_async(job_uuid))",
        ),
    )
)
def generate_pdf_async(job_uuid: str) -> PdfJobResult:
    """Render a requested PDF job with progress; the web page polls its status."""
    job = render_job(job_uuid)
    return {"job": str(job.uuid), "status": job.status, "error": job.error}


@shared_task(name="cleanup_reports_which_are_12hrs_old", **task_retry_policy("maintenance"))
@accepts_upstream(_outside_reports_form("dir_path, hours_old=12", "dir_path", "folder"))
def cleanup_reports_which_are_12hrs_old(dir_path: str, hours_old: float = 12) -> FileCleanupResult:
    """Delete report files older than `hours_old` under `dir_path`, inside the reports area."""
    return delete_old_files(dir_path, hours_old)


@shared_task(name="create_save_report_async", bind=True, **task_retry_policy("database_heavy"))
@accepts_upstream(
    UpstreamForm(
        "formdata, client_id, user_email, user_id",
        refuse(
            "it names an upstream report design (report_name); those are not built here, and "
            "building another report in its place would mislead",
            use="create_save_report_async({report_type, site_id, date_from, date_to, format}, "
            "client_id, user_email, user_id)",
        ),
        matches=lambda arguments: _names_upstream_design(arguments["formdata"]),
        label="formdata:report_name",
    )
)
def create_save_report_async(
    self, formdata: dict, client_id: int, user_email: str, user_id: int
) -> RequestedReportResult:
    """Build a requested report into storage (with progress), then mail the requester a link."""
    report, duration_ms = produce_requested_report(
        formdata, client_id, user_email, user_id, task_id=self.request.id or ""
    )
    if report.status != ProductionStatus.DONE:
        return {"report": str(report.uuid), "status": report.status, "error": report.error}
    create_report_history.delay(
        formdata,
        user_id,
        report.site_id,
        {"format": report.file_format, "duration_ms": duration_ms},
    )
    return {"report": str(report.uuid), "status": report.status}


@shared_task(name="create_report_history", **task_retry_policy("default"))
@accepts_upstream(
    UpstreamForm(
        "formdata, userid, buid, EI",
        _history_from_upstream,
        matches=lambda arguments: not isinstance(arguments["EI"], dict),
        label="EI:exception-info",
    )
)
def create_report_history(formdata: dict, userid: int, buid: int, EI: dict) -> HistoryResult:
    """Record who generated which report, with which parameters, when, how and how long."""
    return {"history": record_history(formdata, userid, buid, EI)}


@shared_task(name="send_report_on_email", bind=True, **task_retry_policy("email"))
@accepts_upstream(
    UpstreamForm(
        "formdata, json_report",
        refuse(
            "it carries a file rendered by the caller (base64 in a JSON string); the worker "
            "renders the report from its data itself",
            use="send_report_on_email({emails, format}, {title, columns, rows, summary})",
        ),
        matches=lambda arguments: not isinstance(arguments["json_report"], dict),
        label="json_report:rendered-file",
    )
)
def send_report_on_email(self, formdata: dict, json_report: dict) -> ReportMailResult:
    """Render the report the user is looking at and mail it to the addresses they entered."""
    return mail_report_data(formdata, json_report, self.request.id or "")


@shared_task(name="create_scheduled_reports", **task_retry_policy("maintenance"))
def create_scheduled_reports() -> SchedulesResult:
    """Generate every due scheduled report once per period; one failure stops no other."""
    return run_schedules()


@shared_task(name="send_generated_report_on_mail", bind=True, **task_retry_policy("bulk_email"))
def send_generated_report_on_mail(self) -> GeneratedMailResult:
    """Mail each generated scheduled report that is ready to its recipients, once."""
    return mail_generated(self.request.id or "")


def _sender_as_reply_to(arguments: Arguments) -> Arguments:
    """Upstream's producers passed the requesting person's address as the sender."""
    try:
        reply_to = person_reply_to(str(arguments["fromemail"]))
    except ReportError as exc:
        raise LegacyCallRefused(
            str(exc), use="DEFAULT_FROM_EMAIL or an address of REPORT_SENDERS as fromemail"
        ) from None
    return {
        "filepath": arguments["filepath"],
        "fromemail": settings.DEFAULT_FROM_EMAIL,
        "to": arguments["to"],
        "cc": arguments["cc"],
        "reply_to": reply_to,
    }


@shared_task(name="send_generated_report_onfly_email", bind=True, **task_retry_policy("email"))
@accepts_upstream(
    _outside_reports_form("filepath, fromemail, to, cc, ctzoffset", "filepath", "file"),
    UpstreamForm(
        "filepath, fromemail, to, cc, ctzoffset=0",
        _sender_as_reply_to,
        matches=lambda arguments: not is_report_sender(arguments["fromemail"]),
        label="fromemail:person",
    ),
)
def send_generated_report_onfly_email(
    self,
    filepath: str,
    fromemail: str,
    to: list[str],
    cc: list[str],
    ctzoffset: int = 0,
    reply_to: str = "",
    sent_by: int | None = None,
) -> FileMailResult:
    """Mail an already generated report file (inside the reports area, from an allowed sender,
    answers going to `reply_to` when given). `sent_by`, the id of the person who sent it from
    the product, is named in the mail (and answers go to them).

    `ctzoffset` is accepted for the callers' signature; times come from the sites' zones.
    """
    return mail_file(filepath, fromemail, to, cc, self.request.id or "", reply_to, sent_by)
