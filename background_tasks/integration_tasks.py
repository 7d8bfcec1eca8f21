"""Integration tasks: MQTT publishing, the mobile GraphQL pipeline, partner APIs and bulk sync."""

from __future__ import annotations

from celery import shared_task

from apps.core.idempotency import perform_once
from apps.core.tasks.base import ExternalServiceTask
from apps.core.tasks.utils import task_retry_policy
from apps.integrations.mqtt import publish, validate_mqtt_payload, validate_mqtt_topic

__all__ = ["publish_mqtt", "validate_mqtt_payload", "validate_mqtt_topic"]


@shared_task(
    name="publish_mqtt",
    base=ExternalServiceTask,
    bind=True,
    service_name="mqtt-broker",
    **task_retry_policy("external_api"),
)
def publish_mqtt(
    self, topic: str, payload: object, qos: int = 1, retain: bool = False
) -> dict[str, object]:
    """Publish one message and wait for the broker's acknowledgement, once per task id."""
    validate_mqtt_topic(topic)  # bad input fails at once, before the circuit or the ledger
    sent: list[int] = []

    def send() -> None:
        with self.external_call():
            sent.append(publish(topic, payload, qos=qos, retain=retain))

    performed = perform_once(f"mqtt:{self.request.id}", send, task_id=self.request.id or "")
    return {"topic": topic, "published": performed, "bytes": sent[0] if sent else 0}
