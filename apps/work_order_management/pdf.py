"""The permit (or SLA report) as a PDF, rendered in memory by the worker that mails it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone

from apps.reports.pdf_fonts import FAMILY, heading_style, unicode_pdf
from apps.work_order_management.models import (
    ApprovalStep,
    PermitKind,
    WorkPermit,
)

if TYPE_CHECKING:
    from fpdf import FPDF


def pdf_filename(permit: WorkPermit) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "-", permit.permit_type.name).strip("-") or "permit"
    return f"{stem}-{permit.number}.pdf"


def ordered_steps(permit: WorkPermit) -> list[ApprovalStep]:
    """The permit's steps in the order they are decided: verifiers, then approvers."""
    verifiers_first = Case(
        When(role=ApprovalStep.Role.VERIFIER, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    return list(permit.steps.select_related("person").order_by(verifiers_first, "id"))


def approval_conditions(steps: list[ApprovalStep]) -> list[tuple[str, str]]:
    """(approver, remark) for each approval given with a remark: the conditions of the work."""
    return [
        (step.person.name, step.remark)
        for step in steps
        if step.role == ApprovalStep.Role.APPROVER
        and step.status == ApprovalStep.Status.APPROVED
        and step.remark
    ]


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(4)
    pdf.set_font(FAMILY, "B", 12)
    pdf.cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, size=10)


def render_permit_pdf(permit: WorkPermit) -> bytes:
    tz = permit.site.tzinfo
    pdf = unicode_pdf()
    pdf.set_title(f"{permit.permit_type.name} {permit.number}")
    pdf.add_page()
    pdf.set_font(FAMILY, "B", 15)
    pdf.cell(0, 10, f"{permit.permit_type.name} #{permit.number}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, size=10)
    facts = [
        ("Site", permit.site.name),
        ("Vendor", permit.vendor.name),
        ("Status", permit.get_status_display()),
        ("Requested by", permit.requested_by.name),
        ("Created", timezone.localtime(permit.created_at, tz).strftime("%d %b %Y %H:%M %Z")),
    ]
    if permit.kind == PermitKind.SLA:
        facts += [("Service month", permit.month_label), ("Score", f"{permit.score}")]
    with pdf.table(col_widths=(40, 140), first_row_as_headings=False) as table:
        for label, value in facts:
            table.row([label, str(value)])
    section = None
    for answer in permit.answers.select_related("section").order_by("section__seqno", "seqno"):
        if answer.section_id != section:
            section = answer.section_id
            _heading(pdf, answer.section.name)
        text = f"{answer.seqno}. {answer.question}: {answer.answer or '-'}"
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    steps = ordered_steps(permit)
    if steps:
        _heading(pdf, "Verification and approval")
        with pdf.table(col_widths=(25, 45, 35, 32, 53), headings_style=heading_style()) as table:
            table.row(["Role", "Name", "Status", "When", "Remark"])
            for step in steps:
                when = (
                    timezone.localtime(step.decided_at, tz).strftime("%d %b %Y %H:%M")
                    if step.decided_at
                    else "-"
                )
                table.row(
                    [
                        step.get_role_display(),
                        step.person.name,
                        step.outcome,
                        when,
                        step.remark or "-",
                    ]
                )
    conditions = approval_conditions(steps)
    if conditions:
        _heading(pdf, "Conditions of approval")
        for name, condition in conditions:
            pdf.multi_cell(0, 6, f"{name}: {condition}", new_x="LMARGIN", new_y="NEXT")
    remarks = list(permit.remarks.select_related("person"))
    if remarks:
        _heading(pdf, "Remarks")
        for remark in remarks:
            at = timezone.localtime(remark.at, tz).strftime("%d %b %Y %H:%M")
            pdf.multi_cell(
                0, 6, f"{at}, {remark.person.name}: {remark.text}", new_x="LMARGIN", new_y="NEXT"
            )
    return bytes(pdf.output())
