"""Fail loudly, naming the service, when one of CI's real services does not answer.

Each check speaks the service's own protocol, not just TCP: PostgreSQL runs a query, Redis
answers PING, RabbitMQ completes an AMQP handshake, Mosquitto acknowledges an MQTT CONNECT.
"""

from __future__ import annotations

import os
import socket
import sys

import psycopg
import redis
from kombu import Connection


def check_postgres() -> None:
    with psycopg.connect(os.environ["CI_POSTGRES_DSN"], connect_timeout=5) as conn:
        conn.execute("SELECT 1")


def check_redis() -> None:
    redis.Redis.from_url(os.environ["TEST_REDIS_URL"], socket_timeout=5).ping()


def check_rabbitmq() -> None:
    with Connection(os.environ["TEST_RABBITMQ_URL"], connect_timeout=5) as conn:
        conn.ensure_connection(max_retries=1)


def check_mosquitto() -> None:
    host, port = os.environ["TEST_MQTT_HOST"], int(os.environ["TEST_MQTT_PORT"])
    # MQTT 3.1.1 CONNECT, clean session, keep-alive 10 s, client id "ci-check".
    client_id = b"ci-check"
    variable = b"\x00\x04MQTT\x04\x02\x00\x0a"
    payload = len(client_id).to_bytes(2, "big") + client_id
    packet = b"\x10" + bytes([len(variable) + len(payload)]) + variable + payload
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(packet)
        connack = sock.recv(4)
    if connack[:1] != b"\x20" or connack[3:4] != b"\x00":
        raise ConnectionError(f"unexpected CONNACK {connack!r}")


def main() -> int:
    failed = []
    for name, check in [
        ("PostgreSQL", check_postgres),
        ("Redis", check_redis),
        ("RabbitMQ", check_rabbitmq),
        ("Mosquitto", check_mosquitto),
    ]:
        try:
            check()
            print(f"ok: {name} answers")
        except Exception as exc:
            failed.append(name)
            print(f"FAILED: {name} does not answer: {type(exc).__name__}: {exc}", file=sys.stderr)
    if failed:
        print(
            f"CI needs {', '.join(failed)}; see README.md (Real services) to restart it.",
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
