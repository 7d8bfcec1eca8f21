"""The project's task path side by side with a bare Celery app doing the same work, on one broker.

Run from the repository root (see bench/README.md):

    .venv/bin/python bench/task_path.py                       # redis, amqp and filesystem
    .venv/bin/python bench/task_path.py --broker redis --mqtt  # one broker, plus publish_mqtt

Without --broker it runs itself once per broker, each in a fresh interpreter (the project's
settings are read at import). Per round it starts each side's worker, measures it and stops it:
interleaved, one worker running at a time. Every worker runs with DEBUG off.

Pairs (project side / bare side, the same work):
- heartbeat (`task_every_min`: no result, one upsert) / `bare.count` (no result, one Redis INCR);
- no-op with its result stored (`bench.noop`, django-db) / `bare.noop` (its result in Redis);
- with --mqtt, `publish_mqtt` / `bare.publish` (a kept paho client, QoS 1, waits for PUBACK),
  counted by a subscriber.

Rates are counted at the worker: the burst is queued while the worker consumes nothing, then the
worker is told to consume (add_consumer) and timed until the last task is done; its CPU seconds
(main process and pool, from /proc) are read around the burst. `.delay()`/s is the producer's
rate while queueing the burst, on both sides with the same kind of result (none, or stored).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.measure import (  # noqa: E402
    cpu_seconds,
    load_average,
    own_cpu_seconds,
    percentile,
    pss_mb,
)

CELERY = str(REPO_ROOT / ".venv" / "bin" / "celery")
BROKERS = ("redis", "amqp", "filesystem")
VAR_DIR = Path("/tmp/bench-var")  # noqa: S108 (a fixed, documented scratch folder)
MQTT_URL = "mqtt://127.0.0.1:1883"
MQTT_TOPIC = "intelliwiz/bench/taskpath"
POLL_S = 0.002  # round trips
BURST_POLL_S = 0.01  # bursts: the poller shares the machine's cores with the worker
TIMEOUT_S = 300.0


class BenchError(Exception):
    """A failure that ends the run with a message instead of a traceback."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=BROKERS, help="one broker (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per burst")
    parser.add_argument("--latency", type=int, default=100, help="sequential round trips")
    parser.add_argument("--mqtt", action="store_true", help="publish_mqtt against bare.publish")
    parser.add_argument("--mqtt-messages", type=int, default=500)
    parser.add_argument("--sqlite", action="store_true", help="SQLite even on redis and amqp")
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/13",
        help="the Redis database the run owns (broker on redis; bare results and counter)",
    )
    parser.add_argument("--database", default="bench_taskpath", help="PostgreSQL database")
    parser.add_argument("--vhost", default="bench-taskpath", help="RabbitMQ vhost (made, deleted)")
    parser.add_argument("--json", type=Path, help="also write the medians here (bench/all.py)")
    return parser.parse_args()


def environment(args: argparse.Namespace) -> dict[str, str]:
    """The project's embedded default on `filesystem`; PostgreSQL beside a real broker."""
    broker = {
        "redis": args.redis,
        "amqp": f"amqp://guest:guest@127.0.0.1:5672/{args.vhost}",
        "filesystem": "filesystem://",
    }[args.broker]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CACHE_URL")}
    env.update(
        INTELLIWIZ_VAR_DIR=str(VAR_DIR / args.broker),
        CELERY_BROKER_URL=broker,
        # Beside the embedded default the reference is the issue's: bare Celery on Redis.
        BARE_BROKER_URL=args.redis if args.broker == "filesystem" else broker,
        BARE_REDIS_URL=args.redis,
        DJANGO_SETTINGS_MODULE="intelliwiz_config.settings",
        DJANGO_DEBUG="false",
        MQTT_URL=MQTT_URL,
        LOG_LEVEL="WARNING",
    )
    if args.broker != "filesystem" and not args.sqlite:
        env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{args.database}"
    return env


def run_all(args: argparse.Namespace) -> None:
    if not args.broker:
        for broker in BROKERS:
            command = [sys.executable, __file__, "--broker", broker, *sys.argv[1:]]
            if args.json:
                command += ["--json", str(args.json.with_suffix(f".{broker}.json"))]
            completed = subprocess.run(command, cwd=REPO_ROOT, check=False)
            if completed.returncode:
                print(f"error: the {broker} run failed ({completed.returncode})", flush=True)
        return
    env = environment(args)
    if "DATABASE_URL" in env:  # createdb fails harmlessly when the database exists
        subprocess.run(
            ["createdb", "-h", "127.0.0.1", "-U", "postgres", args.database],
            capture_output=True,
            check=False,
        )
    if args.broker == "amqp":
        rabbitmqctl = ["rabbitmqctl", "-q"]
        subprocess.run([*rabbitmqctl, "add_vhost", args.vhost], capture_output=True, check=False)
        subprocess.run(
            [*rabbitmqctl, "set_permissions", "-p", args.vhost, "guest", ".*", ".*", ".*"],
            capture_output=True,
            check=True,
        )
    os.environ.update(env)
    for name in ("DATABASE_URL", "CACHE_URL"):
        if name not in env:
            os.environ.pop(name, None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
    )
    try:
        Bench(args, env).run()
    finally:
        if args.broker == "amqp":
            subprocess.run(
                ["rabbitmqctl", "-q", "delete_vhost", args.vhost], capture_output=True, check=False
            )


# --- workers -------------------------------------------------------------------------------------


def start_worker(app: str, queue: str, name: str, env: dict[str, str], log: Path):
    command = [
        CELERY, "-A", app, "worker", "-n", f"{name}@%h", "-Q", queue, "-c", "1",
        "-P", "prefork", "--prefetch-multiplier", "1",
        "--without-mingle", "--without-gossip", "-l", "WARNING",
    ]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def stop_worker(worker: subprocess.Popen) -> None:
    """Warm shutdown; if it hangs, kill the worker's own process group (its pool children)."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    worker.wait(30)


def wait_until(done: Callable[[], bool], worker: subprocess.Popen, what: str, poll: float) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        if worker.poll() is not None:
            raise BenchError(f"worker exited ({worker.returncode}) waiting for {what}")
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        time.sleep(poll)


@dataclass
class Side:
    """One worker and its task: how to send one, and when `count` more are done."""

    name: str
    app: str  # the worker's -A
    queue: str
    control: Any  # the Celery app whose control reaches the worker
    send: Callable[[int], Any]
    done_after: Callable[[int], Callable[[], bool]]
    env: dict[str, str]


# --- the bench -----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, env: dict[str, str]) -> None:
        import django

        django.setup()
        # The project's settings have read it; left set, Celery would give it to the bare app.
        os.environ.pop("CELERY_BROKER_URL")
        from bench import bare_celery, noop_tasks

        self.args, self.env = args, env
        self.bare, self.project = bare_celery, noop_tasks
        self.log = VAR_DIR / args.broker / "workers.log"
        self.figures: dict[str, dict[str, list[float]]] = {}
        self.received: list[bytes] = []
        self.host = socket.gethostname()
        # The bare worker sees neither Django nor the project's broker variable.
        self.bare_env = {
            k: v for k, v in env.items() if k not in ("DJANGO_SETTINGS_MODULE", "CELERY_BROKER_URL")
        }

    def record(self, side: str, name: str, value: float) -> None:
        self.figures.setdefault(side, {}).setdefault(name, []).append(value)

    def purge(self) -> None:
        for app in (self.bare.app, self.project.app):
            with app.connection_for_write() as connection:
                app.control.purge(connection=connection)

    # -- the sides --

    def sides(self) -> list[Side]:
        from apps.core.models import WorkerHeartbeat
        from background_tasks import publish_mqtt, task_every_min

        bare, project = self.bare, self.project
        counter = bare._counter
        pid = os.getpid()

        def bare_count_done(count: int) -> Callable[[], bool]:
            target = int(counter.get(bare.COUNTER_KEY) or 0) + count
            return lambda: int(counter.get(bare.COUNTER_KEY) or 0) >= target

        def beats() -> int:
            rows = WorkerHeartbeat.objects.filter(worker__startswith=f"project_heartbeat-{pid}@")
            return sum(rows.values_list("beats", flat=True))

        def heartbeat_done(count: int) -> Callable[[], bool]:
            target = beats() + count
            return lambda: beats() >= target

        sides = [
            Side("bare_count", "bench.bare_celery", bare.BARE_QUEUE, bare.app,
                 lambda _: bare.count.delay(), bare_count_done, self.bare_env),
            Side("project_heartbeat", "bench.noop_tasks", "default", project.app,
                 lambda _: task_every_min.delay(), heartbeat_done, self.env),
            self._result_side("bare_noop", "bench.bare_celery", bare.BARE_QUEUE, bare.app,
                              bare.noop.delay, self.bare_env),
            self._result_side("project_noop", "bench.noop_tasks", project.BENCH_QUEUE,
                              project.app, project.noop.delay, self.env),
        ]  # fmt: skip
        if self.args.mqtt:

            def published(topic: str) -> Callable[[int], Callable[[], bool]]:
                def done_after(count: int) -> Callable[[], bool]:
                    target = self._arrived(topic) + count
                    return lambda: self._arrived(topic) >= target

                return done_after

            bare_topic, task_topic = f"{MQTT_TOPIC}/bare", f"{MQTT_TOPIC}/task"
            sent = itertools.count()  # every payload differs: a repeat is a duplicate
            sides += [
                Side("bare_publish", "bench.bare_celery", bare.BARE_QUEUE, bare.app,
                     lambda _: bare.publish.delay(bare_topic, f"b{next(sent)}"),
                     published(bare_topic), self.bare_env),
                Side("project_publish_mqtt", "bench.noop_tasks", "external_api", project.app,
                     lambda _: publish_mqtt.delay(task_topic, f"p{next(sent)}"),
                     published(task_topic),
                     self.env),
            ]  # fmt: skip
        return sides

    def _result_side(self, name, app, queue, control, delay, env) -> Side:
        """A side whose tasks store results: done once the results sent are all ready."""
        pending: list[Any] = []

        def send(_: int) -> None:
            pending.append(delay())

        def done_after(count: int) -> Callable[[], bool]:
            pending.clear()
            # The last result first: it is ready last, and checking it alone is cheap.
            return lambda: (
                len(pending) >= count and pending[-1].ready() and all(r.ready() for r in pending)
            )

        return Side(name, app, queue, control, send, done_after, env)

    def _arrived(self, topic: str) -> int:
        return sum(1 for t, _ in self.received if t == topic)

    # -- measuring one side --

    def measure(self, side: Side) -> None:
        node = f"{side.name}-{os.getpid()}"
        launched = time.monotonic()
        worker = start_worker(side.app, side.queue, node, side.env, self.log)
        try:
            first = side.done_after(1)
            side.send(0)
            wait_until(first, worker, f"{side.name}'s first task", POLL_S)
            self.record(side.name, "launch_to_ready_s", time.monotonic() - launched)
            time.sleep(3)  # idle: pool children forked and settled
            self.record(side.name, "idle_pss_mb", pss_mb(worker.pid))
            samples = []
            for n in range(self.args.latency):
                finished = side.done_after(1)
                began = time.perf_counter()
                side.send(n)
                wait_until(finished, worker, f"{side.name} round trip", POLL_S)
                samples.append((time.perf_counter() - began) * 1000)
            self.record(side.name, "p50_ms", statistics.median(samples))
            self.record(side.name, "p99_ms", percentile(samples, 0.99))
            self.burst(side, worker, f"{node}@{self.host}")
        finally:
            stop_worker(worker)

    def burst(self, side: Side, worker: subprocess.Popen, node: str) -> None:
        """Queue the burst while the worker consumes nothing, then time the worker alone."""
        count = self.args.mqtt_messages if "publish" in side.name else self.args.tasks
        control = side.control.control
        replies = control.cancel_consumer(side.queue, destination=[node], reply=True, timeout=10)
        if not replies:
            raise BenchError(f"{node} did not answer cancel_consumer")
        finished = side.done_after(count)
        began = time.perf_counter()
        for n in range(count):
            side.send(n)
        self.record(side.name, "delay_per_s", count / (time.perf_counter() - began))
        cpu_before, main_before = cpu_seconds(worker.pid), own_cpu_seconds(worker.pid)
        began = time.perf_counter()
        control.add_consumer(side.queue, destination=[node], reply=True, timeout=10)
        wait_until(finished, worker, f"{side.name} burst", BURST_POLL_S)
        elapsed = time.perf_counter() - began
        cpu = cpu_seconds(worker.pid) - cpu_before
        main = own_cpu_seconds(worker.pid) - main_before
        self.record(side.name, "tasks_per_s", count / elapsed)
        self.record(side.name, "cpu_s_per_1000", cpu / count * 1000)
        # Where it went: the main process (broker, acks, pool) and the pool process (the task).
        self.record(side.name, "main_cpu_s_per_1000", main / count * 1000)
        self.record(side.name, "pool_cpu_s_per_1000", (cpu - main) / count * 1000)

    def subscribe(self) -> Any:
        import paho.mqtt.client as paho

        subscribed = threading.Event()
        subscriber = paho.Client(paho.CallbackAPIVersion.VERSION2)
        subscriber.on_connect = lambda c, *_: c.subscribe(MQTT_TOPIC + "/#", qos=1)
        subscriber.on_subscribe = lambda *_: subscribed.set()
        subscriber.on_message = lambda _c, _u, m: self.received.append((m.topic, m.payload))
        subscriber.connect("127.0.0.1", 1883)
        subscriber.loop_start()
        if not subscribed.wait(10):
            raise BenchError("no MQTT subscription within 10 s")
        return subscriber

    def run(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        print(f"# load average at start: {load_average()}", flush=True)
        subscriber = self.subscribe() if self.args.mqtt else None
        self.purge()
        try:
            sides = self.sides()
            for _ in range(self.args.rounds):
                for side in sides:
                    self.measure(side)
            if subscriber is not None:
                time.sleep(1)  # a duplicate would arrive now
                task = [p for t, p in self.received if t.endswith("/task")]
                self.record("project_publish_mqtt", "duplicates", len(task) - len(set(task)))
        finally:
            if subscriber is not None:
                subscriber.loop_stop()
                subscriber.disconnect()
            self.purge()
        self.report()

    def report(self) -> None:
        args = self.args
        database = "postgresql" if "DATABASE_URL" in self.env else "sqlite"
        medians = {
            side: {name: round(statistics.median(values), 3) for name, values in figures.items()}
            for side, figures in self.figures.items()
        }
        print(f"## broker={args.broker} database={database} rounds={args.rounds} "
              f"tasks={args.tasks} latency={args.latency} DEBUG=off")  # fmt: skip
        for side, figures in medians.items():
            print(side, json.dumps(figures))
        ratios = {}
        for ours, bare in PAIRS:
            if ours in medians and bare in medians:
                ratios[f"{ours}/{bare}"] = {
                    name: round(medians[ours][name] / medians[bare][name], 2)
                    for name in RATIO_FIGURES
                    if medians[bare].get(name)
                }
                print(f"ratio {ours}/{bare}", json.dumps(ratios[f"{ours}/{bare}"]))
        print(f"# load average at end: {load_average()}", flush=True)
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "broker": args.broker,
                        "database": database,
                        "load": load_average(),
                        "medians": medians,
                        "ratios": ratios,
                    },
                    indent=1,
                )
            )


PAIRS = (
    ("project_heartbeat", "bare_count"),
    ("project_noop", "bare_noop"),
    ("project_publish_mqtt", "bare_publish"),
)
RATIO_FIGURES = (
    "tasks_per_s",
    "cpu_s_per_1000",
    "main_cpu_s_per_1000",
    "pool_cpu_s_per_1000",
    "p50_ms",
    "delay_per_s",
    "launch_to_ready_s",
    "idle_pss_mb",
)


def main() -> None:
    try:
        run_all(parse_args())
    except BenchError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
