"""The leased transports: a message held by a consumer that dies is delivered again after its
lease; one whose consumer renews the lease never is; writes are never read half-done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from queue import Empty

import kombu
import pytest
from kombu import Connection
from kombu.transport import redis
from packaging.requirements import Requirement
from packaging.version import Version

from apps.core.broker import KOMBU_SERIES, FilesystemTransport, RedisTransport, transport_for
from tests.conftest import BASE_DIR, service_url
from tests.support.waiting import patience

LEASE = 1.0  # seconds: short, so a dead consumer's message comes back within the test


def filesystem_options(folder: Path, **extra: object) -> dict[str, object]:
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "inflight_folder": str(folder / "inflight"),
        "control_folder": str(folder / "control"),
        "polling_interval": 0.01,
        "visibility_timeout": LEASE,
        **extra,
    }


@pytest.fixture(params=["filesystem", "redis"])
def broker(request, tmp_path) -> Iterator[tuple[str, dict[str, object]]]:
    """(url, transport options) of a leased transport with a one-second lease."""
    if request.param == "filesystem":
        (tmp_path / "queue").mkdir()
        yield "filesystem://", filesystem_options(tmp_path)
        return
    url = service_url("TEST_REDIS_URL")
    options = {"visibility_timeout": LEASE, "unacked_restore_throttle": 1}
    with Connection(url, transport=transport_for(url), transport_options=options) as conn:
        conn.default_channel.client.flushdb()
    yield url, options
    with Connection(url, transport=transport_for(url), transport_options=options) as conn:
        conn.default_channel.client.flushdb()


def connect(broker: tuple[str, dict[str, object]]) -> Connection:
    url, options = broker
    return Connection(url, transport=transport_for(url), transport_options=options)


def take(queue, timeout: float = 5.0, restore=None):
    """The next message, sweeping for expired leases as a worker's timer would."""
    deadline = time.monotonic() + timeout
    while True:
        if restore is not None:
            restore()
        try:
            return queue.get(timeout=patience(0.2))
        except Empty:
            if time.monotonic() > deadline:
                raise


def test_transports_are_the_leased_ones(broker) -> None:
    with connect(broker) as conn:
        assert isinstance(conn.transport, FilesystemTransport | RedisTransport)


def test_a_message_held_by_a_killed_consumer_is_delivered_again_after_its_lease(broker) -> None:
    url, options = broker
    with connect(broker) as conn:
        conn.SimpleQueue("leased").put({"n": 1})
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import json, sys, time\n"
            "from kombu import Connection\n"
            "import django; django.setup()\n"
            "from apps.core.broker import transport_for\n"
            "conn = Connection(sys.argv[1], transport=transport_for(sys.argv[1]),\n"
            "                  transport_options=json.loads(sys.argv[2]))\n"
            "message = conn.SimpleQueue('leased').get(timeout=10)\n"
            "print(message.payload['n'], flush=True)\n"
            "time.sleep(60)\n",
            url,
            json.dumps(options),
        ],
        cwd=BASE_DIR,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "intelliwiz_config.settings"},
    )
    try:
        assert holder.stdout.readline().strip() == "1"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    with connect(broker) as conn:
        queue = conn.SimpleQueue("leased")
        with pytest.raises(Empty):
            queue.get(timeout=patience(0.1))  # still leased to the dead consumer
        message = take(queue, restore=queue.channel.restore_expired)
        assert message.payload == {"n": 1}
        message.ack()
        with pytest.raises(Empty):
            take(queue, timeout=LEASE * 2, restore=queue.channel.restore_expired)


def test_a_renewed_lease_keeps_a_message_with_its_consumer(broker) -> None:
    with connect(broker) as holder_conn, connect(broker) as other_conn:
        holder = holder_conn.SimpleQueue("renewed")
        holder.put({"n": 2})
        message = holder.get(timeout=patience(5))
        other = other_conn.SimpleQueue("renewed")
        deadline = time.monotonic() + LEASE * 3
        while time.monotonic() < deadline:
            holder.channel.renew_leases()
            other.channel.restore_expired()
            with pytest.raises(Empty):
                other.get(timeout=patience(0.1))
        message.ack()
        with pytest.raises(Empty):
            take(other, timeout=LEASE * 2, restore=other.channel.restore_expired)


def test_requeue_gives_the_message_back_and_reject_drops_it(broker) -> None:
    with connect(broker) as conn:
        queue = conn.SimpleQueue("settle")
        queue.put({"n": 1})
        queue.put({"n": 2})
        first = queue.get(timeout=patience(5))
        first.requeue()
        # Redis requeues at the back, the folder transport in the message's old place.
        messages = {
            m.payload["n"]: m
            for m in (queue.get(timeout=patience(5)), queue.get(timeout=patience(5)))
        }
        assert sorted(messages) == [1, 2]
        messages[1].reject()
        messages[2].ack()
        with pytest.raises(Empty):
            take(queue, timeout=LEASE * 2, restore=queue.channel.restore_expired)


def test_a_clean_close_gives_unacknowledged_messages_back(broker) -> None:
    with connect(broker) as conn:
        queue = conn.SimpleQueue("closing")
        queue.put({"n": 3})
        assert queue.get(timeout=patience(5)).payload == {"n": 3}
    with connect(broker) as conn:
        assert conn.SimpleQueue("closing").get(timeout=patience(5)).payload == {"n": 3}


def test_no_ack_consumers_hold_nothing(tmp_path) -> None:
    (tmp_path / "queue").mkdir()
    options = filesystem_options(tmp_path)
    with Connection(
        "filesystem://", transport=FilesystemTransport, transport_options=options
    ) as conn:
        queue = conn.SimpleQueue("broadcast", no_ack=True)
        queue.put({"n": 4})
        assert queue.get(timeout=patience(5)).payload == {"n": 4}
        assert list((tmp_path / "inflight").iterdir()) == []


def test_concurrent_producers_and_a_polling_consumer_lose_and_corrupt_nothing(tmp_path) -> None:
    (tmp_path / "queue").mkdir()
    options = filesystem_options(tmp_path, polling_interval=0.001)
    per_producer, producers = 300, 3
    received: list[dict] = []

    def produce(n: int) -> None:
        with Connection(
            "filesystem://", transport=FilesystemTransport, transport_options=options
        ) as conn:
            queue = conn.SimpleQueue("race")
            for i in range(per_producer):
                queue.put({"producer": n, "i": i, "pad": "x" * 2000})
            queue.close()

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(producers)]
    for thread in threads:
        thread.start()
    with Connection(
        "filesystem://", transport=FilesystemTransport, transport_options=options
    ) as conn:
        assert isinstance(conn.transport, FilesystemTransport)
        queue = conn.SimpleQueue("race")
        while len(received) < per_producer * producers:
            message = queue.get(timeout=patience(10))
            received.append(message.payload)
            message.ack()
        queue.close()
    for thread in threads:
        thread.join()
    assert sorted((m["producer"], m["i"]) for m in received) == [
        (n, i) for n in range(producers) for i in range(per_producer)
    ]
    assert list((tmp_path / "inflight").iterdir()) == []


# apps/core/broker.py overrides members of kombu's transports; each override is held by a test
# of what it does (above and below), so a kombu release that changes one fails here.


def test_installed_kombu_is_the_series_the_transports_were_written_for() -> None:
    assert Version(kombu.__version__).release[:2] == KOMBU_SERIES
    pyproject = tomllib.loads((Path(BASE_DIR) / "pyproject.toml").read_text())
    pins = [Requirement(r) for r in pyproject["project"]["dependencies"]]
    (pin,) = [r for r in pins if r.name == "kombu"]
    major, minor = KOMBU_SERIES
    assert pin.specifier.contains(f"{major}.{minor}.0")
    assert not pin.specifier.contains(f"{major}.{minor + 1}.0"), "pin kombu's minor version"


def test_queue_size_counts_what_waits(broker) -> None:
    with connect(broker) as conn:
        queue = conn.SimpleQueue("sized")
        for n in range(3):
            queue.put({"n": n})
        assert queue.qsize() == 3
        queue.get(timeout=5).ack()
        assert queue.qsize() == 2
        queue.clear()


def test_a_waiting_consumer_wakes_when_another_process_publishes(tmp_path) -> None:
    """The folder broker's consumer sleeps until a producer rings its doorbell: a message from
    another process is taken at once, not at its next look (IDLE_WAIT, a second, later)."""
    (tmp_path / "queue").mkdir()
    options = filesystem_options(tmp_path)
    received: list[float] = []
    with Connection(
        "filesystem://", transport=FilesystemTransport, transport_options=options
    ) as conn:
        consumer = conn.Consumer(
            conn.SimpleQueue("rung").queue,
            callbacks=[lambda body, message: (received.append(time.monotonic()), message.ack())],
        )
        consumer.consume()
        producer = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import json, random, sys, time, django\n"
                "django.setup()\n"
                "from kombu import Connection\n"
                "from apps.core.broker import FilesystemTransport\n"
                "with Connection('filesystem://', transport=FilesystemTransport,\n"
                "                transport_options=json.loads(sys.argv[1])) as conn:\n"
                "    for n in range(3):\n"
                "        time.sleep(0.5 + random.random())\n"
                "        print(time.monotonic(), flush=True)\n"
                "        conn.SimpleQueue('rung').put({'n': n})\n",
                json.dumps(options),
            ],
            cwd=BASE_DIR,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "intelliwiz_config.settings"},
        )
        try:
            for _ in range(3):
                conn.drain_events(timeout=60)
            published = [float(line) for line in producer.communicate(timeout=60)[0].split()]
        finally:
            if producer.poll() is None:
                producer.kill()
    latencies = [taken - sent for sent, taken in zip(published, received, strict=True)]
    assert max(latencies) < 0.4, latencies


def test_a_message_that_waited_longer_than_the_lease_is_not_taken_for_expired(tmp_path) -> None:
    """Claiming a message refreshes its file's time before the rename: without that, a message
    that waited in the queue longer than the lease would look expired the moment it is held,
    and another consumer's sweep would hand it out a second time."""
    (tmp_path / "queue").mkdir()
    options = filesystem_options(tmp_path, visibility_timeout=30)
    with Connection(
        "filesystem://", transport=FilesystemTransport, transport_options=options
    ) as holder_conn:
        holder = holder_conn.SimpleQueue("waited")
        holder.put({"n": 5})
        (waiting,) = (tmp_path / "queue").glob("*.waited.msg")
        an_hour_ago = time.time() - 3600
        os.utime(waiting, (an_hour_ago, an_hour_ago))
        message = holder.get(timeout=patience(5))
        with Connection(
            "filesystem://", transport=FilesystemTransport, transport_options=options
        ) as other_conn:
            other = other_conn.SimpleQueue("waited")
            assert other.channel.restore_expired() == 0
            with pytest.raises(Empty):
                other.get(timeout=patience(0.2))
        message.ack()


@pytest.mark.parametrize(
    ("holder_skew", "sweeper_skew"),
    [(-300.0, 0.0), (0.0, 300.0)],
    ids=["holder-behind", "sweeper-ahead"],
)
def test_hosts_with_skewed_clocks_neither_restore_a_live_lease_nor_write_a_short_one(
    broker, monkeypatch, holder_skew, sweeper_skew
) -> None:
    """Leases are stamped and judged by the broker's clock (Redis TIME, the filesystem's
    stamp): a host whose clock is five minutes off another's changes nothing."""
    real_time = time.time

    def set_clock(skew: float) -> None:
        # As a faked clock would: every reader of the time in this process is off.
        monkeypatch.setattr(time, "time", lambda: real_time() + skew)
        monkeypatch.setattr(redis, "time", time.time)

    with connect(broker) as holder_conn, connect(broker) as sweeper_conn:
        holder = holder_conn.SimpleQueue("skewed")
        holder.put({"n": 6})
        sweeper = sweeper_conn.SimpleQueue("skewed")
        set_clock(holder_skew)
        message = holder.get(timeout=patience(5))
        for renew in (False, True):  # the lease as delivered, then as renewed
            set_clock(holder_skew)
            if renew:
                holder.channel.renew_leases()
            set_clock(sweeper_skew)
            sweeper.channel.restore_expired()
            sweeper.channel.qos.restore_visible(num=100, interval=1)
            with pytest.raises(Empty):
                sweeper.get(timeout=patience(0.1))
        monkeypatch.undo()
        message.ack()
