"""A real Mosquitto with the users and ACL that manage.py sync_mqtt_auth writes: each device
signs in with its own secret and reaches only its own topics; nobody signs in anonymously."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as paho
import pytest
from django.core.management import call_command

from apps.mobile.models import MobileDevice
from tests import factories
from tests.faults.harness import MosquittoInstance, free_port
from tests.support.waiting import patience

pytestmark = [pytest.mark.services, pytest.mark.django_db]


class Peer:
    """A paho client signed in as `user`, recording what it receives."""

    def __init__(self, port: int, user: str | None, password: str | None) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.refused: int | None = None
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"p-{free_port()}")
        if user:
            self.client.username_pw_set(user, password)
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            self.refused = reason.value
        else:
            self.connected.set()

    def wait_connected(self) -> bool:
        deadline = time.monotonic() + patience(5)
        while time.monotonic() < deadline and not self.connected.is_set() and self.refused is None:
            time.sleep(0.02)
        return self.connected.is_set()

    def subscribe(self, topic: str) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(5), f"no SUBACK for {topic}"

    def wait_for(self, payload: bytes) -> None:
        deadline = time.monotonic() + patience(5)
        while payload not in [p for _, p in self.messages]:
            assert time.monotonic() < deadline, f"{payload!r} never arrived: {self.messages}"
            time.sleep(0.02)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def broker(tmp_path, settings):
    settings.MQTT_URL = "mqtt://intelliwiz:app-pw@127.0.0.1:1"
    settings.MQTT_BRIDGE_URL = "mqtt://bridge:bridge-pw@127.0.0.1:1"
    _, site = factories.client_and_site()
    devices = {}
    for name in ("phone-a", "phone-b"):
        device = MobileDevice(device_id=name, person=factories.person(site))
        device.set_secret(f"{name}-secret")
        device.save()
        devices[name] = device
    passwords, acl = tmp_path / "passwords", tmp_path / "acl"
    call_command("sync_mqtt_auth", password_file=passwords, acl_file=acl)
    mosquitto = MosquittoInstance(
        tmp_path / "mosquitto",
        extra_config=f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\n",
    )
    mosquitto.start()
    peers: list[Peer] = []

    def peer(user, password):
        connected = Peer(mosquitto.port, user, password)
        peers.append(connected)
        return connected

    yield mosquitto, peer, devices, (passwords, acl)
    for connected in peers:
        connected.close()
    mosquitto.kill()


def test_a_device_reaches_only_its_own_topics(broker) -> None:
    _, peer, _, _ = broker
    bridge = peer("bridge", "bridge-pw")
    phone_a, phone_b = peer("phone-a", "phone-a-secret"), peer("phone-b", "phone-b-secret")
    assert bridge.wait_connected() and phone_a.wait_connected() and phone_b.wait_connected()
    bridge.subscribe("intelliwiz/mobile/+/request")
    phone_a.subscribe("intelliwiz/mobile/#")  # tries to read everyone's traffic
    phone_b.subscribe("intelliwiz/mobile/phone-b/response")

    phone_a.publish("intelliwiz/mobile/phone-a/request", b"mine")
    phone_a.publish("intelliwiz/mobile/phone-b/request", b"posing as b")
    bridge.publish("intelliwiz/mobile/phone-a/response", b"for a")
    bridge.publish("intelliwiz/mobile/phone-b/response", b"for b, with a download link")
    # Markers sent after the forbidden messages: the broker delivers a publisher's messages in
    # order, so once a marker is in, a forbidden message that got through would be in too.
    phone_a.publish("intelliwiz/mobile/phone-a/request", b"end")
    bridge.publish("intelliwiz/mobile/phone-a/response", b"end")
    bridge.wait_for(b"end")
    phone_a.wait_for(b"end")
    phone_b.wait_for(b"for b, with a download link")

    assert bridge.messages == [
        ("intelliwiz/mobile/phone-a/request", b"mine"),
        ("intelliwiz/mobile/phone-a/request", b"end"),
    ]
    assert phone_a.messages == [
        ("intelliwiz/mobile/phone-a/response", b"for a"),
        ("intelliwiz/mobile/phone-a/response", b"end"),
    ]
    assert phone_b.messages == [
        ("intelliwiz/mobile/phone-b/response", b"for b, with a download link")
    ]


def test_nobody_signs_in_anonymously_or_with_someone_elses_secret(broker) -> None:
    _, peer, _, _ = broker
    assert not peer(None, None).wait_connected()
    assert not peer("phone-a", "phone-b-secret").wait_connected()
    assert not peer("intelliwiz", "wrong").wait_connected()
    assert peer("intelliwiz", "app-pw").wait_connected()


def test_a_disabled_device_is_shut_out_once_the_files_are_synced(broker) -> None:
    mosquitto, peer, devices, (passwords, acl) = broker
    assert peer("phone-b", "phone-b-secret").wait_connected()
    MobileDevice.objects.filter(pk=devices["phone-b"].pk).update(enabled=False)
    call_command("sync_mqtt_auth", password_file=passwords, acl_file=acl)
    mosquitto.reload()
    deadline = time.monotonic() + patience(5)
    while peer("phone-b", "phone-b-secret").wait_connected():  # until the reload takes effect
        assert time.monotonic() < deadline, "phone-b still signs in after the reload"
    assert peer("phone-a", "phone-a-secret").wait_connected()


def test_a_device_named_like_a_service_user_does_not_take_over_its_account(broker) -> None:
    """A device whose id is the bridge's user name: left out of the broker's password file,
    so the bridge keeps its account and the device's secret opens nothing; nor is a secret
    issued for such an id."""
    from django.core.management.base import CommandError

    mosquitto, peer, devices, (passwords, acl) = broker
    impostor = MobileDevice(device_id="bridge", person=devices["phone-a"].person)
    impostor.set_secret("takeover")
    impostor.save()
    call_command("sync_mqtt_auth", password_file=passwords, acl_file=acl)
    mosquitto.reload()
    assert len([ln for ln in passwords.read_text().splitlines() if ln.startswith("bridge:")]) == 1
    assert not peer("bridge", "takeover").wait_connected()
    assert peer("bridge", "bridge-pw").wait_connected()
    with pytest.raises(CommandError, match="broker's service user"):
        call_command("issue_device_secret", devices["phone-a"].person.loginid, "intelliwiz")
