"""Change-data capture to the NOC: saves and deletes of the configured models are published
over MQTT after the transaction commits; a rolled-back save publishes nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import serializers
from django.db import models
from django.db.models.signals import post_delete, post_save

from apps.core.enqueue import enqueue_on_commit


def change_envelope(instance: models.Model, operation: str) -> dict[str, Any]:
    if operation == "DELETE":
        payload: dict[str, Any] = {"pk": instance.pk}
    else:
        (record,) = json.loads(serializers.serialize("json", [instance]))
        payload = {"pk": record["pk"], **record["fields"]}
    return {
        # The same on every copy (a retried publish whose PUBACK was lost): a subscriber
        # recognises a repeat by it.
        "message_id": uuid.uuid4().hex,
        "operation": operation,
        "app": instance._meta.app_label,
        "models": instance._meta.model_name,
        "payload": payload,
    }


def _publish_after_commit(instance: models.Model, operation: str) -> None:
    if not settings.MQTT_URL:
        return
    envelope = change_envelope(instance, operation)
    enqueue_on_commit("publish_mqtt", settings.MQTT_CHANGES_TOPIC, envelope)


def _saved(
    sender: type[models.Model], instance: models.Model, created: bool, raw: bool = False, **_: Any
) -> None:
    if not raw:  # fixtures being loaded are not changes
        _publish_after_commit(instance, "CREATE" if created else "UPDATE")


def _deleted(sender: type[models.Model], instance: models.Model, **_: Any) -> None:
    _publish_after_commit(instance, "DELETE")


def connect_change_publishing() -> None:
    for label in settings.MQTT_CDC_MODELS:
        model = apps.get_model(label)
        post_save.connect(_saved, sender=model, dispatch_uid=f"cdc-save-{label}")
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"cdc-delete-{label}")
