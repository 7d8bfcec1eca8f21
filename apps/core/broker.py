"""Broker transports whose unacknowledged messages survive a dead worker, on a short lease.

Both transports here hand a message to a consumer under a lease (``visibility_timeout``
seconds) that the consuming worker renews while it holds the message (a thread of the worker's
main process, ``apps.core.worker_guard``), whether the task runs, waits for its ETA or sits
prefetched. A worker that dies stops renewing, so its messages are delivered again once their
lease runs out, within minutes, while a long task of a live worker is never delivered twice.
``tests/test_broker.py`` and ``tests/faults/`` hold them to it.

- ``filesystem://`` (the embedded default): kombu's folder transport deletes a message as it
  reads it, so a worker killed mid-task loses it. Here a consumer claims a message by renaming
  its file into ``inflight/`` (atomic: one consumer wins); an ack deletes the file, a requeue,
  a clean shutdown or an expired lease renames it back. Messages and binding tables are written
  to a temporary name and renamed into place, so a reader never sees half a file.
  Consumers do not poll on a timer: each listens on a doorbell (a UNIX datagram socket in
  ``doorbell/``) that every producer rings after writing a message, so a message is taken at
  once and an idle worker sleeps (a ring lost is made good within IDLE_WAIT). One listing of
  the folder serves every queue until it runs dry, so a backlog costs one listing, not one per
  message.
- ``redis://``: kombu keeps delivered messages in a sorted set scored by delivery time and
  restores those older than the visibility timeout; renewal re-scores the ones still held.

Lease times come from the broker's clock, never a worker's, so hosts whose clocks disagree
still agree on which lease ran out: on Redis every score is written and compared with the
server's ``TIME`` (inside a Lua script where it is written); in the folder broker every lease
is a file's modification time, stamped by the filesystem and compared with a clock file
stamped the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from kombu.exceptions import ChannelError
from kombu.transport import filesystem, redis, virtual
from kombu.transport.virtual import Empty
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

# The kombu minor series whose private transport methods the classes below override;
# pyproject.toml pins it and tests/test_broker.py checks the signatures against it.
KOMBU_SERIES = (5, 7)


def transport_for(url: str) -> str:
    """The transport for a broker URL, by the URL's scheme (settings.LEASED_BROKER_TRANSPORTS,
    else kombu's of that name): what a connection to another broker than the configured one
    names as its ``transport``, since Celery would otherwise use the configured broker's."""
    scheme = url.partition(":")[0]
    return str(settings.LEASED_BROKER_TRANSPORTS.get(scheme, scheme))


def _message_name(queue: str) -> str:
    # Sorted names are delivery order: milliseconds since the epoch first (comparable across
    # processes and restarts), then a uuid; "<queue>.msg.part" is never taken for a message.
    return f"{time.time_ns() // 1_000_000:015d}_{uuid.uuid4()}.{queue}.msg"


def _queue_of(name: str) -> str:
    return name.partition(".")[2].removesuffix(".msg")


IDLE_WAIT = 1.0  # seconds an idle consumer sleeps between looks if no doorbell rings
LISTING_REUSE = 0.005  # seconds one listing serves the other queues of a consumer's cycle


class Doorbell:
    """Wake-ups between the processes of one folder broker: each consumer binds a datagram
    socket in `folder`; a producer rings every socket there after writing a message."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._socket: socket.socket | None = None

    def listen(self) -> socket.socket | None:
        if self._socket is None:
            Path(self.folder).mkdir(parents=True, exist_ok=True)
            path = os.path.join(self.folder, f"{os.getpid()}-{uuid.uuid4().hex[:8]}.sock")
            if len(path.encode()) >= 100:  # AF_UNIX path limit: poll instead
                return None
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            listener.bind(path)
            listener.setblocking(False)
            self._socket = listener
        return self._socket

    def wait(self, seconds: float) -> bool:
        """Sleep until a ring or `seconds`; True when rung (without a socket: after a short
        nap, as if rung)."""
        listener = self.listen()
        if listener is None:
            time.sleep(min(seconds, 0.05))
            return True
        readable, _, _ = select.select([listener], [], [], seconds)
        if readable:
            with contextlib.suppress(BlockingIOError):
                while listener.recv(64):
                    pass
        return bool(readable)

    def nudge(self) -> None:
        """Wake this process's own consumer: it may take another message now (an ack freed a
        prefetch slot, on another thread than the one waiting)."""
        if self._socket is not None:
            with (
                contextlib.suppress(OSError),
                socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender,
            ):
                sender.setblocking(False)
                sender.sendto(b"!", self._socket.getsockname())

    def ring(self) -> None:
        try:
            sockets = [e.path for e in os.scandir(self.folder) if e.name.endswith(".sock")]
        except FileNotFoundError:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.setblocking(False)
            for path in sockets:
                try:
                    sender.sendto(b"!", path)
                except (ConnectionRefusedError, FileNotFoundError):
                    with contextlib.suppress(FileNotFoundError):  # its consumer is gone
                        os.unlink(path)
                except OSError:
                    pass  # a full buffer: that consumer is awake anyway

    def close(self) -> None:
        if self._socket is not None:
            path = self._socket.getsockname()
            self._socket.close()
            self._socket = None
            with contextlib.suppress(OSError):
                os.unlink(path)


class FilesystemQoS(virtual.QoS):
    """Acks delete the held file; rejects delete it or give it back. Either frees a prefetch
    slot, so the consumer is woken to take the next message."""

    channel: FilesystemChannel

    # Replaces: kombu's ack forgets the message (its file was deleted when it was read).
    def ack(self, delivery_tag: str) -> None:
        self.channel.settle(delivery_tag, requeue=False)
        super().ack(delivery_tag)
        self.channel.connection.doorbell.nudge()

    # Replaces: kombu's reject restores by publishing a copy; here the held file goes back.
    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        self.channel.settle(delivery_tag, requeue=requeue)
        super().ack(delivery_tag)
        self.channel.connection.doorbell.nudge()


class FilesystemChannel(filesystem.Channel):
    QoS = FilesystemQoS
    connection: FilesystemTransport

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inflight: dict[str, str] = {}  # delivery tag -> file name in the inflight folder
        self._noack_queues: set[str] = set()
        self._waiting: dict[str, deque[str]] = defaultdict(deque)  # queue -> names, oldest first
        self._listed_at = 0.0
        Path(self.inflight_folder).mkdir(parents=True, exist_ok=True)

    @property
    def inflight_folder(self) -> str:
        return str(self.transport_options.get("inflight_folder", "inflight"))

    @property
    def visibility_timeout(self) -> float:
        return float(self.transport_options.get("visibility_timeout", 3600))

    def filesystem_now(self) -> float:
        """The time the filesystem stamps files with now, as a file's modification time reads:
        the clock every lease of this broker is written and judged by (a worker's own clock
        may be off, and under a faked clock even stat() may be shifted)."""
        clock = os.path.join(os.path.dirname(os.path.abspath(self.inflight_folder)), "lease-clock")
        try:
            os.utime(clock)
        except FileNotFoundError:
            Path(clock).touch()
        return os.stat(clock).st_mtime

    # --- publishing ---------------------------------------------------------------------------
    # Replaces: kombu writes the message file in place (a reader can see half of it) and names
    # it by uuid only (no delivery order); here it is written aside, renamed in, rung for.
    def _put(self, queue: str, payload: dict, **kwargs: Any) -> None:  # type: ignore[override]
        final = os.path.join(self.data_folder_out, _message_name(queue))
        partial = final + ".part"
        try:
            with open(partial, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc
        self.connection.doorbell.ring()

    # Replaces: kombu records a binding in memory before writing its table (see below).
    def queue_bind(
        self,
        queue: str,
        exchange: str | None = None,
        routing_key: str = "",
        arguments: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        # kombu records a binding in the process-wide state before writing it to the table on
        # disk; another thread that sees the state's binding skips its own write and routes by
        # a table that may not exist yet, dropping its message. Write the table first.
        exchange = exchange or "amq.direct"
        # kombu returns three items (kombu-stubs say four).
        meta: tuple[str, str | None, str] = self.typeof(exchange).prepare_bind(  # type: ignore[assignment]
            queue, exchange, routing_key, arguments
        )
        self._queue_bind(exchange, *meta)
        super().queue_bind(queue, exchange, routing_key, arguments, **kwargs)

    # Replaces: kombu rewrites the table file in place; here under a lock, aside, renamed in.
    def _queue_bind(
        self, exchange: str, routing_key: str | None, pattern: str | None, queue: str | None
    ) -> None:
        table_file = self._exchange_file(exchange)  # type: ignore[attr-defined]
        self.control_folder.mkdir(exist_ok=True)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        try:
            with open(f"{table_file}.lock", "wb", buffering=0) as guard:
                filesystem.lock(guard, filesystem.LOCK_EX)  # type: ignore[attr-defined]
                try:
                    table = self.get_table(exchange)
                    if binding in table:
                        return
                    partial = f"{table_file}.{uuid.uuid4().hex}.part"
                    with open(partial, "wb") as handle:
                        handle.write(str_to_bytes(dumps([binding, *table])))
                    os.replace(partial, table_file)
                finally:
                    filesystem.unlock(guard)
        except OSError as exc:
            raise ChannelError(f"Cannot bind {queue!r} to {exchange!r}") from exc

    # --- consuming ----------------------------------------------------------------------------
    # Adds to kombu's: a no-ack queue (broadcasts, replies) is noted so nothing of it is held.
    def basic_consume(
        self, queue: str, no_ack: bool, callback: Any, consumer_tag: str | None, **kwargs: Any
    ) -> Any:
        if no_ack:  # broadcast and reply queues: nothing will ack, so nothing is held
            self._noack_queues.add(queue)
        self.connection.doorbell.listen()  # from now on no ring is lost
        return super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)

    def forget_listing(self) -> None:
        """A producer rang: what the last listing said is out of date."""
        self._listed_at = 0.0

    # Adds to kombu's: as basic_consume.
    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        if no_ack:
            self._noack_queues.add(queue)
        return super().basic_get(queue, no_ack, **kwargs)

    def _list(self) -> None:
        """One listing of the folder, shared out by queue, oldest message first."""
        self._waiting.clear()
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.endswith(".msg"):
                self._waiting[_queue_of(name)].append(name)
        self._listed_at = time.monotonic()

    # Replaces: kombu reads and deletes the file (a worker killed mid-task loses the message)
    # and lists the folder once per queue per look; here a rename into inflight/ claims it.
    def _get(self, queue: str) -> dict:  # type: ignore[override]
        names = self._waiting[queue]
        if not names and time.monotonic() - self._listed_at > LISTING_REUSE:
            self._list()
            names = self._waiting[queue]
        while names:
            name = names.popleft()
            waiting = os.path.join(self.data_folder_in, name)
            held = os.path.join(self.inflight_folder, name)
            try:
                # The lease starts before the claim, so a restore sweep never sees a freshly
                # claimed message as expired; the rename is the claim (one consumer wins).
                os.utime(waiting)
                os.rename(waiting, held)
            except FileNotFoundError:
                continue  # another consumer took it
            try:
                with open(held, "rb") as handle:
                    payload: dict[str, Any] = loads(bytes_to_str(handle.read()))
            except (OSError, ValueError) as exc:
                raise ChannelError(f"Cannot read message file {held!r}") from exc
            if queue in self._noack_queues:
                self._forget(name)
            else:
                self._inflight[payload["properties"]["delivery_tag"]] = name
            return payload
        raise Empty()

    def _forget(self, name: str) -> None:
        # Gone already: restored after an expired lease and taken by another consumer.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.inflight_folder, name))

    def _give_back(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.rename(
                os.path.join(self.inflight_folder, name), os.path.join(self.data_folder_in, name)
            )
        self.connection.doorbell.ring()

    def settle(self, delivery_tag: str, *, requeue: bool) -> None:
        """Ack (delete) or requeue (rename back, keeping its place) a held message."""
        name = self._inflight.pop(delivery_tag, None)
        if name is not None:
            (self._give_back if requeue else self._forget)(name)

    # Replaces: kombu restores by publishing a copy; a held file goes back in its place.
    def _restore(self, message: Any) -> None:
        if message.delivery_tag in self._inflight:
            self.settle(message.delivery_tag, requeue=True)
        else:
            super()._restore(message)

    # --- leases -------------------------------------------------------------------------------
    def renew_leases(self) -> None:
        for tag in held_tags(self._inflight):
            name = self._inflight.get(tag)
            if name is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.utime(os.path.join(self.inflight_folder, name))

    def restore_expired(self) -> int:
        """Give back messages whose holder stopped renewing their lease (it died)."""
        deadline = self.filesystem_now() - self.visibility_timeout
        restored = 0
        for entry in os.scandir(self.inflight_folder):
            try:
                if entry.stat().st_mtime < deadline:
                    os.rename(entry.path, os.path.join(self.data_folder_in, entry.name))
                    restored += 1
            except FileNotFoundError:
                continue
        if restored:
            logger.warning("broker_restored messages=%d reason=lease_expired", restored)
        return restored

    # Replaces: kombu counts files by its own naming.
    def _size(self, queue: str) -> int:
        return sum(1 for name in os.listdir(self.data_folder_in) if _queue_of(name) == queue)

    def backlog(self, queue: str) -> tuple[int, float | None]:
        """How many messages wait in `queue`, and the age in seconds of the oldest."""
        names = sorted(n for n in os.listdir(self.data_folder_in) if _queue_of(n) == queue)
        if not names:
            return 0, None
        published_at = int(names[0].partition("_")[0]) / 1000  # when it was written
        with contextlib.suppress(OSError, ValueError):  # taken meanwhile: the name will do
            with open(os.path.join(self.data_folder_in, names[0]), "rb") as handle:
                headers = loads(bytes_to_str(handle.read())).get("headers") or {}
            published_at = headers.get("published_at", published_at)
        return len(names), time.time() - published_at


class FilesystemTransport(filesystem.Transport):
    Channel = FilesystemChannel

    # Adds to kombu's: the doorbell of this broker's folder.
    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        folder = client.transport_options.get("doorbell_folder") or os.path.join(
            os.path.dirname(os.path.abspath(client.transport_options.get("data_folder_in", "."))),
            "doorbell",
        )
        self.doorbell = Doorbell(folder)

    # Replaces: kombu's virtual transport polls every polling_interval; here a consumer sleeps
    # until a producer rings (or IDLE_WAIT).
    def drain_events(  # type: ignore[override]
        self, connection: Any, timeout: float | None = None
    ) -> None:
        """Deliver one message; between looks, sleep until a producer rings (or IDLE_WAIT)."""
        started = time.monotonic()
        cycle, channels = self.cycle, cast("list[FilesystemChannel]", self.channels)
        assert cycle is not None  # both are set up with the transport
        while True:
            try:
                cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                left = None if timeout is None else timeout - (time.monotonic() - started)
                if left is not None and left <= 0:
                    raise TimeoutError() from None
                if self.doorbell.wait(IDLE_WAIT if left is None else min(left, IDLE_WAIT)):
                    for channel in channels:
                        channel.forget_listing()

    # Adds to kombu's: the doorbell's socket goes with the connection.
    def close_connection(self, connection: Any) -> None:
        self.doorbell.close()
        super().close_connection(connection)


# A delivered message's lease, scored by the server's clock: kombu scores it with the worker's.
_DELIVER_SCRIPT = """
local now = redis.call('TIME')
redis.call('ZADD', KEYS[1], tonumber(now[1]) + tonumber(now[2]) / 1000000, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
"""
# Renewal re-scores only messages still unacked (XX: an ack may have removed one meanwhile).
_RENEW_SCRIPT = """
local now = redis.call('TIME')
local score = tonumber(now[1]) + tonumber(now[2]) / 1000000
for _, tag in ipairs(ARGV) do
  redis.call('ZADD', KEYS[1], 'XX', score, tag)
end
return #ARGV
"""


def _server_time(client: Any) -> float:
    seconds, microseconds = client.time()
    return float(seconds) + float(microseconds) / 1_000_000


class RedisQoS(redis.QoS):
    """kombu's Redis QoS with every lease time taken from the server's clock, and the tags of the
    messages it holds kept where the worker guard's thread reads them (``held``)."""

    channel: RedisChannel
    _sweep_calls = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held: set[str] = set()

    # Replaces: kombu scores a delivered message with the worker's time().
    def append(self, message: Any, delivery_tag: str) -> None:
        delivery = message.delivery_info
        with self.channel.conn_or_acquire() as client:
            client.eval(
                _DELIVER_SCRIPT,
                2,
                self.unacked_index_key,
                self.unacked_key,
                delivery_tag,
                dumps([message._raw, delivery["exchange"], delivery["routing_key"]]),
            )
        virtual.QoS.append(self, message, delivery_tag)
        self.held.add(delivery_tag)

    # Adds to kombu's: the message is no longer held.
    def ack(self, delivery_tag: str) -> None:
        self.held.discard(delivery_tag)
        super().ack(delivery_tag)

    # Adds to kombu's: the message is no longer held.
    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        self.held.discard(delivery_tag)
        super().reject(delivery_tag, requeue=requeue)

    # Adds to kombu's: a closing channel gives everything back.
    def restore_unacked(self, client: Any = None) -> None:
        super().restore_unacked(client)
        self.held.clear()

    # Replaces: kombu judges expiry by the worker's time().
    def restore_visible(self, start: int = 0, num: int = 10, interval: int = 10) -> None:
        """Give back messages whose lease ran out, by the server's clock (kombu's sweep, judged
        by the server's time instead of the worker's)."""
        self._sweep_calls += 1
        if (self._sweep_calls - 1) % (interval or 1):  # a scan on every `interval`th call
            return
        with self.channel.conn_or_acquire() as client:
            ceil = _server_time(client) - self.visibility_timeout
            try:
                with redis.Mutex(client, self.unacked_mutex_key, self.unacked_mutex_expire):
                    visible = client.zrange(
                        self.unacked_index_key,
                        ceil,
                        0,
                        desc=True,
                        byscore=True,
                        offset=num and start,
                        num=num,
                        withscores=True,
                    )
                    for tag, _score in visible or []:
                        self.restore_by_tag(tag, client)
            except redis.MutexHeld:
                pass


class RedisChannel(redis.Channel):
    QoS = RedisQoS
    qos: RedisQoS

    def renew_leases(self) -> None:
        tags = held_tags(self.qos.held)
        if not tags:
            return
        with self.conn_or_acquire() as client:
            client.eval(_RENEW_SCRIPT, 1, self.unacked_index_key, *tags)

    def restore_expired(self) -> int:
        return 0  # kombu's own sweep (unacked_restore_interval, RedisQoS.restore_visible)

    def backlog(self, queue: str) -> tuple[int, float | None]:
        """How many messages wait in `queue`, and the age in seconds of the oldest."""
        with self.conn_or_acquire() as client:
            waiting = client.llen(queue)
            oldest = client.lindex(queue, -1) if waiting else None  # consumed from the right
        if oldest is None:
            return waiting, None
        published_at = loads(bytes_to_str(oldest)).get("headers", {}).get("published_at")
        return waiting, time.time() - published_at if published_at else None


def held_tags(delivered: Iterable[str]) -> list[str]:
    """The delivery tags a consumer holds, read from another thread than the one changing
    them (a set or dict that changes size while copied raises; copy again)."""
    while True:
        try:
            return list(delivered)
        except RuntimeError:
            continue


class RedisTransport(redis.Transport):
    Channel = RedisChannel


def queue_backlog(channel: Any, queue: str) -> dict[str, float | int | None]:
    """Waiting messages of `queue` and the oldest one's age (None where the broker won't say:
    RabbitMQ counts messages but does not show them without taking them)."""
    if hasattr(channel, "backlog"):
        waiting, oldest_age = channel.backlog(queue)
    else:
        waiting, oldest_age = channel.queue_declare(queue=queue, passive=True).message_count, None
    return {
        "waiting": waiting,
        "oldest_age_seconds": None if oldest_age is None else round(oldest_age, 1),
    }
