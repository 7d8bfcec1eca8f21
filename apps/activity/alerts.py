"""Alert mails about one Jobneed: readings out of range (observation) and work done outside its
planned window (deviation). Each is sent once per Jobneed."""

from __future__ import annotations

from django.utils import timezone

from apps.activity.models import TOURS, Identifier, Jobneed, JobneedDetails
from apps.activity.results import AlertResult
from apps.core.mail import Mail, clean_recipients, deliver
from apps.core.models import Attachment
from apps.peoples.services import site_alert_recipients

OBSERVATION = "observation"
DEVIATION = "deviation"
EVENTS = (OBSERVATION, DEVIATION)
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


class NothingToAlert(Exception):
    """The Jobneed has no alert of this kind: a clear outcome, not a failure to retry."""


def alert_mail(jobneed_id: int, event: str, *, attach_files: bool = False) -> Mail:
    if event not in EVENTS:
        raise ValueError(f"event must be one of {', '.join(EVENTS)}; got {event!r}")
    jobneed = Jobneed.objects.select_related("site", "asset", "question_set", "performed_by").get(
        pk=jobneed_id
    )
    if event == OBSERVATION and not jobneed.has_alerts:
        raise NothingToAlert(f"jobneed {jobneed_id} has no out-of-range readings")
    if event == DEVIATION and not jobneed.deviation:
        raise NothingToAlert(f"jobneed {jobneed_id} did not deviate from its planned window")
    details = list(JobneedDetails.objects.filter(jobneed=jobneed))
    is_tour = jobneed.identifier in TOURS or jobneed.parent_id is not None
    if event == OBSERVATION:
        where = (
            f"Checkpoint:{jobneed.asset.name if jobneed.asset else jobneed.description} at "
            f"Site:{jobneed.site.name}"
            if is_tour
            else f"Site:{jobneed.site.name}"
        )
        checklist = jobneed.question_set.name if jobneed.question_set else jobneed.description
        subject = f"[READINGS ALERT] {where} having checklist [{checklist}] - readings out of range"
    else:
        kind = "TOUR" if is_tour else Identifier(jobneed.identifier).label.upper()
        subject = (
            f"[DEVIATION ALERT] {kind} {jobneed.description} at Site:{jobneed.site.name} "
            "was done outside its planned window"
        )
    recipients = site_alert_recipients([(jobneed.site_id, jobneed.client_id)])
    return Mail(
        key=f"jobneed:{jobneed.pk}:{event}",
        subject=subject,
        to=clean_recipients(recipients[(jobneed.site_id, jobneed.client_id)]),
        template="activity/mail/alert",
        context={
            "jobneed": jobneed,
            "details": details,
            "kind": "Checkpoint" if is_tour else "Job",
            "time_zone": jobneed.site.time_zone,
        },
        attachments=_attachments(jobneed, details) if attach_files else [],
    )


def _attachments(jobneed: Jobneed, details: list[JobneedDetails]) -> list[tuple[str, bytes, str]]:
    """Files of the Jobneed and its answers, read through the storage API (never a raw path)."""
    owners = [jobneed.uuid, *(d.uuid for d in details)]
    files = []
    for attachment in Attachment.objects.filter(
        owner_uuid__in=owners, size__lte=MAX_ATTACHMENT_BYTES
    ):
        with attachment.open() as handle:
            files.append(
                (
                    attachment.filename,
                    handle.read(),
                    attachment.content_type or "application/octet-stream",
                )
            )
    return files


def send_alert(
    jobneed_id: int, event: str, *, attach_files: bool = False, task_id: str = ""
) -> AlertResult:
    mail = alert_mail(jobneed_id, event, attach_files=attach_files)
    if not mail.to:
        return {"sent": False, "reason": "no valid recipient"}
    delivery = deliver([mail], task_id=task_id)
    delivery.raise_error()
    field = "alert_mail_sent_at" if event == OBSERVATION else "deviation_mail_sent_at"
    if mail.key in delivery.settled:
        Jobneed.objects.filter(pk=jobneed_id, **{f"{field}__isnull": True}).update(
            **{field: timezone.now()}
        )
    return {"sent": bool(delivery.sent), "attachments": len(mail.attachments)}
