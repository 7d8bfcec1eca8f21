"""Signed decision links: bound to one approval step (so to one person, permit and role),
expiring, and single-use (a decided step no longer accepts its link)."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

from apps.work_order_management.models import ApprovalStep

SALT = "work-permit-decision"


class LinkError(Exception):
    """A link that cannot be used; the message is shown to the person who opened it."""


def decision_url(step: ApprovalStep) -> str:
    token = signing.dumps(
        {
            "s": step.pk,
            "p": step.permit_id,
            "u": step.person_id,
            "r": step.role,
            "n": step.link_nonce,
        },
        salt=SALT,
        compress=True,
    )
    return settings.SITE_URL.rstrip("/") + reverse("permits:decide-link", args=[token])


def step_for_token(token: str) -> ApprovalStep:
    try:
        data = signing.loads(token, salt=SALT, max_age=settings.APPROVAL_LINK_MAX_AGE_HOURS * 3600)
    except signing.SignatureExpired:
        raise LinkError("This link has expired. Ask for the request to be sent again.") from None
    except signing.BadSignature:
        raise LinkError("This link is not valid: it may have been altered or cut short.") from None
    step = (
        ApprovalStep.objects.select_related(
            "permit", "permit__permit_type", "permit__site", "person"
        )
        .filter(pk=data.get("s"))
        .first()
    )
    if step is None or (step.permit_id, step.person_id, step.role, step.link_nonce) != (
        data.get("p"),
        data.get("u"),
        data.get("r"),
        data.get("n"),
    ):
        raise LinkError("This link is not valid any more.")
    if step.status != ApprovalStep.Status.PENDING:
        raise LinkError(f"This link was used already: you {step.status.lower()} this request.")
    return step
