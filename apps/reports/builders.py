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
from typing import TYPE_CHECKING

from django.db import models
from django.utils import timezone

from apps.activity.models import TOURS, Identifier, Jobneed, JobneedStatus, Priority
from apps.attendance.models import AttendanceEvent
from apps.onboarding.models import BusinessUnit
from apps.reports.pdf_fonts import FAMILY, heading_style, unicode_pdf
from apps.y_helpdesk.models import Ticket

if TYPE_CHECKING:
    from fpdf import FPDF


@dataclass
class ReportData:
    """A report's table and summary. Cells are text, numbers, dates or datetimes (naive, already
    in the site's time zone); codes are shown by their labels."""

    title: str
    columns: list[str]
    rows: list[list[object]]
    summary: dict[str, int]
    # Relative column widths in the PDF (None: equal), and what an empty report says.
    widths: tuple[int, ...] | None = None
    empty_message: str = ""


def _window(site: BusinessUnit, start: date, end: date) -> tuple[datetime, datetime]:
    return (
        datetime.combine(start, time.min, tzinfo=site.tzinfo),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=site.tzinfo),
    )


def _local(site: BusinessUnit, moment: datetime | None) -> datetime | None:
    """`moment` as a naive datetime in the site's time zone (what a spreadsheet cell holds)."""
    return timezone.localtime(moment, site.tzinfo).replace(tzinfo=None) if moment else None


def _label(choices: type[models.TextChoices], code: str | None) -> str:
    """The code's label; the code itself when it is not one of the choices."""
    if code is None:
        return ""
    try:
        return str(choices(code).label)
    except ValueError:
        return code


def _jobneed_rows(site, start, end, identifiers) -> list[tuple]:
    lower, upper = _window(site, start, end)
    return list(
        Jobneed.objects.filter(
            site=site,
            parent__isnull=True,
            identifier__in=identifiers,
            plan_at__gte=lower,
            plan_at__lt=upper,
        )
        .order_by("plan_at")
        .values_list("description", "identifier", "plan_at", "status", "ended_at", "expiry_at")
    )


def _jobneeds(site, start, end, identifiers) -> ReportData:
    rows = _jobneed_rows(site, start, end, identifiers)
    return ReportData(
        title="",
        columns=["Description", "Kind", "Planned", "Status", "Finished"],
        rows=[
            [d, _label(Identifier, k), _local(site, p), _label(JobneedStatus, s), _local(site, e)]
            for d, k, p, s, e, _ in rows
        ],
        summary=dict(Counter(_label(JobneedStatus, status) for _, _, _, status, _, _ in rows)),
        widths=(34, 16, 20, 10, 20),
    )


def task_summary(site, start, end) -> ReportData:
    return _jobneeds(site, start, end, [Identifier.TASK, Identifier.SITEREPORT, Identifier.OTHER])


def tour_summary(site, start, end) -> ReportData:
    return _jobneeds(site, start, end, list(TOURS))


def ppm_outcome(status: str, expiry_at: datetime, now: datetime) -> str:
    """Completed; missed once its window has passed undone; else not due yet (a future or
    open visit is not counted as missed)."""
    if status == JobneedStatus.COMPLETED:
        return "Completed"
    if expiry_at > now:
        return "Not due yet"
    return "Missed"


def ppm_compliance(site, start, end, now: datetime | None = None) -> ReportData:
    now = now or timezone.now()
    rows = _jobneed_rows(site, start, end, [Identifier.PPM])
    outcomes = [ppm_outcome(status, expiry, now) for _, _, _, status, _, expiry in rows]
    counts = Counter(outcomes)
    return ReportData(
        title="",
        columns=["Description", "Planned", "Status", "Finished", "Outcome"],
        rows=[
            [d, _local(site, p), _label(JobneedStatus, s), _local(site, e), outcome]
            for (d, _, p, s, e, _), outcome in zip(rows, outcomes, strict=True)
        ],
        summary={
            label: counts[label]
            for label in ("Completed", "Missed", "Not due yet")
            if counts[label] or label != "Not due yet"
        }
        if rows
        else {},
        widths=(34, 20, 13, 20, 13),
    )


def ticket_report(site, start, end) -> ReportData:
    lower, upper = _window(site, start, end)
    rows = list(
        Ticket.objects.filter(site=site, created_at__gte=lower, created_at__lt=upper)
        .order_by("created_at")
        .values_list("pk", "description", "priority", "status", "escalation_level", "created_at")
    )
    statuses = dict(Ticket.Status.choices)
    return ReportData(
        title="",
        columns=["#", "Description", "Priority", "Status", "Level", "Created"],
        rows=[
            [pk, d[:80], _label(Priority, p), statuses.get(s, s), lv, _local(site, c)]
            for pk, d, p, s, lv, c in rows
        ],
        summary=dict(Counter(statuses.get(s, s) for _, _, _, s, _, _ in rows)),
        widths=(6, 42, 10, 12, 9, 21),
    )


def attendance_report(site, start, end) -> ReportData:
    lower, upper = _window(site, start, end)
    model = AttendanceEvent
    rows = list(
        model.objects.filter(site=site, at__gte=lower, at__lt=upper)
        .order_by("at")
        .values_list("person__name", "kind", "at", "face_outcome", "inside_geofence")
    )
    kinds = dict(model._meta.get_field("kind").choices or [])
    faces = dict(model._meta.get_field("face_outcome").choices or [])
    return ReportData(
        title="",
        columns=["Person", "Event", "At", "Face check", "In geofence"],
        rows=[
            [
                n,
                kinds.get(k, k),
                _local(site, a),
                faces.get(f, f) or "-",
                "-" if g is None else "Yes" if g else "No",
            ]
            for n, k, a, f, g in rows
        ],
        summary=dict(Counter(kinds.get(kind, kind) for _, kind, _, _, _ in rows)),
        widths=(28, 14, 21, 22, 15),
    )


REPORT_TYPES: dict[str, tuple[str, Callable[..., ReportData]]] = {
    "task_summary": ("Task summary", task_summary),
    "tour_summary": ("Tour summary", tour_summary),
    "ppm_compliance": ("PPM compliance", ppm_compliance),
    "tickets": ("Tickets", ticket_report),
    "attendance": ("Attendance", attendance_report),
}
# Upstream's codes (its report form's report_name) of the report types built here: each type is
# recorded under its one code above, whichever form asked for it. Upstream's other designs
# (LISTOFTASKS, PEOPLEATTENDANCESUMMARY, the QR sheets, ...) are other reports and keep theirs.
UPSTREAM_REPORT_CODES: dict[str, str] = {
    "TASKSUMMARY": "task_summary",
    "TOURSUMMARY": "tour_summary",
    "PPMSUMMARY": "ppm_compliance",
    "LISTOFTICKETS": "tickets",
}
FORMATS = ("pdf", "xlsx")
MAX_RANGE_DAYS = 366


class ReportError(ValueError):
    """Parameters that cannot make a report; the message, a sentence, names the problem."""


def report_code(code: str) -> str:
    """The one code of a report type, given its code here or upstream's."""
    return UPSTREAM_REPORT_CODES.get(code, code)


def report_title(report_type: str) -> str:
    """The report type's name as people read it ("PPM compliance"), or the code if unknown."""
    return REPORT_TYPES.get(report_type, (report_type,))[0]


def check_range(start: date, end: date) -> None:
    if end < start:
        raise ReportError("The end date is before the start date: the range must run forwards.")
    if (end - start).days > MAX_RANGE_DAYS:
        raise ReportError(f"A report covers at most a year ({MAX_RANGE_DAYS} days).")


def build(report_type: str, site: BusinessUnit, start: date, end: date) -> ReportData:
    if report_type not in REPORT_TYPES:
        known = ", ".join(REPORT_TYPES)
        raise ReportError(f"Unknown report type {report_type!r} (known: {known}).")
    check_range(start, end)
    title, builder = REPORT_TYPES[report_type]
    data = builder(site, start, end)
    period = f"{start:%d %b %Y} to {end:%d %b %Y}"
    data.title = f"{title}: {site.name}, {period}"
    data.empty_message = f"No data for {title.lower()} at {site.name} from {period}."
    return data


def _text(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    return "" if value is None else str(value)


# Alternate rows are shaded; the header (heading_style) is the brand's dark blue.
ZEBRA = (240, 244, 248)


def render_pdf(data: ReportData) -> bytes:
    pdf = unicode_pdf()
    pdf.set_title(data.title)
    pdf.add_page()
    pdf.set_font(FAMILY, "B", 13)
    pdf.multi_cell(0, 8, data.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, size=9)
    if not data.rows:
        pdf.ln(4)
        pdf.multi_cell(0, 6, data.empty_message or "No data.", new_x="LMARGIN", new_y="NEXT")
        return bytes(pdf.output())
    if data.summary:
        _bar_chart(pdf, data.summary)
    pdf.set_font(FAMILY, size=9)
    pdf.set_fill_color(255, 255, 255)
    pdf.set_text_color(0, 0, 0)
    with pdf.table(
        col_widths=data.widths if data.widths and len(data.widths) == len(data.columns) else None,
        headings_style=heading_style(),
        cell_fill_color=ZEBRA,
        cell_fill_mode="ROWS",
        line_height=5,
    ) as table:
        table.row(data.columns)
        for row in data.rows:
            table.row([_text(cell) for cell in row])
    return bytes(pdf.output())


def _bar_chart(pdf: FPDF, summary: dict[str, int]) -> None:
    top, left, width, bar_height = pdf.get_y() + 4, pdf.l_margin + 45, 120, 7
    largest = max(summary.values()) or 1
    pdf.set_font(FAMILY, size=9)
    for index, (label, count) in enumerate(summary.items()):
        y = top + index * (bar_height + 2)
        pdf.set_xy(pdf.l_margin, y)
        pdf.cell(43, bar_height, label, align="R")
        pdf.set_fill_color(21, 101, 192)
        pdf.rect(left, y, max(width * count / largest, 0.5), bar_height, style="F")
        pdf.set_xy(left + width * count / largest + 2, y)
        pdf.cell(20, bar_height, str(count))
    pdf.set_fill_color(255, 255, 255)  # the chart's colour must not carry into the table
    pdf.set_xy(pdf.l_margin, top + len(summary) * (bar_height + 2) + 4)


def render_xlsx(data: ReportData) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.worksheets[0]  # a new workbook's one sheet
    sheet.title = "Report"
    sheet.append([data.title])
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.append(data.columns)
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for row in data.rows:
        sheet.append(row)
    if not data.rows:
        sheet.append([data.empty_message or "No data."])
    widths = [len(str(c)) for c in data.columns]
    for row in data.rows:
        for index, value in enumerate(row):
            shown = 16 if isinstance(value, datetime) else len(_text(value))
            widths[index] = max(widths[index], min(shown, 60))
    for index, width in enumerate(widths, start=1):
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = width + 2
        for (cell,) in sheet.iter_rows(min_row=3, min_col=index, max_col=index):
            if isinstance(cell.value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
            elif isinstance(cell.value, date):
                cell.number_format = "yyyy-mm-dd"
    sheet.freeze_panes = "A3"  # the title and the header row stay in view
    summary = book.create_sheet("Summary")
    summary.append(["", "Count"])
    summary["B1"].font = Font(bold=True)
    for label, count in data.summary.items():
        summary.append([label, count])
    summary.column_dimensions["A"].width = max([12, *(len(k) + 2 for k in data.summary)])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def render(data: ReportData, file_format: str) -> bytes:
    if file_format not in FORMATS:
        raise ReportError(f"The format must be pdf or xlsx, not {file_format!r}.")
    return render_pdf(data) if file_format == "pdf" else render_xlsx(data)
