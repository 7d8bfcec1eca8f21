"""The project's task path side by side with a bare Celery app, on the same broker.

Run from the repository root (see bench/README.md):

    .venv/bin/python bench/task_path.py                       # redis, amqp and filesystem
    .venv/bin/python bench/task_path.py --broker redis --mqtt  # one broker, plus publish_mqtt

Without --broker it runs itself once per broker, each in a fresh interpreter (the project's
settings are read at import). Per round it starts the bare worker, measures it and stops it,
then the same for the project's worker: interleaved, one worker running at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CELERY = str(REPO_ROOT / ".venv" / "bin" / "celery")
BROKERS = {
    "redis": "redis://127.0.0.1:6379/13",
    # A vhost of its own, created and deleted by the run: the machine's RabbitMQ serves others.
    "amqp": "amqp://guest:guest@127.0.0.1:5672/bench-taskpath",
    "filesystem": "filesystem://",
}
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/bench_taskpath"
VAR_DIR = Path("/tmp/bench-var")  # noqa: S108 (a fixed, documented scratch folder)
MQTT_URL = "mqtt://127.0.0.1:1883"
MQTT_TOPIC = "intelliwiz/bench/taskpath"
POLL_S = 0.002
TIMEOUT_S = 300.0


class BenchError(Exception):
    """A failure that ends the run with a message instead of a traceback."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=sorted(BROKERS), help="one broker (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=500, help="tasks per throughput burst")
    parser.add_argument("--latency", type=int, default=100, help="sequential round trips")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--mqtt", action="store_true", help="publish_mqtt against raw paho")
    parser.add_argument("--mqtt-messages", type=int, default=300)
    parser.add_argument("--sqlite", action="store_true", help="SQLite even on redis and amqp")
    return parser.parse_args()


def environment(broker: str, sqlite: bool) -> dict[str, str]:
    """The project's embedded default on `filesystem`; PostgreSQL beside a real broker."""
    var = VAR_DIR / broker
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CACHE_URL")}
    env.update(
        INTELLIWIZ_VAR_DIR=str(var),
        CELERY_BROKER_URL=BROKERS[broker],
        # Beside the embedded default the reference is the issue's: bare Celery on Redis.
        BARE_BROKER_URL=BROKERS["redis" if broker == "filesystem" else broker],
        DJANGO_SETTINGS_MODULE="intelliwiz_config.settings",
        MQTT_URL=MQTT_URL,
        LOG_LEVEL="WARNING",
    )
    if broker != "filesystem" and not sqlite:
        env["DATABASE_URL"] = POSTGRES_URL
    return env


def run_all(args: argparse.Namespace) -> None:
    if not args.broker:
        for broker in BROKERS:
            command = [sys.executable, __file__, "--broker", broker, *sys.argv[1:]]
            completed = subprocess.run(command, cwd=REPO_ROOT, check=False)
            if completed.returncode:
                print(f"error: the {broker} run failed ({completed.returncode})", flush=True)
        return
    env = environment(args.broker, args.sqlite)
    if "DATABASE_URL" in env:
        # createdb fails harmlessly when the database exists.
        subprocess.run(
            ["createdb", "-h", "127.0.0.1", "-U", "postgres", "bench_taskpath"],
            capture_output=True,
            check=False,
        )
    if args.broker == "amqp":
        rabbitmqctl = ["rabbitmqctl", "-q"]
        subprocess.run(
            [*rabbitmqctl, "add_vhost", "bench-taskpath"], capture_output=True, check=False
        )
        subprocess.run(
            [*rabbitmqctl, "set_permissions", "-p", "bench-taskpath", "guest", ".*", ".*", ".*"],
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
                ["rabbitmqctl", "-q", "delete_vhost", "bench-taskpath"],
                capture_output=True,
                check=False,
            )


# --- workers -------------------------------------------------------------------------------------


def start_worker(app: str, queues: str, name: str, env: dict[str, str], c: int, log: Path):
    command = [
        CELERY, "-A", app, "worker", "-n", f"{name}@%h", "-Q", queues, "-c", str(c),
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


def pss_mb(pid: int) -> float:
    """Proportional set size of a process and its descendants, in MB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total_kb, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            for row in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if row.startswith("Pss:"):
                    total_kb += int(row.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def wait_until(done: Callable[[], bool], worker: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        if worker.poll() is not None:
            raise BenchError(f"worker exited ({worker.returncode}) waiting for {what}")
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- the bench -----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, env: dict[str, str]) -> None:
        import django

        sys.path.insert(0, str(REPO_ROOT))
        django.setup()
        # The project's settings have read it; left set, Celery would give it to the bare app.
        os.environ.pop("CELERY_BROKER_URL")
        from background_tasks import task_every_min
        from bench import bare_celery, noop_tasks

        self.args, self.env = args, env
        self.bare, self.project_noop, self.heartbeat = bare_celery, noop_tasks, task_every_min
        self.log = VAR_DIR / args.broker / "workers.log"
        self.figures: dict[str, dict[str, list[float]]] = {}

    def record(self, side: str, name: str, value: float) -> None:
        self.figures.setdefault(side, {}).setdefault(name, []).append(value)

    def purge(self) -> None:
        for app in (self.bare.app, self.project_noop.app):
            with app.connection_for_write() as connection:
                app.control.purge(connection=connection)

    # A side: start, launch-to-ready, idle PSS, latency, throughput with .delay() rate, stop.
    def measure(self, side: str, start: Callable[[], subprocess.Popen], send, done_after) -> None:
        launched = time.monotonic()
        worker = start()
        try:
            first = done_after(1)
            send()
            wait_until(first, worker, f"{side}'s first task")
            self.record(side, "launch_to_ready_s", time.monotonic() - launched)
            time.sleep(3)  # idle: pool children forked and settled
            self.record(side, "idle_pss_mb", pss_mb(worker.pid))
            samples = []
            for _ in range(self.args.latency):
                finished = done_after(1)
                began = time.perf_counter()
                send()
                wait_until(finished, worker, f"{side} round trip")
                samples.append((time.perf_counter() - began) * 1000)
            self.record(side, "p50_ms", statistics.median(samples))
            self.record(side, "p99_ms", percentile(samples, 0.99))
            count = self.args.tasks
            finished = done_after(count)
            began = time.perf_counter()
            for _ in range(count):
                send()
            sent = time.perf_counter()
            wait_until(finished, worker, f"{side} burst")
            ended = time.perf_counter()
            self.record(side, "delay_per_s", count / (sent - began))
            self.record(side, "tasks_per_s", count / (ended - began))
        finally:
            stop_worker(worker)

    def bare_side(self) -> None:
        # Without DJANGO_SETTINGS_MODULE (Celery's Django fixup would set Django up in the bare
        # worker) and CELERY_BROKER_URL (Celery prefers it to any app's own broker_url).
        env = {
            k: v
            for k, v in self.env.items()
            if k not in ("DJANGO_SETTINGS_MODULE", "CELERY_BROKER_URL")
        }
        self.measure_results(
            "bare_noop", "bench.bare_celery", "bare", "bare", self.bare.noop.delay, env
        )

    def project_heartbeat_side(self) -> None:
        from apps.core.models import WorkerHeartbeat

        name = f"taskpath{os.getpid()}"

        def beats() -> int:
            return sum(WorkerHeartbeat.objects.filter(worker__startswith=name).values_list(
                "beats", flat=True
            ))  # fmt: skip

        def done_after(count: int) -> Callable[[], bool]:
            target = beats() + count
            return lambda: beats() >= target

        self.measure(
            "project_heartbeat",
            lambda: start_worker(
                "bench.noop_tasks", "default", name, self.env, self.args.concurrency, self.log
            ),
            self.heartbeat.delay,
            done_after,
        )

    def project_noop_side(self) -> None:
        self.measure_results(
            "project_noop",
            "bench.noop_tasks",
            "bench",
            "tpnoop",
            self.project_noop.noop.delay,
            self.env,
        )

    def measure_results(
        self, side: str, app: str, queue: str, name: str, delay, env: dict[str, str]
    ) -> None:
        """A side whose tasks store results: done once the burst's results are all ready."""
        pending: list[Any] = []

        def done_after(count: int) -> Callable[[], bool]:
            pending.clear()
            # The last result first: it is ready last, and checking it alone is cheap.
            return lambda: (
                len(pending) >= count and pending[-1].ready() and all(r.ready() for r in pending)
            )

        self.measure(
            side,
            lambda: start_worker(app, queue, name, env, self.args.concurrency, self.log),
            lambda: pending.append(delay()),
            done_after,
        )

    def mqtt(self) -> None:
        import paho.mqtt.client as paho

        from background_tasks import publish_mqtt

        received: list[bytes] = []
        subscribed = threading.Event()
        subscriber = paho.Client(paho.CallbackAPIVersion.VERSION2)
        subscriber.on_connect = lambda c, *_: c.subscribe(MQTT_TOPIC + "/#", qos=1)
        subscriber.on_subscribe = lambda *_: subscribed.set()
        subscriber.on_message = lambda _c, _u, message: received.append(message.payload)
        subscriber.connect("127.0.0.1", 1883)
        subscriber.loop_start()
        if not subscribed.wait(10):
            raise BenchError("no MQTT subscription within 10 s")
        count = self.args.mqtt_messages
        try:
            for _ in range(self.args.rounds):
                # Raw: one paho client, QoS 1, each publish waiting for its PUBACK.
                raw = paho.Client(paho.CallbackAPIVersion.VERSION2)
                raw.connect("127.0.0.1", 1883)
                raw.loop_start()
                began = time.perf_counter()
                for i in range(count):
                    raw.publish(f"{MQTT_TOPIC}/raw", str(i), qos=1).wait_for_publish(10)
                self.record("paho_qos1", "msgs_per_s", count / (time.perf_counter() - began))
                raw.loop_stop()
                raw.disconnect()
                # publish_mqtt through a project worker on its external_api queue.
                worker = start_worker(
                    "bench.noop_tasks", "external_api", f"tpmqtt{os.getpid()}", self.env,
                    self.args.concurrency, self.log,
                )  # fmt: skip
                try:
                    received.clear()
                    publish_mqtt.delay(f"{MQTT_TOPIC}/task", "warm-up")
                    wait_until(lambda: len(received) >= 1, worker, "publish_mqtt warm-up")
                    received.clear()
                    began = time.perf_counter()
                    for i in range(count):
                        publish_mqtt.delay(f"{MQTT_TOPIC}/task", str(i))
                    wait_until(lambda: len(received) >= count, worker, "publish_mqtt burst")
                    elapsed = time.perf_counter() - began
                    time.sleep(1)  # a duplicate would arrive now
                    self.record("publish_mqtt", "msgs_per_s", count / elapsed)
                    self.record("publish_mqtt", "duplicates", len(received) - len(set(received)))
                    self.record("publish_mqtt", "lost", count - len(set(received)))
                finally:
                    stop_worker(worker)
        finally:
            subscriber.loop_stop()
            subscriber.disconnect()

    def run(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.purge()
        for _ in range(self.args.rounds):
            self.bare_side()
            self.project_heartbeat_side()
            self.project_noop_side()
        if self.args.mqtt:
            self.mqtt()
        self.purge()
        self.report()

    def report(self) -> None:
        args = self.args
        database = "sqlite" if "DATABASE_URL" not in self.env else "postgresql"
        print(f"## broker={args.broker} database={database} concurrency={args.concurrency} "
              f"rounds={args.rounds} tasks={args.tasks} latency={args.latency}")  # fmt: skip
        medians = {
            side: {name: statistics.median(values) for name, values in figures.items()}
            for side, figures in self.figures.items()
        }
        for side, figures in medians.items():
            print(side, json.dumps({k: round(v, 2) for k, v in figures.items()}))
        bare = medians["bare_noop"]
        for side in ("project_heartbeat", "project_noop"):
            ours = medians[side]
            ratios = {
                "tasks_per_s": ours["tasks_per_s"] / bare["tasks_per_s"],
                "delay_per_s": ours["delay_per_s"] / bare["delay_per_s"],
                "p50_ms": ours["p50_ms"] / bare["p50_ms"],
                "launch_to_ready_s": ours["launch_to_ready_s"] / bare["launch_to_ready_s"],
                "idle_pss_mb": ours["idle_pss_mb"] / bare["idle_pss_mb"],
            }
            print(
                f"ratio {side}/bare_noop", json.dumps({k: round(v, 2) for k, v in ratios.items()})
            )
        if "publish_mqtt" in medians:
            mqtt = medians["publish_mqtt"]["msgs_per_s"]
            print(
                "ratio publish_mqtt/paho_qos1", round(mqtt / medians["paho_qos1"]["msgs_per_s"], 3)
            )
            print("ratio publish_mqtt/bare_noop", round(mqtt / bare["tasks_per_s"], 3))
        print(flush=True)


def main() -> None:
    try:
        run_all(parse_args())
    except BenchError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
