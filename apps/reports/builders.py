"""Report types over the domain, each rendered to PDF (with a chart of its summary) or XLSX.

A report is rows for a site between two dates (in the site's time zone) plus a summary of
counts; the PDF draws the summary as a bar chart above the table.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import timezone
from fpdf import FPDF

from apps.activity.models import TOURS, Identifier, Jobneed
from apps.attendance.models import AttendanceEvent
from apps.onboarding.models import BusinessUnit
from apps.y_helpdesk.models import Ticket


@dataclass
class ReportData:
    title: str
    columns: list[str]
    rows: list[list[object]]
    summary: dict[str, int]


def _window(site: BusinessUnit, start: date, end: date) -> tuple[datetime, datetime]:
    return (
        datetime.combine(start, time.min, tzinfo=site.tzinfo),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=site.tzinfo),
    )


def _local(site: BusinessUnit, moment: datetime | None) -> str:
    return timezone.localtime(moment, site.tzinfo).strftime("%Y-%m-%d %H:%M") if moment else ""


def _jobneeds(site, start, end, identifiers) -> ReportData:
    lower, upper = _window(site, start, end)
    rows = list(
        Jobneed.objects.filter(
            site=site,
            parent__isnull=True,
            identifier__in=identifiers,
            plan_at__gte=lower,
            plan_at__lt=upper,
        )
        .order_by("plan_at")
        .values_list("description", "identifier", "plan_at", "status", "ended_at")
    )
    return ReportData(
        title="",
        columns=["Description", "Kind", "Planned", "Status", "Finished"],
        rows=[[d, k, _local(site, p), s, _local(site, e)] for d, k, p, s, e in rows],
        summary=dict(Counter(status for _, _, _, status, _ in rows)),
    )


def task_summary(site, start, end) -> ReportData:
    return _jobneeds(site, start, end, [Identifier.TASK, Identifier.SITEREPORT, Identifier.OTHER])


def tour_summary(site, start, end) -> ReportData:
    return _jobneeds(site, start, end, list(TOURS))


def ppm_compliance(site, start, end) -> ReportData:
    data = _jobneeds(site, start, end, [Identifier.PPM])
    done = data.summary.get("COMPLETED", 0)
    total = sum(data.summary.values())
    data.columns.append("Completed")
    for row in data.rows:
        row.append("yes" if row[3] == "COMPLETED" else "no")
    data.summary = {"completed": done, "not completed": total - done}
    return data


def ticket_report(site, start, end) -> ReportData:
    lower, upper = _window(site, start, end)
    rows = list(
        Ticket.objects.filter(site=site, created_at__gte=lower, created_at__lt=upper)
        .order_by("created_at")
        .values_list("pk", "description", "priority", "status", "escalation_level", "created_at")
    )
    return ReportData(
        title="",
        columns=["#", "Description", "Priority", "Status", "Level", "Created"],
        rows=[[pk, d[:80], p, s, lv, _local(site, c)] for pk, d, p, s, lv, c in rows],
        summary=dict(Counter(status for _, _, _, status, _, _ in rows)),
    )


def attendance_report(site, start, end) -> ReportData:
    lower, upper = _window(site, start, end)
    rows = list(
        AttendanceEvent.objects.filter(site=site, at__gte=lower, at__lt=upper)
        .order_by("at")
        .values_list("person__name", "kind", "at", "face_outcome", "inside_geofence")
    )
    return ReportData(
        title="",
        columns=["Person", "Event", "At", "Face check", "In geofence"],
        rows=[
            [n, k, _local(site, a), f or "-", {True: "yes", False: "no"}.get(g, "-")]
            for n, k, a, f, g in rows
        ],
        summary=dict(Counter(kind for _, kind, _, _, _ in rows)),
    )


REPORT_TYPES: dict[str, tuple[str, Callable[..., ReportData]]] = {
    "task_summary": ("Task summary", task_summary),
    "tour_summary": ("Tour summary", tour_summary),
    "ppm_compliance": ("PPM compliance", ppm_compliance),
    "tickets": ("Tickets", ticket_report),
    "attendance": ("Attendance", attendance_report),
}
FORMATS = ("pdf", "xlsx")


class ReportError(ValueError):
    """Parameters that cannot make a report; the message names the problem."""


def build(report_type: str, site: BusinessUnit, start: date, end: date) -> ReportData:
    if report_type not in REPORT_TYPES:
        raise ReportError(f"unknown report type {report_type!r}; known: {', '.join(REPORT_TYPES)}")
    if end < start or (end - start).days > 366:
        raise ReportError("the date range must run forwards and span at most a year")
    title, builder = REPORT_TYPES[report_type]
    data = builder(site, start, end)
    data.title = f"{title}: {site.name}, {start:%d %b %Y} to {end:%d %b %Y}"
    return data


def _latin1(value: object) -> str:
    return str(value).encode("latin-1", "replace").decode("latin-1")


def render_pdf(data: ReportData) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(data.title))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 13)
    pdf.multi_cell(0, 8, _latin1(data.title), new_x="LMARGIN", new_y="NEXT")
    if data.summary:
        _bar_chart(pdf, data.summary)
    pdf.set_font("Helvetica", size=9)
    with pdf.table() as table:
        table.row(data.columns)
        for row in data.rows:
            table.row([_latin1(cell) for cell in row])
    return bytes(pdf.output())


def _bar_chart(pdf: FPDF, summary: dict[str, int]) -> None:
    top, left, width, bar_height = pdf.get_y() + 4, pdf.l_margin + 45, 120, 7
    largest = max(summary.values()) or 1
    pdf.set_font("Helvetica", size=9)
    for index, (label, count) in enumerate(sorted(summary.items())):
        y = top + index * (bar_height + 2)
        pdf.set_xy(pdf.l_margin, y)
        pdf.cell(43, bar_height, _latin1(label), align="R")
        pdf.set_fill_color(21, 101, 192)
        pdf.rect(left, y, max(width * count / largest, 0.5), bar_height, style="F")
        pdf.set_xy(left + width * count / largest + 2, y)
        pdf.cell(20, bar_height, str(count))
    pdf.set_xy(pdf.l_margin, top + len(summary) * (bar_height + 2) + 4)


def render_xlsx(data: ReportData) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Report"
    sheet.append([data.title])
    sheet.append(data.columns)
    for row in data.rows:
        sheet.append(row)
    summary = book.create_sheet("Summary")
    for label, count in sorted(data.summary.items()):
        summary.append([label, count])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def render(data: ReportData, file_format: str) -> bytes:
    if file_format not in FORMATS:
        raise ReportError(f"format must be pdf or xlsx, not {file_format!r}")
    return render_pdf(data) if file_format == "pdf" else render_xlsx(data)
