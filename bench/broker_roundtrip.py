"""Celery round trip and throughput on the configured broker, against its raw one-client ceiling.

Run from the repository root (see bench/README.md):

    INTELLIWIZ_VAR_DIR=/tmp/bench-var .venv/bin/python bench/broker_roundtrip.py

It migrates the database, starts one bench worker consuming only the `bench` queue, measures,
stops the worker and prints one `name  value` line per figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import celery
import django
import kombu
import redis
from celery.result import ResultSet
from kombu import Connection
from kombu.utils.url import maybe_sanitize_url

# Run as a script, only bench/ would be on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "intelliwiz_config.settings")

from django.conf import settings
from django.core.cache import cache

from bench.noop_tasks import BENCH_QUEUE, COUNTER_KEY, app, noop, noop_count

REPO_ROOT = Path(__file__).resolve().parent.parent
CELERY = str(REPO_ROOT / ".venv" / "bin" / "celery")
RAW_QUEUE = "bench-raw"
RAW_PAYLOAD = "x" * 1024  # about the size of a Celery task message
CONNECT_TIMEOUT_S = 5.0
WORKER_START_TIMEOUT_S = 60.0
WORKER_STOP_TIMEOUT_S = 30.0


class BenchError(Exception):
    """A failure that ends the run with a message instead of a traceback."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=int, default=200, help="sequential round trips")
    parser.add_argument("--throughput", type=int, default=1000, help="tasks per burst")
    parser.add_argument("--warmup", type=int, default=20, help="round trips before measuring")
    parser.add_argument(
        "--raw", type=int, help="raw put+get messages (default: 20000 Redis, 2000 others)"
    )
    parser.add_argument("--concurrency", type=int, default=1, help="bench worker processes")
    parser.add_argument(
        "--poll-ms",
        type=float,
        default=2.0,
        help="result polling interval of the database result backend (Celery's default is 500)",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="limit in seconds for each measured phase"
    )
    args = parser.parse_args()
    if min(args.latency, args.throughput, args.warmup, args.concurrency) < 1:
        parser.error("counts must be at least 1")
    if args.latency < 2:
        parser.error("--latency needs at least 2 samples for percentiles")
    return args


def line(name: str, value: object) -> None:
    print(f"{name:<44}{value}", flush=True)


def check_broker(url: str) -> str:
    """Connect once and return the transport's driver type; BenchError if unreachable."""
    conn = Connection(
        url,
        transport_options=app.conf.broker_transport_options,
        connect_timeout=CONNECT_TIMEOUT_S,
    )
    try:
        conn.ensure_connection(max_retries=1, interval_start=0)
        return conn.transport.driver_type
    except Exception as exc:
        raise BenchError(f"broker {maybe_sanitize_url(url)} is unreachable: {exc}") from exc
    finally:
        conn.release()


def raw_redis(url: str, count: int) -> float:
    """Messages/s of LPUSH then RPOP, one message at a time, on a scratch key."""
    client = redis.Redis.from_url(url, socket_timeout=CONNECT_TIMEOUT_S)
    key = f"{RAW_QUEUE}:{os.getpid()}"
    try:
        started = time.perf_counter()
        for _ in range(count):
            client.lpush(key, RAW_PAYLOAD)
            if client.rpop(key) is None:
                raise BenchError("raw Redis loop lost a message")
        return count / (time.perf_counter() - started)
    finally:
        client.delete(key)
        client.close()


def raw_kombu(url: str, count: int) -> float:
    """Messages/s of a kombu SimpleQueue put, get and ack, one message at a time."""
    with Connection(
        url,
        transport_options=app.conf.broker_transport_options,
        connect_timeout=CONNECT_TIMEOUT_S,
    ) as conn:
        queue = conn.SimpleQueue(RAW_QUEUE)
        try:
            queue.clear()
            started = time.perf_counter()
            for _ in range(count):
                queue.put(RAW_PAYLOAD)
                queue.get(block=True, timeout=CONNECT_TIMEOUT_S).ack()
            return count / (time.perf_counter() - started)
        finally:
            queue.close()  # cancel the consumer before its queue goes
            queue.queue.delete()
            queue.queue.exchange.delete()


def reset_bench_queue(*, delete: bool) -> None:
    """Empty the bench queue (a crashed run may have left messages), or delete it at the end."""
    with app.connection_for_write() as conn:
        queue = app.amqp.queues[BENCH_QUEUE].bind(conn.default_channel)
        queue.declare()  # also tells a virtual transport (Redis) which binding to drop
        if delete:
            queue.delete()
        else:
            queue.purge()


def forget_bench_results() -> None:
    from django_celery_results.models import TaskResult  # needs django.setup() first

    TaskResult.objects.filter(task_name__startswith="bench.").delete()


def start_worker(concurrency: int, log_path: Path) -> subprocess.Popen[bytes]:
    # `-A bench.noop_tasks` (the project's app, with the bench queue added) rather than
    # `-A intelliwiz_config -I bench.noop_tasks`: the worker checks `-Q` before importing `-I`.
    command = [
        CELERY, "-A", "bench.noop_tasks", "worker", "-n", f"bench-{os.getpid()}@%h",
        "-Q", BENCH_QUEUE, "-c", str(concurrency),
        "--without-mingle", "--without-gossip", "-l", "WARNING",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """Warm shutdown; if it hangs, kill the worker's own process group (its pool children)."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(WORKER_STOP_TIMEOUT_S)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    worker.wait(WORKER_STOP_TIMEOUT_S)


def await_first_result(worker: subprocess.Popen[bytes], poll_s: float) -> None:
    """The worker is ready once it has run a task; fail fast if it exits first."""
    result = noop.delay()
    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    while not result.ready():
        if worker.poll() is not None:
            raise BenchError(f"bench worker exited with status {worker.returncode}")
        if time.monotonic() > deadline:
            raise BenchError(f"bench worker ran no task within {WORKER_START_TIMEOUT_S:.0f} s")
        time.sleep(poll_s)
    result.get()


def round_trips(count: int, poll_s: float, timeout: float) -> list[float]:
    """Milliseconds of `count` sequential noop.delay().get() calls."""
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        noop.delay().get(timeout=timeout, interval=poll_s)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def throughput_with_results(count: int, poll_s: float, timeout: float) -> float:
    started = time.perf_counter()
    results = ResultSet([noop.delay() for _ in range(count)])
    results.join(timeout=timeout, interval=poll_s)
    return count / (time.perf_counter() - started)


def throughput_ignore_result(count: int, poll_s: float, timeout: float) -> float:
    """Results ignored; completion is the worker's counter in Django's default cache."""
    cache.set(COUNTER_KEY, 0, timeout=None)
    started = time.perf_counter()
    for _ in range(count):
        noop_count.apply_async(ignore_result=True)
    deadline = time.monotonic() + timeout
    while (cache.get(COUNTER_KEY) or 0) < count:
        if time.monotonic() > deadline:
            raise BenchError(f"ignore_result burst not done within {timeout:.0f} s")
        time.sleep(poll_s)
    elapsed = time.perf_counter() - started
    cache.delete(COUNTER_KEY)
    return count / elapsed


def print_header(url: str, transport: str, concurrency: int, poll_ms: float) -> None:
    line("broker_url", maybe_sanitize_url(url))
    line("broker_transport", transport)
    line("result_backend", app.conf.result_backend)
    line("cache_backend", settings.CACHES["default"]["BACKEND"])
    line("database_engine", settings.DATABASES["default"]["ENGINE"])
    line("python", platform.python_version())
    line("celery", celery.__version__)
    line("kombu", kombu.__version__)
    line("nproc", len(os.sched_getaffinity(0)))
    line("worker_concurrency", concurrency)
    line("worker_prefetch_multiplier", app.conf.worker_prefetch_multiplier)
    line("result_poll_interval_ms", poll_ms)


def run(args: argparse.Namespace) -> None:
    url = app.conf.broker_url
    transport = check_broker(url)
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    if migrate.returncode:
        raise BenchError(f"manage.py migrate failed with status {migrate.returncode}")
    django.setup()
    poll_s = args.poll_ms / 1000
    print_header(url, transport, args.concurrency, args.poll_ms)

    if transport == "redis":
        raw_count = args.raw or 20000
        line("raw_method", "redis-py LPUSH then RPOP, 1 client, 1 KiB")
        raw_rate = raw_redis(url, raw_count)
    else:
        raw_count = args.raw or 2000
        line("raw_method", "kombu SimpleQueue put+get+ack, 1 client, 1 KiB")
        raw_rate = raw_kombu(url, raw_count)
    line("raw_messages", raw_count)
    line("raw_msgs_per_s", f"{raw_rate:.0f}")

    reset_bench_queue(delete=False)
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        log_path = Path(tmp) / "worker.log"
        worker = start_worker(args.concurrency, log_path)
        try:
            await_first_result(worker, poll_s)
            round_trips(args.warmup, poll_s, args.timeout)
            samples = round_trips(args.latency, poll_s, args.timeout)
            with_results = throughput_with_results(args.throughput, poll_s, args.timeout)
            ignored = throughput_ignore_result(args.throughput, poll_s, args.timeout)
        except BaseException:
            stop_worker(worker)
            print(f"--- bench worker log ---\n{log_path.read_text()[-4000:]}", file=sys.stderr)
            raise
        stop_worker(worker)
    reset_bench_queue(delete=True)
    forget_bench_results()

    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    line("celery_roundtrip_n", args.latency)
    line("celery_roundtrip_p50_ms", f"{cuts[49]:.1f}")
    line("celery_roundtrip_p90_ms", f"{cuts[89]:.1f}")
    line("celery_roundtrip_p99_ms", f"{cuts[98]:.1f}")
    line("celery_throughput_tasks", args.throughput)
    line("celery_throughput_tasks_per_s", f"{with_results:.1f}")
    line("celery_throughput_ignore_result_tasks_per_s", f"{ignored:.1f}")
    line("ratio_celery_to_raw", f"{with_results / raw_rate:.4f}")
    line("ratio_celery_ignore_result_to_raw", f"{ignored / raw_rate:.4f}")


def main() -> None:
    args = parse_args()
    try:
        run(args)
    except BenchError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
