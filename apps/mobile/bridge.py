"""The MQTT side door for devices: requests on intelliwiz/mobile/<device>/request, answers on
intelliwiz/mobile/<device>/response.

Where the broker signs devices in and its ACL keeps each to its own topics
(MQTT_DEVICES_AUTHENTICATED_BY_BROKER), the topic names the device and a request carries no
secret. Elsewhere (and from devices built before that) a request carries the device's secret,
checked here.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings

from apps.mobile.ingest import (
    BadRequest,
    DeviceRejected,
    accept,
    authenticate_device,
    device_signed_in_by_broker,
)

logger = logging.getLogger(__name__)

REQUEST_TOPICS = "intelliwiz/mobile/+/request"


def response_topic(device_id: str) -> str:
    return f"intelliwiz/mobile/{device_id}/response"


def handle(topic: str, payload: bytes) -> tuple[str, dict[str, Any]] | None:
    """The answer to one request message, or None when there is nobody to answer."""
    levels = topic.split("/")
    if len(levels) != 4 or levels[:2] != ["intelliwiz", "mobile"] or levels[3] != "request":
        return None
    device_id = levels[2]
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return response_topic(device_id), {"error": "the message is not JSON"}
    secret = body.pop("secret", None) if isinstance(body, dict) else None
    try:
        if secret is None and settings.MQTT_DEVICES_AUTHENTICATED_BY_BROKER:
            device = device_signed_in_by_broker(device_id)
        else:
            device = authenticate_device(device_id, secret if isinstance(secret, str) else "")
        return response_topic(device_id), accept(device, body)
    except DeviceRejected:
        return response_topic(device_id), {"error": "unauthorized"}
    except BadRequest as exc:
        return response_topic(device_id), {"error": str(exc)}
