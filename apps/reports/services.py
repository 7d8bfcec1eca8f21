"""Generating reports into storage (with progress), scheduled runs once per period, and the
mails that carry them."""

from __future__ import annotations

import hashlib
import json
import logging
import time as clock
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from croniter import croniter
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from apps.core.cache import count_in_window
from apps.core.mail import Mail, clean_recipients, deliver
from apps.onboarding.models import BusinessUnit
from apps.peoples.models import People
from apps.reports.builders import (
    FORMATS,
    ReportData,
    ReportError,
    build,
    render,
    report_code,
    report_title,
)
from apps.reports.cleanup import reports_root, resolve_inside_reports
from apps.reports.models import GeneratedReport, ReportHistory, ScheduledReport
from apps.reports.results import (
    FileMailResult,
    GeneratedMailResult,
    ReportMailResult,
    SchedulesResult,
)

logger = logging.getLogger(__name__)
MIME = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def parse_form(formdata: dict[str, Any], client_id: int) -> dict[str, Any]:
    """Validated report parameters; the site must belong to the client."""
    try:
        site = BusinessUnit.objects.get(
            pk=int(formdata["site_id"]), client_id=client_id, kind=BusinessUnit.Kind.SITE
        )
        start = date.fromisoformat(formdata["date_from"])
        end = date.fromisoformat(formdata["date_to"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportError(f"Bad report parameters: {exc}.") from None
    except BusinessUnit.DoesNotExist:
        raise ReportError("There is no such site for this client.") from None
    file_format = formdata.get("format", "pdf")
    if file_format not in FORMATS:
        raise ReportError(f"The format must be pdf or xlsx, not {file_format!r}.")
    return {
        "report_type": formdata.get("report_type", ""),
        "site": site,
        "date_from": start,
        "date_to": end,
        "file_format": file_format,
    }


class Generated(NamedTuple):
    report: GeneratedReport
    duration_ms: int | None  # building it in this call; None when it was built before or failed


def generate(report: GeneratedReport) -> Generated:
    """Build and store the report file, reporting progress; harmless to repeat."""
    if report.status == GeneratedReport.Status.DONE:
        return Generated(report, None)
    started = clock.monotonic()

    def progress(percent: int) -> None:
        GeneratedReport.objects.filter(pk=report.pk).update(
            status=GeneratedReport.Status.PROGRESS, progress=percent
        )

    progress(5)
    try:
        data = build(report.report_type, report.site, report.date_from, report.date_to)
        progress(50)
        content = render(data, report.file_format)
    except ReportError as exc:
        GeneratedReport.objects.filter(pk=report.pk).update(
            status=GeneratedReport.Status.FAILED, error=str(exc)[:300], finished_at=timezone.now()
        )
        report.refresh_from_db()
        return Generated(report, None)
    progress(90)
    report.file.save(f"{report.uuid}.{report.file_format}", ContentFile(content), save=False)
    GeneratedReport.objects.filter(pk=report.pk).update(
        file=report.file.name,
        status=GeneratedReport.Status.DONE,
        progress=100,
        finished_at=timezone.now(),
    )
    report.refresh_from_db()
    return Generated(report, int((clock.monotonic() - started) * 1000))


def download_link(report: GeneratedReport) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("report-download", args=[report.uuid])


def ready_mail(report: GeneratedReport, address: str) -> Mail:
    return Mail(
        key=f"report:{report.uuid}:ready",
        subject=f"Your report is ready: {report_title(report.report_type)} for {report.site.name}",
        to=clean_recipients([address]),
        template="reports/mail/report",
        context={
            "intro": f"{report_title(report.report_type)} for {report.site.name}, "
            f"{report.date_from:%d %b %Y} to {report.date_to:%d %b %Y}, "
            f"{report.file_format.upper()}.",
            "link": download_link(report),
            "time_zone": report.site.time_zone,
        },
    )


# --- Schedules ---------------------------------------------------------------------------------


def period_window(schedule: ScheduledReport, fired_local: datetime) -> tuple[date, date]:
    day = fired_local.date()
    if schedule.period == ScheduledReport.Period.WEEK:
        return day - timedelta(days=7), day - timedelta(days=1)
    if schedule.period == ScheduledReport.Period.MONTH:
        last = day.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    return day - timedelta(days=1), day - timedelta(days=1)


def due_period(schedule: ScheduledReport, now: datetime) -> datetime | None:
    """The schedule's latest fire time (site time) at or before `now`, if on a working day."""
    local_now = timezone.localtime(now, schedule.site.tzinfo)
    fired = croniter(schedule.cron, local_now + timedelta(seconds=1)).get_prev(datetime)
    working = {int(d) for d in schedule.working_days.split(",") if d.strip().isdigit()}
    return fired if fired.weekday() in working else None


def run_schedules(now: datetime | None = None) -> SchedulesResult:
    now = now or timezone.now()
    outcome = SchedulesResult(generated=0, already=0, failed=[])
    for schedule in ScheduledReport.objects.filter(enabled=True).select_related("site"):
        try:
            fired = due_period(schedule, now)
            if fired is None:
                continue
            start, end = period_window(schedule, fired)
            try:
                with transaction.atomic():
                    report = GeneratedReport.objects.create(
                        schedule=schedule,
                        period_key=fired.isoformat(),
                        report_type=schedule.report_type,
                        site=schedule.site,
                        date_from=start,
                        date_to=end,
                        file_format=schedule.file_format,
                    )
            except IntegrityError:  # another run (or an earlier one) has this period
                report = GeneratedReport.objects.get(
                    schedule=schedule, period_key=fired.isoformat()
                )
                if report.status == GeneratedReport.Status.DONE:
                    outcome["already"] += 1
                    continue
            report = generate(report).report
            if report.status != GeneratedReport.Status.DONE:
                raise ReportError(report.error)
            ScheduledReport.objects.filter(pk=schedule.pk).update(last_generated_at=now)
            outcome["generated"] += 1
        except Exception as exc:  # one failing schedule is reported; the others still run
            logger.warning("scheduled_report_failed schedule=%s error=%s", schedule.pk, exc)
            outcome["failed"].append({"schedule": schedule.pk, "error": str(exc)[:200]})
    return outcome


def mail_generated(task_id: str = "") -> GeneratedMailResult:
    """Mail each finished scheduled report to its recipients, once, then mark it sent."""
    pending = [
        (report, report.schedule)
        for report in GeneratedReport.objects.filter(
            schedule__isnull=False, status=GeneratedReport.Status.DONE, mailed_at__isnull=True
        ).select_related("schedule", "site")
        if report.schedule is not None
    ]
    mails = []
    for report, schedule in pending:
        with report.file.open("rb") as handle:
            content = handle.read()
        mails.append(
            Mail(
                key=f"report:{report.uuid}:mailed",
                subject=f"{schedule.name}: {report.date_from} to {report.date_to}",
                to=clean_recipients([schedule.to_emails]),
                cc=clean_recipients([schedule.cc_emails]),
                template="reports/mail/report",
                context={
                    "intro": f"{schedule.name} for {report.site.name} is attached.",
                    "time_zone": report.site.time_zone,
                },
                attachments=[
                    (
                        f"{schedule.name}.{report.file_format}",
                        content,
                        MIME[report.file_format],
                    )
                ],
            )
        )
    delivery = deliver(mails, task_id=task_id)
    settled = [r.pk for (r, _), m in zip(pending, mails, strict=True) if m.key in delivery.settled]
    GeneratedReport.objects.filter(pk__in=settled).update(mailed_at=timezone.now())
    delivery.raise_error()
    return {"mailed": len(delivery.sent), "reports": len(pending)}


def report_headline(report: GeneratedReport) -> str:
    """What people call a generated report: its type, site and days."""
    return (
        f"{report_title(report.report_type)}, {report.site.name}, "
        f"{report.date_from:%d %b %Y} to {report.date_to:%d %b %Y}"
    )


def reports_area_path(report: GeneratedReport) -> str:
    """A generated report's file as the reports area names it (what send_generated_report_onfly_
    email takes)."""
    return (report.file.name or "").removeprefix("reports/")


def mail_report_data(
    formdata: dict[str, Any], json_report: dict[str, Any], task_id: str
) -> ReportMailResult:
    """A report the user is looking at, rendered and mailed to the addresses they entered.

    Its cells travel as JSON; `column_types` names the columns that hold a "date" or a
    "datetime" (ISO text), which the file gets back as real dates."""
    types = list(json_report.get("column_types", []))
    data = ReportData(
        title=str(json_report.get("title", "Report"))[:200],
        columns=[str(c) for c in json_report.get("columns", [])],
        rows=[typed_cells(list(r), types) for r in json_report.get("rows", [])],
        summary={str(k): int(v) for k, v in json_report.get("summary", {}).items()},
    )
    file_format = formdata.get("format", "pdf")
    entered = str(formdata.get("emails", ""))
    recipients = clean_recipients([entered])
    invalid = len([a for a in entered.split(",") if a.strip()]) - len(recipients)
    if not recipients:
        raise ReportError("no valid e-mail address was entered")
    content = render(data, file_format)
    digest = hashlib.sha256(
        json.dumps([formdata, json_report], sort_keys=True, default=str).encode()
    )
    mail = Mail(
        key=f"report-mail:{task_id or digest.hexdigest()}",
        subject=data.title,
        to=recipients,
        template="reports/mail/report",
        context={
            "intro": _sent_by(formdata.get("sent_by")),
            "time_note": str(json_report.get("time_note", "")),
        },
        attachments=[
            (f"{slugify(data.title) or 'report'}.{file_format}", content, MIME[file_format])
        ],
    )
    delivery = deliver([mail], task_id=task_id)
    delivery.raise_error()
    return {
        "sent": bool(delivery.sent),
        "recipients": len(recipients),
        "invalid_addresses": invalid,
    }


def typed_cells(row: list[Any], types: list[str]) -> list[Any]:
    """`row` with its "date" and "datetime" columns' ISO text read back as dates (a cell that
    is not one stays as it is)."""
    readers: dict[str, Any] = {"date": date.fromisoformat, "datetime": datetime.fromisoformat}
    cells = []
    for index, cell in enumerate(row):
        reader = readers.get(types[index]) if index < len(types) else None
        try:
            cells.append(reader(cell) if reader and isinstance(cell, str) else cell)
        except ValueError:
            cells.append(cell)
    return cells


def _sender(person_id: object) -> People | None:
    # The page passes the sender's id, not their name: task arguments carry no personal data.
    return People.objects.filter(pk=person_id).first() if isinstance(person_id, int) else None


def _sent_by(person_id: object, what: str = "this report; it is attached.") -> str:
    """Who sent the mail, said first: every mail a person sends from the product names them."""
    sender = _sender(person_id)
    if sender is None:
        return "The report you asked for is attached."
    return f"{sender.name} ({sender.email}) sent you {what}"


def _sender_address(person_id: object) -> str:
    sender = _sender(person_id)
    return sender.email if sender and sender.email else ""


def is_report_sender(address: object) -> bool:
    """Reports go out from DEFAULT_FROM_EMAIL or one of REPORT_SENDERS only."""
    allowed = {settings.DEFAULT_FROM_EMAIL.lower(), *(a.lower() for a in settings.REPORT_SENDERS)}
    return isinstance(address, str) and address.strip().lower() in allowed


def person_reply_to(address: str) -> str:
    """Upstream mailed a report from the requesting person's own address, which other mail
    servers rightly treat as forged. Here it goes from the product's address with the person's
    as Reply-To, so answers still reach them; an address that is no active person's is refused."""
    address = address.strip()
    if not People.objects.filter(email__iexact=address, is_active=True).exists():
        raise ReportError("the sender is neither an allowed sender nor an active person's address")
    return address


def mail_file(
    filepath: str,
    from_email: str,
    to: list[str],
    cc: list[str],
    task_id: str,
    reply_to: str = "",
    sent_by: int | None = None,
) -> FileMailResult:
    """An already generated report file, mailed on the fly; only files of the reports area and
    only from an allowed sender. A file of a generated report goes out under the report's name,
    read from wherever the storage keeps it; the mail names the person who sent it."""
    if not is_report_sender(from_email):
        raise ReportError(f"{from_email!r} may not send reports")
    path = resolve_inside_reports(filepath)
    recipients = clean_recipients(to)
    if not recipients:
        raise ReportError("no valid recipient")
    report = (
        GeneratedReport.objects.filter(
            file=f"reports/{path.relative_to(reports_root()).as_posix()}",
            status=GeneratedReport.Status.DONE,
        )
        .select_related("site")
        .first()
    )
    if report is not None:
        with report.file.open("rb") as handle:
            content = handle.read()
        name, title = report.download_name, report_headline(report)
    elif path.is_file() and not path.is_symlink():
        content, name, title = path.read_bytes(), path.name, f"Report {path.name}"
    else:
        raise ReportError("no such report file")
    answers_to = reply_to or _sender_address(sent_by)
    mail = Mail(
        key=f"report-file:{task_id}",
        subject=title,
        to=recipients,
        cc=clean_recipients(cc),
        template="reports/mail/report",
        context={
            "intro": _sent_by(sent_by, f"{title}: it is attached.")
            if sent_by
            else f"{title} is attached.",
            "time_zone": report.site.time_zone if report else "",
        },
        attachments=[(name, content, MIME.get(path.suffix[1:], "application/octet-stream"))],
        from_email=from_email.strip(),
        reply_to=[answers_to] if answers_to else [],
    )
    delivery = deliver([mail], task_id=task_id)
    delivery.raise_error()
    return {"sent": bool(delivery.sent), "recipients": len(recipients)}


def requested_report(formdata: dict[str, Any], client_id: int, user_id: int) -> GeneratedReport:
    """The on-demand report row: the one the page created (by uuid), or a new one."""
    if formdata.get("report_uuid"):
        return GeneratedReport.objects.select_related("site").get(
            uuid=formdata["report_uuid"], requested_by_id=user_id
        )
    params = parse_form(formdata, client_id)
    return GeneratedReport.objects.create(requested_by_id=user_id, **params)


def record_history(formdata: dict[str, Any], userid: int, buid: int, elapsed: dict) -> int:
    entry = ReportHistory.objects.create(
        person_id=userid,
        site_id=buid,
        report_type=report_code(str(formdata.get("report_type", "")))[:32],
        parameters={k: v for k, v in formdata.items() if k in ("date_from", "date_to", "format")},
        file_format=str(elapsed.get("format", formdata.get("format", "")))[:4],
        duration_ms=elapsed.get("duration_ms"),
        generated_at=timezone.now(),
    )
    return entry.pk


def produce_requested_report(
    formdata: dict[str, Any], client_id: int, user_email: str, user_id: int, task_id: str = ""
) -> Generated:
    """Build the requested report and mail the requester its link (once)."""
    generated = generate(requested_report(formdata, client_id, user_id))
    if generated.report.status == GeneratedReport.Status.DONE:
        delivery = deliver([ready_mail(generated.report, user_email)], task_id=task_id)
        delivery.raise_error()
    return generated


OUTSIDE_MAIL_WINDOW_SECONDS = 60 * 60


def spend_outside_mail(person_id: int, addresses: int) -> str:
    """Count `addresses` a person typed (a report or the dashboard sent by mail) against their
    hourly allowance, OUTSIDE_MAIL_RECIPIENTS_PER_HOUR; "" when within it, else why not, and
    then nothing is counted. One counter per person and clock hour, in the shared cache."""
    limit = settings.OUTSIDE_MAIL_RECIPIENTS_PER_HOUR
    key = f"outside-mail:{person_id}:{int(clock.time() // OUTSIDE_MAIL_WINDOW_SECONDS)}"
    total = count_in_window(key, OUTSIDE_MAIL_WINDOW_SECONDS, addresses)
    if total <= limit:
        return ""
    count_in_window(key, OUTSIDE_MAIL_WINDOW_SECONDS, -addresses)
    used = total - addresses
    return (
        f"You may mail at most {limit} addresses an hour and have mailed {used} this hour: "
        "try again later, or with fewer addresses"
    )
