"""Small helpers the product's pages share: a status as a coloured badge with its label."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

register = template.Library()

# A status or priority code's tone on the page: done, waiting, trouble or under way.
TONES = {
    "ok": {"COMPLETED", "APPROVED", "DONE", "RESOLVED", "CLOSED", "LOW"},
    "warn": {
        "PENDING",
        "PENDING_VERIFICATION",
        "PENDING_APPROVAL",
        "ONHOLD",
        "PARTIALLYCOMPLETED",
        "PROGRESS",
        "MEDIUM",
    },
    "bad": {"REJECTED", "FAILED", "CANCELLED", "AUTOCLOSED", "HIGH"},
    "info": {"NEW", "OPEN", "ASSIGNED", "INPROGRESS", "WORKING", "STANDBY", "MAINTENANCE"},
}
TONE_OF = {code: tone for tone, codes in TONES.items() for code in codes}


@register.simple_tag
def badge(code: str, label: str = "") -> str:
    """`code` (HIGH, ASSIGNED, ...) shown as its human `label` in a badge of its tone."""
    return format_html(
        '<span class="badge {}" data-code="{}">{}</span>',
        TONE_OF.get(str(code), ""),
        code,
        label or str(code).replace("_", " ").capitalize(),
    )
