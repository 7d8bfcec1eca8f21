"""MQTT publishing: strict validation of topics and payloads, and one client per process.

Payloads are machine data: bytes go out byte for byte, text as UTF-8, anything else as compact
UTF-8 JSON. Nothing is HTML-escaped or rewritten.
"""

from __future__ import annotations

import json
import os
import ssl
import threading
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings

MAX_TOPIC_BYTES = 65535  # the MQTT limit for a UTF-8 string


class MqttValidationError(ValueError):
    """A topic or payload that must not be published; not worth a retry."""


class MqttMessageRejected(MqttValidationError):
    """The broker dropped the connection on this message, twice: the message, not the broker,
    is at fault (it never counts against the broker's circuit)."""


def _forbidden_in_mqtt_strings(code: int) -> bool:
    """What MQTT strings must not carry (MQTT 5.0, 1.5.4) and brokers drop the connection on:
    C0 and C1 control characters, surrogates and Unicode noncharacters."""
    return (
        code < 0x20
        or 0x7F <= code <= 0x9F
        or 0xD800 <= code <= 0xDFFF
        or 0xFDD0 <= code <= 0xFDEF
        or code & 0xFFFE == 0xFFFE
    )


def validate_mqtt_topic(topic: object) -> str:
    """Return `topic` if it is a safe publish topic under an allowed prefix; raise otherwise."""
    checked = _well_formed_topic(topic)
    if not _under_allowed_prefixes(checked):
        prefixes = ", ".join(settings.MQTT_ALLOWED_TOPIC_PREFIXES) or "none configured"
        raise MqttValidationError(f"MQTT topic is outside the allowed prefixes ({prefixes})")
    return checked


def outside_allowed_prefixes(topic: object) -> bool:
    """A topic safe to publish but outside MQTT_ALLOWED_TOPIC_PREFIXES (upstream's topics)."""
    try:
        checked = _well_formed_topic(topic)
    except MqttValidationError:
        return False
    return not _under_allowed_prefixes(checked)


def _under_allowed_prefixes(topic: str) -> bool:
    allowed = settings.MQTT_ALLOWED_TOPIC_PREFIXES
    return any(topic == prefix or topic.startswith(prefix + "/") for prefix in allowed)


def _well_formed_topic(topic: object) -> str:
    if not isinstance(topic, str) or not topic:
        raise MqttValidationError("MQTT topic must be a non-empty string")
    if topic != topic.strip():
        raise MqttValidationError("MQTT topic must not start or end with whitespace")
    forbidden = next((c for c in topic if _forbidden_in_mqtt_strings(ord(c))), None)
    if forbidden is not None:
        raise MqttValidationError(
            f"MQTT topic must not contain control characters or noncharacters "
            f"(U+{ord(forbidden):04X})"
        )
    if len(topic.encode("utf-8")) > MAX_TOPIC_BYTES:
        raise MqttValidationError(f"MQTT topic exceeds {MAX_TOPIC_BYTES} bytes")
    if "+" in topic or "#" in topic:
        raise MqttValidationError("MQTT publish topics must not contain wildcards (+ or #)")
    if topic.startswith("$"):
        raise MqttValidationError("MQTT topics starting with '$' are reserved for the broker")
    levels = topic.split("/")
    if any(level == "" for level in levels):
        raise MqttValidationError("MQTT topic must not have an empty level")
    if any(level == ".." for level in levels):
        raise MqttValidationError("MQTT topic must not have a '..' level")
    return topic


def validate_mqtt_payload(payload: object) -> bytes:
    """The bytes to publish: bytes as they are, str as UTF-8, anything else as UTF-8 JSON."""
    if isinstance(payload, bytes | bytearray):
        data = bytes(payload)
    elif isinstance(payload, str):
        data = payload.encode("utf-8")
    else:
        try:
            text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise MqttValidationError(f"MQTT payload is not JSON-serialisable: {exc}") from None
        data = text.encode("utf-8")
    limit = settings.MQTT_MAX_PAYLOAD_BYTES
    if len(data) > limit:
        raise MqttValidationError(f"MQTT payload is {len(data)} bytes; the limit is {limit}")
    return data


class MqttNotConfigured(RuntimeError):
    """MQTT_URL is not set: this deployment has no broker to publish to."""


class _ProcessClient:
    """A paho client shared by one process (rebuilt after a fork), connected on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._client: Any = None

    def get(self) -> Any:
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                self._client = self._connect()
                self._pid = os.getpid()
            return self._client

    def reset(self) -> None:
        with self._lock:
            if self._client is not None and self._pid == os.getpid():
                self._client.loop_stop()
                self._client.disconnect()
            self._client = None

    def _connect(self) -> Any:
        client = new_client("publisher")
        client.loop_start()
        # Connected means the broker's CONNACK arrived: only then does a dropped connection
        # during a publish say something about the broker or the message.
        deadline = time.monotonic() + settings.MQTT_ACK_TIMEOUT_SECONDS
        while not client.is_connected():
            if time.monotonic() > deadline:
                client.loop_stop()
                raise ConnectionError("the MQTT broker did not accept the connection in time")
            time.sleep(0.01)
        return client


def new_client(purpose: str, broker_url: str | None = None) -> Any:
    """A paho client connected to `broker_url` (MQTT_URL by default; TLS and credentials when
    the URL says so); the caller starts its network loop."""
    import paho.mqtt.client as paho

    broker_url = broker_url or settings.MQTT_URL
    if not broker_url:
        raise MqttNotConfigured("MQTT_URL is not configured, so nothing can be published")
    url = urlsplit(broker_url)
    if not url.hostname:
        raise MqttNotConfigured(f"the MQTT URL for {purpose} names no host")
    client = paho.Client(
        paho.CallbackAPIVersion.VERSION2,
        client_id=f"{settings.MQTT_CLIENT_ID_PREFIX}-{purpose}-{os.getpid()}-{os.urandom(3).hex()}",
    )
    if url.username:
        client.username_pw_set(unquote(url.username), unquote(url.password or ""))
    if url.scheme == "mqtts":
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    client.connect(url.hostname, url.port or (8883 if url.scheme == "mqtts" else 1883), 30)
    return client


_client = _ProcessClient()


def publish(topic: str, payload: object, *, qos: int = 1, retain: bool = False) -> int:
    """Validate and publish; wait for the broker's acknowledgement. Returns the bytes sent.

    Raises MqttValidationError for bad input, ConnectionError when the broker is down or does
    not acknowledge in time.
    """
    topic = validate_mqtt_topic(topic)
    data = validate_mqtt_payload(payload)
    if qos not in (0, 1, 2):
        raise MqttValidationError(f"qos must be 0, 1 or 2, got {qos!r}")
    try:
        return _publish_once(topic, data, qos, retain)
    except _DroppedOnPublish:
        pass
    # The broker dropped the connection as the message arrived: a blip, or a message it
    # refuses. The same message on a fresh connection tells which.
    try:
        return _publish_once(topic, data, qos, retain)
    except _DroppedOnPublish:
        raise MqttMessageRejected(
            "the MQTT broker dropped the connection on this message twice; it refuses it"
        ) from None


def _wait_for_ack(client: Any, info: Any) -> None:
    """Wait for the broker's acknowledgement, but not past a dropped connection."""
    deadline = time.monotonic() + settings.MQTT_ACK_TIMEOUT_SECONDS
    while not info.is_published() and client.is_connected() and time.monotonic() < deadline:
        info.wait_for_publish(timeout=0.05)


class _DroppedOnPublish(Exception):
    """The connection was up when publishing started and gone before the acknowledgement."""


def _publish_once(topic: str, data: bytes, qos: int, retain: bool) -> int:
    try:
        client = _client.get()
    except (OSError, RuntimeError, ValueError) as exc:
        _client.reset()
        if isinstance(exc, MqttNotConfigured):
            raise
        raise ConnectionError(f"MQTT publish failed: {exc}") from exc
    try:
        info = client.publish(topic, data, qos=qos, retain=retain)
        _wait_for_ack(client, info)
    except (OSError, RuntimeError, ValueError) as exc:
        dropped = not client.is_connected()
        _client.reset()
        if dropped:
            raise _DroppedOnPublish from exc
        raise ConnectionError(f"MQTT publish failed: {exc}") from exc
    if not info.is_published():
        dropped = not client.is_connected()
        _client.reset()
        if dropped:
            raise _DroppedOnPublish
        raise ConnectionError(f"MQTT broker did not acknowledge (rc={info.rc})")
    return len(data)
