"""Serve device requests that arrive over MQTT (see apps.mobile.bridge)."""

from __future__ import annotations

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.integrations import mqtt
from apps.mobile.bridge import REQUEST_TOPICS, handle

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Bridge device requests from MQTT to the task queue, answering on response topics."

    def handle(self, *args, **options):
        if not settings.MQTT_URL:
            raise CommandError("MQTT_URL is not configured")
        import paho.mqtt.client as paho

        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        client = mqtt.new_client("bridge", settings.MQTT_BRIDGE_URL)
        client.on_connect = lambda c, *_: c.subscribe(REQUEST_TOPICS, qos=1)
        # Said once the broker grants the subscription: from then on no request is missed.
        client.on_subscribe = lambda *_: self.stdout.write(
            f"mqtt_bridge: listening on {REQUEST_TOPICS}"
        )

        def on_message(_client, _userdata, message: paho.MQTTMessage) -> None:
            try:
                answer = handle(message.topic, bytes(message.payload))
                if answer is not None:
                    mqtt.publish(*answer)
            except Exception:  # one bad message must not stop the bridge; it is logged
                logger.exception("mqtt_bridge_message_failed topic=%s", message.topic)

        client.on_message = on_message
        client.loop_start()
        stop.wait()
        client.loop_stop()
        client.disconnect()
