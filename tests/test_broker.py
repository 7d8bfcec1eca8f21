"""The embedded broker: messages written while a consumer polls are never read half-written."""

from __future__ import annotations

import threading

from kombu import Connection

from apps.core.broker import Transport


def test_concurrent_producers_and_a_polling_consumer_lose_and_corrupt_nothing(tmp_path) -> None:
    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "control_folder": str(tmp_path / "control"),
        "polling_interval": 0.001,
    }
    per_producer, producers = 300, 3
    received: list[dict] = []

    def produce(n: int) -> None:
        with Connection("filesystem://", transport_options=options) as conn:
            queue = conn.SimpleQueue("race")
            for i in range(per_producer):
                queue.put({"producer": n, "i": i, "pad": "x" * 2000})
            queue.close()

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(producers)]
    for thread in threads:
        thread.start()
    with Connection("filesystem://", transport_options=options) as conn:
        assert isinstance(conn.transport, Transport)
        queue = conn.SimpleQueue("race")
        while len(received) < per_producer * producers:
            message = queue.get(timeout=10)
            received.append(message.payload)
            message.ack()
        queue.close()
    for thread in threads:
        thread.join()
    assert sorted((m["producer"], m["i"]) for m in received) == [
        (n, i) for n in range(producers) for i in range(per_producer)
    ]
