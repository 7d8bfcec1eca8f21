"""The permit (or SLA report) as a PDF, rendered in memory by the worker that mails it."""

from __future__ import annotations

import re

from django.utils import timezone
from fpdf import FPDF

from apps.work_order_management.models import PermitKind, WorkPermit


def _latin1(text: object) -> str:
    # The PDF core fonts cover Latin-1; anything else becomes '?' rather than failing the mail.
    return str(text).encode("latin-1", "replace").decode("latin-1")


def pdf_filename(permit: WorkPermit) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "-", permit.permit_type.name).strip("-") or "permit"
    return f"{stem}-{permit.number}.pdf"


def render_permit_pdf(permit: WorkPermit) -> bytes:
    tz = permit.site.tzinfo
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(f"{permit.permit_type.name} {permit.number}"))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(
        0, 10, _latin1(f"{permit.permit_type.name} #{permit.number}"), new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font("Helvetica", size=10)
    facts = [
        ("Site", permit.site.name),
        ("Vendor", permit.vendor.name),
        ("Status", permit.get_status_display()),
        ("Requested by", permit.requested_by.name),
        ("Created", timezone.localtime(permit.created_at, tz).strftime("%d-%b-%Y %H:%M %Z")),
    ]
    if permit.kind == PermitKind.SLA:
        facts += [("Service month", permit.month_label), ("Score", f"{permit.score}")]
    with pdf.table(col_widths=(40, 140), first_row_as_headings=False) as table:
        for label, value in facts:
            table.row([_latin1(label), _latin1(value)])
    section = None
    for answer in permit.answers.select_related("section").order_by("section__seqno", "seqno"):
        if answer.section_id != section:
            section = answer.section_id
            pdf.ln(4)
            pdf.set_font("Helvetica", "B", 12)
            pdf.cell(0, 8, _latin1(answer.section.name), new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("Helvetica", size=10)
        pdf.multi_cell(
            0,
            6,
            _latin1(f"{answer.seqno}. {answer.question}: {answer.answer or '-'}"),
            new_x="LMARGIN",
            new_y="NEXT",
        )
    steps = list(permit.steps.select_related("person"))
    if steps:
        pdf.ln(4)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, "Verification and approval", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=10)
        with pdf.table(col_widths=(30, 60, 30, 60)) as table:
            table.row(["Role", "Name", "Status", "When"])
            for step in steps:
                when = (
                    timezone.localtime(step.decided_at, tz).strftime("%d-%b-%Y %H:%M")
                    if step.decided_at
                    else "-"
                )
                table.row(
                    [
                        step.get_role_display(),
                        _latin1(step.person.name),
                        step.get_status_display(),
                        when,
                    ]
                )
    return bytes(pdf.output())
