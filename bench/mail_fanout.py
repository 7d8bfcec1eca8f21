"""Mail fan-out of auto-close and escalation into a real SMTP sink, beside bare smtplib.

Run from the repository root (see bench/README.md); the run empties the database it uses:

    INTELLIWIZ_VAR_DIR=/tmp/bench-mail .venv/bin/python bench/mail_fanout.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_ops .venv/bin/python bench/mail_fanout.py

It starts an aiosmtpd sink (its Sink handler, in a process of its own so it does not share the
GIL with the sender), seeds Jobneeds and tickets that owe N mails each, times `autoclose` and
`escalate_due_tickets` sending through Django's SMTP backend, and times plain smtplib sending
N pre-rendered messages over one connection to the same sink, before and after the services.
"""

# ruff: noqa: E402 (the app modules can only be imported after django.setup())
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import django

# Run as a script, only bench/ would be on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "intelliwiz_config.settings")
os.environ["DJANGO_DEBUG"] = "false"  # no debug cursor: figures of the code as deployed
django.setup()

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from apps.y_helpdesk.autoclose import autoclose
from apps.y_helpdesk.services import escalate_due_tickets
from bench.measure import load_average
from bench.operations import (
    BenchError,
    Measurement,
    ensure_database,
    line,
    print_header,
    reset,
    seed_jobneeds,
    seed_tickets,
    seed_world,
)

SENDER = "intelliwiz@localhost"
# aiosmtpd's Sink offering PIPELINING (bench/smtp_sink.py); --no-pipelining: aiosmtpd's own.
SINK_HANDLERS = {True: "bench.smtp_sink.PipeliningSink", False: "aiosmtpd.handlers.Sink"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000, help="mails each service sends")
    parser.add_argument(
        "--profile", type=int, default=0, help="print the N costliest functions of each service"
    )
    parser.add_argument(
        "--no-pipelining", action="store_true", help="a sink that does not offer PIPELINING"
    )
    args = parser.parse_args()
    if args.mails < 3:
        parser.error("--mails must be at least 3")
    # print_header reports the seed sizes: two in three seeded Jobneeds owe a mail.
    args.jobneeds, args.tickets = args.mails * 3 // 2, args.mails
    return args


@contextmanager
def smtp_sink(pipelining: bool) -> Iterator[int]:
    """An aiosmtpd Sink (accepts and drops every message) on a free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
            "-c", SINK_HANDLERS[pipelining],
        ],
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise BenchError("the aiosmtpd sink did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def bare_messages(count: int) -> list[bytes]:
    """Pre-rendered text + HTML messages of about an auto-close mail's size."""
    messages = []
    for n in range(count):
        message = EmailMessage()
        message["Subject"] = f"AUTOCLOSE task planned on 05-Mar-2026 14:30 not reported ({n})"
        message["From"] = SENDER
        message["To"] = "incharge@facility.test, admin@facility.test"
        message.set_content("This task was not reported in time.\n" * 12)
        message.add_alternative("<p>This task was not reported in time.</p>\n" * 14, "html")
        messages.append(message.as_bytes(policy=policy.SMTP))  # CRLF line ends
    return messages


def bare_send(port: int, messages: list[bytes]) -> float:
    """Seconds smtplib takes to send `messages` over one connection."""
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for message in messages:
            smtp.sendmail(SENDER, ["incharge@facility.test", "admin@facility.test"], message)
    return time.perf_counter() - start


def measure(call: Callable[[], Any], profile: int) -> tuple[Any, Measurement]:
    measured = Measurement()

    def count(execute: Callable[..., Any], *args: Any) -> Any:
        measured.queries += 1
        return execute(*args)

    profiler = cProfile.Profile() if profile else None
    start, cpu = time.perf_counter(), time.process_time()
    with connection.execute_wrapper(count):
        if profiler:
            profiler.enable()
        result = call()
        if profiler:
            profiler.disable()
    measured.seconds = time.perf_counter() - start
    measured.cpu_seconds = time.process_time() - cpu
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(profile)
    return result, measured


def run(args: argparse.Namespace) -> None:
    ensure_database()
    call_command("migrate", verbosity=0)
    with smtp_sink(not args.no_pipelining) as port:
        settings.EMAIL_BACKEND = "apps.core.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        print_header(args)
        messages = bare_messages(args.mails)
        bare_send(port, messages[:50])  # warm-up: the sink's first connection
        bare_before = bare_send(port, messages)

        now = timezone.now()
        reset()
        world = seed_world()
        seed_jobneeds(world, args.jobneeds, now)
        seed_tickets(world, args.tickets, now)
        escalated, escalation = measure(lambda: escalate_due_tickets(now=now), args.profile)
        closed, closing = measure(lambda: autoclose(now=now), args.profile)
        bare_after = bare_send(port, messages)

    bare_rate = args.mails / ((bare_before + bare_after) / 2)
    line("bare_smtplib_mails", args.mails)
    line(
        "bare_smtplib_mails_per_s_before_after",
        f"{args.mails / bare_before:.0f} / {args.mails / bare_after:.0f}",
    )
    for name, report, measured in (
        ("escalation", escalated, escalation),
        ("autoclose", closed, closing),
    ):
        rate = report["mails_sent"] / measured.seconds
        line(f"{name}_mails", report["mails_sent"])
        line(f"{name}_seconds", f"{measured.seconds:.2f}")
        line(f"{name}_queries", measured.queries)
        line(f"{name}_mails_per_s", f"{rate:.0f}")
        line(f"{name}_sender_cpu_ms_per_mail", f"{measured.cpu_seconds * 1000 / args.mails:.2f}")
        line(f"{name}_ratio_to_bare", f"{rate / bare_rate:.2f}")


def main() -> None:
    args = parse_args()
    try:
        run(args)
    except BenchError as exc:
        sys.exit(f"error: {exc}")
    line("load_average_at_end", load_average())


if __name__ == "__main__":
    main()
