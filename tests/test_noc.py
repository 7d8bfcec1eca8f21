"""Mismatch reports: validated, one NOC alert per window, published and mailed once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from apps.core.idempotency import side_effect_identity
from apps.integrations import mqtt
from apps.integrations.models import NocAlert
from apps.integrations.noc import (
    MismatchValidationError,
    notify_noc,
    record_mismatch,
    validate_mismatch,
)
from background_tasks import send_mismatch_notification
from tests.support.mqtt import AmqttBroker, Subscriber

REPORT = {
    "kind": "SYNC_COUNT_MISMATCH",
    "source": "device-42",
    "subject": "jobneeds of site S1",
    "details": {"expected": 12, "actual": 11},
}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be an object"),
        (REPORT | {"kind": "lower"}, "upper-case code"),
        (REPORT | {"source": " "}, "source must be a non-empty string"),
        (REPORT | {"subject": "x" * 201}, "subject must be a non-empty string of at most 200"),
        (REPORT | {"details": [1]}, "details must be an object"),
        (REPORT | {"details": {"n": float("nan")}}, "details must be JSON"),
        (REPORT | {"user": "root"}, "unknown fields: user"),
    ],
)
def test_bad_reports_are_refused_naming_the_field(data, message) -> None:
    with pytest.raises(MismatchValidationError, match=message):
        validate_mismatch(data)


@pytest.mark.django_db
def test_repeats_within_a_window_are_one_alert(settings) -> None:
    settings.NOC_ALERT_WINDOW_MINUTES = 60
    start = datetime(2026, 5, 1, 10, 5, tzinfo=UTC)
    first, new = record_mismatch(validate_mismatch(REPORT), now=start)
    again, repeated_new = record_mismatch(
        validate_mismatch(REPORT), now=start + timedelta(minutes=30)
    )
    later, later_new = record_mismatch(validate_mismatch(REPORT), now=start + timedelta(hours=1))
    assert (new, repeated_new, later_new) == (True, False, True)
    assert again.pk == first.pk and again.occurrences == 2
    assert later.pk != first.pk
    other, _ = record_mismatch(validate_mismatch(REPORT | {"source": "device-7"}), now=start)
    assert other.pk not in (first.pk, later.pk)


@pytest.mark.django_db
def test_an_alert_is_published_and_mailed_once(settings, mailoutbox) -> None:
    broker = AmqttBroker()
    broker.start()
    settings.MQTT_URL = broker.url
    settings.NOC_ALERT_EMAILS = ["noc@facility.test", "bad-address"]
    mqtt._client.reset()
    subscriber = Subscriber(broker.url, settings.MQTT_NOC_ALERTS_TOPIC)
    try:
        alert, _ = record_mismatch(validate_mismatch(REPORT))
        assert notify_noc(alert, mqtt.publish) == {"published": True, "mailed": True}
        alert.refresh_from_db()
        assert notify_noc(alert, mqtt.publish) == {"published": False, "mailed": False}
        ((_topic, payload),) = subscriber.wait_for(1)
    finally:
        subscriber.close()
        mqtt._client.reset()
        broker.stop()
    published = json.loads(payload)
    assert published["details"] == {"expected": 12, "actual": 11}
    # A repeat of this publish (a PUBACK lost) would carry the same id: the alert's own.
    assert published["message_id"] == side_effect_identity(f"noc-alert:{alert.pk}:mqtt")
    (mail,) = mailoutbox
    assert mail.to == ["noc@facility.test"]
    assert mail.subject == "[NOC] SYNC_COUNT_MISMATCH: jobneeds of site S1"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_task_reports_through_the_worker(worker, worker_mqtt_broker, mail_sink) -> None:
    subscriber = Subscriber(worker_mqtt_broker.url, "noc/alerts")
    try:
        first = send_mismatch_notification.apply_async((REPORT,), ignore_result=False).get(
            timeout=30
        )
        second = send_mismatch_notification.apply_async((REPORT,), ignore_result=False).get(
            timeout=30
        )
        assert subscriber.wait_for(1) and len(subscriber.messages) == 1
    finally:
        subscriber.close()
    assert (first["new"], first["published"], first["mailed"]) == (True, True, True)
    assert (second["new"], second["occurrences"], second["published"]) == (False, 2, False)
    assert NocAlert.objects.count() == 1
    ((recipients, _message),) = mail_sink.wait_for(1)
    assert recipients == ["noc@facility.test"]
    with pytest.raises(MismatchValidationError):
        send_mismatch_notification.apply_async(({"kind": "x"},), ignore_result=False).get(
            timeout=30
        )
