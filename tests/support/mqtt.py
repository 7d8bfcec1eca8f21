"""MQTT helpers for tests: an in-process amqtt broker on loopback and a paho subscriber."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import paho.mqtt.client as mqtt


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AmqttBroker:
    """amqtt in a thread of its own, bound to 127.0.0.1 only; can be stopped and restarted."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        started = threading.Event()
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)

            async def boot() -> None:
                self._broker = Broker(config)
                await self._broker.start()
                started.set()

            loop.run_until_complete(boot())
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("amqtt did not start")

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None


class Subscriber:
    """A paho client that records (topic, payload bytes) of everything under `topic_filter`."""

    def __init__(self, url: str, topic_filter: str) -> None:
        host, port = url.split("://", 1)[1].rsplit(":", 1)
        self.messages: list[tuple[str, bytes]] = []
        subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{free_port()}")
        self._client.on_message = lambda c, u, msg: self.messages.append((msg.topic, msg.payload))
        self._client.on_subscribe = lambda *args: subscribed.set()
        self._client.on_connect = lambda c, *args: c.subscribe(topic_filter, qos=1)
        self._client.connect(host, int(port), 30)
        self._client.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError(f"could not subscribe to {topic_filter} on {url}")

    def wait_for(self, count: int, timeout: float = 20) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.messages)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()
