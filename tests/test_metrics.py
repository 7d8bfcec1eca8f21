"""Observability: the task_run line of deployed workers, and /metrics after real worker runs."""

from __future__ import annotations

import os
import shlex
import socket

import pytest

from intelliwiz_config.celery import app
from tests.conftest import BASE_DIR, ManagedProcess, process_env

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def procfile_command(process: str) -> list[str]:
    """The Procfile's command line of `process`, run by this interpreter."""
    for line in (BASE_DIR / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name == process:
            argv = shlex.split(command)
            assert argv[0] == "celery"
            return ["-m", *argv]
    raise AssertionError(f"no {process} in the Procfile")


def test_a_procfile_worker_writes_the_task_run_line(tmp_path) -> None:
    # The Procfile's own command (Celery's default WARNING level), on a broker of its own, so
    # the session's test worker cannot take the message.
    var_dir = tmp_path / "var"
    argv = procfile_command("worker_maintenance")
    argv[argv.index("-n") + 1] = f"procfile-{os.getpid()}@{socket.gethostname()}"
    worker = ManagedProcess(
        argv, process_env(INTELLIWIZ_VAR_DIR=str(var_dir)), tmp_path / "worker.log"
    )
    broker = var_dir / "broker"
    for folder in ("queue", "inflight", "control"):
        (broker / folder).mkdir(parents=True)
    try:
        with app.connection_for_write(
            transport_options={
                **app.conf.broker_transport_options,
                "data_folder_in": str(broker / "queue"),
                "data_folder_out": str(broker / "queue"),
                "inflight_folder": str(broker / "inflight"),
                "control_folder": str(broker / "control"),
            }
        ) as connection:
            sent = app.send_task("task_every_min", connection=connection)
        # No "ready." to wait for: the worker logs it at INFO.
        worker.wait_for_log(f"task_run task=task_every_min id={sent.id} outcome=success")
    finally:
        worker.stop()
