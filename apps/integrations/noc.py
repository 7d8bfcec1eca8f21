"""Data mismatches reported to the NOC: validated, stored as one alert per window, published on
the NOC alerts topic and mailed to the NOC, each side effect once."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.core.idempotency import perform_once, side_effect_identity
from apps.core.mail import Mail, clean_recipients, deliver
from apps.integrations.models import NocAlert
from apps.integrations.results import NocNotification

_KIND = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
MAX_DETAILS_BYTES = 16 * 1024


class MismatchValidationError(ValueError):
    """A mismatch report that cannot be accepted; the message names the field."""


def validate_mismatch(data: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MismatchValidationError("mismatch_data must be an object")
    kind, source, subject = data.get("kind"), data.get("source"), data.get("subject")
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise MismatchValidationError("kind must be an upper-case code like SYNC_COUNT_MISMATCH")
    texts: dict[str, str] = {}
    for name, value, limit in (("source", source, 128), ("subject", subject, 200)):
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise MismatchValidationError(f"{name} must be a non-empty string of at most {limit}")
        texts[name] = value.strip()
    details = data.get("details", {})
    if not isinstance(details, dict):
        raise MismatchValidationError("details must be an object")
    try:
        size = len(json.dumps(details, allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise MismatchValidationError(f"details must be JSON: {exc}") from None
    if size > MAX_DETAILS_BYTES:
        raise MismatchValidationError(f"details are {size} bytes; the limit is {MAX_DETAILS_BYTES}")
    unknown = set(data) - {"kind", "source", "subject", "details"}
    if unknown:
        raise MismatchValidationError(f"unknown fields: {', '.join(sorted(unknown))}")
    return {"kind": kind, **texts, "details": details}


def record_mismatch(data: dict[str, Any], now: datetime | None = None) -> tuple[NocAlert, bool]:
    """The alert for this mismatch in the current window, and whether it is new."""
    now = now or timezone.now()
    window = settings.NOC_ALERT_WINDOW_MINUTES * 60
    window_start = datetime.fromtimestamp(now.timestamp() // window * window, tz=UTC)
    fingerprint = hashlib.sha256(
        "\x1f".join((data["kind"], data["source"], data["subject"])).encode()
    ).hexdigest()
    try:
        with transaction.atomic():
            alert = NocAlert.objects.create(
                fingerprint=fingerprint,
                window_start=window_start,
                first_seen=now,
                last_seen=now,
                **data,
            )
        return alert, True
    except IntegrityError:
        NocAlert.objects.filter(fingerprint=fingerprint, window_start=window_start).update(
            occurrences=F("occurrences") + 1, last_seen=now
        )
        return NocAlert.objects.get(fingerprint=fingerprint, window_start=window_start), False


def notify_noc(
    alert: NocAlert, publish: Callable[[str, object], object], task_id: str = ""
) -> NocNotification:
    """Publish and mail the alert unless done before; safe to repeat after a failure."""
    published = mailed = False
    if alert.published_at is None and settings.MQTT_URL:
        key = f"noc-alert:{alert.pk}:mqtt"
        envelope = {
            "message_id": side_effect_identity(key),  # a repeated publish carries the same
            "alert": alert.pk,
            "kind": alert.kind,
            "source": alert.source,
            "subject": alert.subject,
            "details": alert.details,
            "first_seen": alert.first_seen.isoformat(),
        }
        published = perform_once(
            key,
            lambda: publish(settings.MQTT_NOC_ALERTS_TOPIC, envelope),
            task_id=task_id,
        )
        NocAlert.objects.filter(pk=alert.pk).update(published_at=timezone.now())
    recipients = clean_recipients(settings.NOC_ALERT_EMAILS)
    if alert.mailed_at is None and recipients:
        mail = Mail(
            key=f"noc-alert:{alert.pk}:mail",
            subject=f"[NOC] {alert.kind}: {alert.subject}",
            to=recipients,
            template="integrations/mail/noc_alert",
            context={
                "alert": alert,
                "details_json": json.dumps(alert.details, indent=2),
                "time_zone": "UTC",
            },
        )
        delivery = deliver([mail], task_id=task_id)
        delivery.raise_error()
        mailed = bool(delivery.sent)
        NocAlert.objects.filter(pk=alert.pk).update(mailed_at=timezone.now())
    return {"published": published, "mailed": mailed}
