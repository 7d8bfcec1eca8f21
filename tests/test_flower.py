"""Flower as compose runs it: every endpoint, /metrics and /healthcheck included, asks for
FLOWER_BASIC_AUTH."""

from __future__ import annotations

import base64
import http.client
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import BASE_DIR, ManagedProcess, process_env
from tests.faults.harness import free_port
from tests.support.waiting import patience

pytestmark = pytest.mark.worker


def status_of(port: int, path: str, credentials: str | None = None) -> int:
    headers = {}
    if credentials:
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        return connection.getresponse().status
    except OSError:
        return 0  # not listening yet
    finally:
        connection.close()


def test_compose_runs_flower_with_its_password_on_every_endpoint() -> None:
    compose = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
    assert compose["services"]["flower"]["command"][:3] == [
        "python",
        "-m",
        "intelliwiz_config.flower",
    ]


def test_every_flower_endpoint_asks_for_its_password(tmp_path: Path) -> None:
    port = free_port()
    flower = ManagedProcess(
        ["-m", "intelliwiz_config.flower", f"--port={port}", "--address=127.0.0.1"],
        process_env(FLOWER_BASIC_AUTH="ops:s3cret-pw"),
        tmp_path / "flower.log",
    )
    try:
        deadline = time.monotonic() + patience(60)
        while status_of(port, "/healthcheck", "ops:s3cret-pw") != 200:
            assert time.monotonic() < deadline, flower.log()[-3000:]
            time.sleep(0.5)
        for path in ("/metrics", "/healthcheck", "/", "/workers", "/tasks", "/api/workers"):
            assert status_of(port, path) == 401, path
            assert status_of(port, path, "ops:wrong") == 401, path
            assert status_of(port, path, "ops:s3cret-pw") == 200, path
    finally:
        flower.stop()
