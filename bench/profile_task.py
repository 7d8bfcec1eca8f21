"""Where a task's time goes in the pool: the task run N times through Celery's worker tracer
(the signals, the task, the result handling a pool child does), in one process under cProfile,
with DEBUG off; prints its functions by own time and the share of each layer.

Run from the repository root against a migrated database (the task writes to it):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_taskpath \\
        .venv/bin/python bench/profile_task.py task_every_min --runs 2000
    .venv/bin/python bench/profile_task.py publish_mqtt --args '["intelliwiz/bench/profile", "p"]'

The broker is not involved: this is the pool's share of `cpu_s_per_1000` in task_path.py.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "intelliwiz_config.settings")
os.environ["DJANGO_DEBUG"] = "false"

# Where a function's file lies, the layer its time is counted in (first match).
LAYERS = (
    ("/psycopg", "database driver"),
    ("/django/db/", "Django ORM"),
    ("/sqlite3/", "database driver"),
    ("/paho/", "paho"),
    ("/celery/", "Celery"),
    ("/kombu/", "kombu"),
    ("/billiard/", "Celery"),
    ("/apps/core/", "apps/core (ledger, metrics, breaker, guards)"),
    ("/apps/", "apps (the service)"),
    ("/background_tasks/", "the task"),
    ("/django/", "Django (other)"),
    ("/redis/", "redis-py"),
)


def layer_of(filename: str) -> str:
    for marker, layer in LAYERS:
        if marker in filename:
            return layer
    return "Python and the rest"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", help="a registered task name")
    parser.add_argument("--args", default="[]", help="the task's positional arguments, JSON")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    import django

    django.setup()
    from celery import current_app
    from celery.app.trace import build_tracer

    from intelliwiz_config.celery import app

    app.loader.import_default_modules()
    task = current_app.tasks[args.task]
    tracer = build_tracer(task.name, task, app=app, eager=False, propagate=False)
    positional = json.loads(args.args)

    def run_once() -> None:
        task_id = str(uuid.uuid4())
        request = {"id": task_id, "hostname": "profile@bench", "delivery_info": {}}
        tracer(task_id, positional, {}, request)

    for _ in range(min(50, args.runs)):  # warm: connections, caches, imports
        run_once()
    profile = cProfile.Profile()
    cpu, wall = time.process_time(), time.perf_counter()
    profile.enable()
    for _ in range(args.runs):
        run_once()
    profile.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"# {args.task} x {args.runs}: {wall:.2f} s wall, {cpu:.2f} s CPU in this process")
    print(f"# per task: {wall / args.runs * 1000:.3f} ms wall, {cpu / args.runs * 1000:.3f} ms CPU")

    stats = pstats.Stats(profile)
    by_layer: dict[str, float] = defaultdict(float)
    total = 0.0
    entries = stats.stats.items()  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, _nc, own, _cum, _callers) in entries:
        by_layer[layer_of(filename)] += own
        total += own
    print("\nown time by layer (profiled, so heavier than unprofiled):")
    for layer, seconds in sorted(by_layer.items(), key=lambda item: -item[1]):
        share, per_task = seconds / total * 100, seconds / args.runs * 1e6
        print(f"  {share:5.1f} %  {per_task:8.1f} us/task  {layer}")
    print(f"\ntop {args.top} functions by own time:")
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
