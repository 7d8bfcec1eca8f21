"""Run every side-by-side benchmark and print the tables of docs/benchmarks.md (markdown).

Run from the repository root (see bench/README.md); it takes about half an hour on 2 cores:

    .venv/bin/python bench/all.py | tee /tmp/bench-tables.md

The figures of docs/benchmarks.md are the ones this printed. Each bench runs in a process of
its own with DEBUG off and prints the load average it ran under; their own output goes to
stderr, the tables to stdout. Options name the resources the run owns (it empties and purges them):
`--redis` (a Redis database), `--postgres` (a server; databases `<prefix>_taskpath`,
`<prefix>_web`, `<prefix>_ops`), `--vhost` (RabbitMQ, made and deleted); `--quick` for fewer
rounds and requests; `--only` to run some of task_path, web_pages, mail_fanout, operations.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(REPO_ROOT / ".venv" / "bin" / "python")
BENCHES = ("task_path", "web_pages", "mail_fanout", "operations")
BROKER_NAMES = {
    "redis": "Redis, PostgreSQL",
    "amqp": "RabbitMQ, PostgreSQL",
    "filesystem": "embedded (folders, SQLite); bare on Redis",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--prefix", default="bench", help="of the PostgreSQL databases")
    parser.add_argument("--vhost", default="bench-taskpath")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", choices=BENCHES, default=list(BENCHES))
    return parser.parse_args()


def run(command: list[str], env: dict[str, str] | None = None) -> str:
    """Run a bench; its output to stderr as it goes, and back as text."""
    print(f"# running: {' '.join(command)}", file=sys.stderr, flush=True)
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, "DJANGO_DEBUG": "false", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=sys.stderr,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    for row in process.stdout:
        sys.stderr.write(row)
        lines.append(row)
    if process.wait():
        print(f"error: {command[1]} failed ({process.returncode})", file=sys.stderr)
    return "".join(lines)


def figures(text: str) -> dict[str, str]:
    """The `name value` lines of operations.py and mail_fanout.py."""
    found = {}
    for row in text.splitlines():
        name, _, value = row.partition(" ")
        if name and value.strip() and not name.startswith("#"):
            found[name] = value.strip()
    return found


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# --- the task path -------------------------------------------------------------------------------

TASK_SIDES = (
    ("bare_count", "bare: no result, a Redis INCR"),
    ("project_heartbeat", "heartbeat (`task_every_min`)"),
    ("bare_noop", "bare: result stored (Redis)"),
    ("project_noop", "no-op, result stored (django-db)"),
    ("bare_publish", "bare: paho QoS 1 publish"),
    ("project_publish_mqtt", "`publish_mqtt`"),
)
PAIR_OF = {"project_heartbeat": "bare_count", "project_noop": "bare_noop"}
PAIR_OF["project_publish_mqtt"] = "bare_publish"


def task_path(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    rounds, tasks = ("1", "500") if args.quick else ("3", "1000")
    run(
        [
            PYTHON,
            "bench/task_path.py",
            "--mqtt",
            "--rounds",
            rounds,
            "--tasks",
            tasks,
            "--redis",
            args.redis,
            "--database",
            f"{args.prefix}_taskpath",
            "--vhost",
            args.vhost,
            "--json",
            str(work / "task_path.json"),
        ]
    )
    found = {}
    for broker in BROKER_NAMES:
        path = work / f"task_path.{broker}.json"
        if path.exists():
            found[broker] = json.loads(path.read_text())
    return found


def ratio(ours: dict[str, float], bare: dict[str, float], name: str) -> str:
    return f"{ours[name] / bare[name]:.2f}{X}" if bare.get(name) else "-"


def task_path_table(runs: dict[str, Any]) -> str:
    rows = []
    for broker, result in runs.items():
        medians = result["medians"]
        first = True
        for side, label in TASK_SIDES:
            if side not in medians:
                continue
            m = medians[side]
            bare = medians.get(PAIR_OF.get(side, ""), {})

            def cell(name: str, digits: int, m: dict[str, float] = m, bare: Any = bare) -> str:
                value = f"{m[name]:.{digits}f}"
                return f"{value} ({ratio(m, bare, name)})" if bare else value

            rows.append(
                [
                    f"{BROKER_NAMES[broker]} (load {result['load']})" if first else "",
                    label,
                    cell("tasks_per_s", 0),
                    cell("cpu_s_per_1000", 2),
                    f"{m['main_cpu_s_per_1000']:.2f} / {m['pool_cpu_s_per_1000']:.2f}",
                    f"{m['p50_ms']:.1f} / {m['p99_ms']:.1f}",
                    cell("delay_per_s", 0),
                    cell("launch_to_ready_s", 2),
                    cell("idle_pss_mb", 0),
                ]
            )
            first = False
    return table(
        [
            "broker, database",
            "side",
            "tasks/s at the worker",
            "CPU s / 1000 tasks",
            "CPU main / pool",
            "p50 / p99 ms",
            "`.delay()`/s",
            "launch to ready s",
            "idle PSS MB",
        ],
        rows,
    )


# --- pages ---------------------------------------------------------------------------------------


def web_pages(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    requests, burst = ("40", "60") if args.quick else ("100", "150")
    run(
        [
            PYTHON,
            "bench/web_pages.py",
            "--requests",
            requests,
            "--burst",
            burst,
            "--json",
            str(work / "web_pages.json"),
        ],
        {"DATABASE_URL": f"{args.postgres}/{args.prefix}_web"},
    )
    path = work / "web_pages.json"
    return json.loads(path.read_text()) if path.exists() else {}


def pages_table(result: dict[str, Any]) -> str:
    pages = result["pages"]
    anchors = {p["name"]: p for p in pages if p["path"].startswith("/admin/")}
    rows = []
    for page in pages:
        admin = page["path"].startswith("/admin/")
        anchor = anchors.get(page["anchor"])
        met = page["p50_ms"] <= 50 and page["p99_ms"] <= 200
        rows.append(
            [
                f"`{page['path'].split('?')[0] if not admin else page['name']}`"
                + (" open" if "status=open" in page["path"] else ""),
                page["role"],
                f"{page['p50_ms']:.1f} / {page['p99_ms']:.1f}",
                f"{page['per_s']:.0f}",
                f"{page['cpu_ms']:.1f}",
                page["queries"],
                f"{page['p50_ms'] / anchor['p50_ms']:.2f} / {page['per_s'] / anchor['per_s']:.2f}"
                if anchor
                else "",
                "" if admin else ("met" if met else "**missed**"),
            ]
        )
    return table(
        [
            "page",
            "as",
            "p50 / p99 ms",
            "requests/s",
            "server CPU ms / request",
            "queries",
            "p50 / req/s against the admin's",
            "p50 ≤ 50, p99 ≤ 200",
        ],
        rows,
    )


# --- mail and operations -------------------------------------------------------------------------


def mail_fanout(args: argparse.Namespace) -> dict[str, str]:
    return figures(
        run(
            [PYTHON, "bench/mail_fanout.py", "--mails", "1000" if args.quick else "2000"],
            {"DATABASE_URL": f"{args.postgres}/{args.prefix}_ops"},
        )
    )


def operations(args: argparse.Namespace) -> dict[str, str]:
    sizes = ["--jobneeds", "20000", "--tickets", "10000"] if args.quick else []
    return figures(
        run(
            [PYTHON, "bench/operations.py", "--skip-baseline", *sizes],
            {"DATABASE_URL": f"{args.postgres}/{args.prefix}_ops"},
        )
    )


# --- the goals ---------------------------------------------------------------------------

X = "\N{MULTIPLICATION SIGN}"


def goals_table(
    paths: dict[str, Any], web: dict[str, Any], mail: dict[str, str], ops: dict[str, str]
) -> str:
    rows = []
    if web:
        product = [p for p in web["pages"] if not p["path"].startswith("/admin/")]

        def worst(name: str) -> str:
            chosen = [p for p in product if p["name"] == name]
            if not chosen:
                return "-"
            slow = max(chosen, key=lambda p: p["p50_ms"])
            p99 = max(p["p99_ms"] for p in chosen)
            per_s = min(p["per_s"] for p in chosen)
            return (
                f"p50 {slow['p50_ms']:.0f} ms, p99 {p99:.0f} ms, {per_s:.0f} requests/s "
                f"(slowest: {slow['role']})"
            )

        page_goal = "p50 ≤ 50 ms, p99 ≤ 200 ms"
        for name in ("tickets", "jobs", "planned", "dashboard", "ticket", "permit"):
            rows.append([f"`{name}` page at one client's size", worst(name), page_goal])
        missed = [p for p in product if p["p50_ms"] > 50 or p["p99_ms"] > 200]
        met = f"{len(product) - len(missed)} of {len(product)} met"
        rows.append(["every list and detail page, every role", met, "all"])
    for broker, result in paths.items():
        where = BROKER_NAMES[broker]
        beat = result["ratios"].get("project_heartbeat/bare_count", {})
        mqtt = result["ratios"].get("project_publish_mqtt/bare_publish", {})
        rows.append(
            [
                f"heartbeat / bare tasks/s, {where}",
                f"{beat.get('tasks_per_s', '-')}{X} (CPU {beat.get('cpu_s_per_1000', '-')}{X})",
                f"≥ 0.8{X}",
            ]
        )
        if mqtt:
            rows.append(
                [
                    f"`publish_mqtt` / bare paho QoS 1 task, {where}",
                    f"{mqtt.get('tasks_per_s', '-')}{X} (CPU {mqtt.get('cpu_s_per_1000', '-')}{X})",
                    f"≥ 0.6{X}",
                ]
            )
        launch, pss = beat.get("launch_to_ready_s", "-"), beat.get("idle_pss_mb", "-")
        rows.append([f"launch to ready, {where}", f"{launch}{X}", f"≤ 1.3{X}"])
        rows.append([f"idle PSS, {where}", f"{pss}{X}", f"≤ 1.3{X}"])
    if mail:
        rates = f"{mail.get('escalation_mails_per_s')} / {mail.get('autoclose_mails_per_s')}"
        ratios = f"{mail.get('escalation_ratio_to_bare')} / {mail.get('autoclose_ratio_to_bare')}"
        bare = mail.get("bare_smtplib_mails_per_s_before_after")
        rows.append(
            [
                "mail fan-out over SMTP (escalation / auto-close)",
                f"{rates} mails/s, {ratios}{X} bare smtplib ({bare}/s)",
                f"≥ 800/s and ≥ 0.6{X}",
            ]
        )
    if ops:
        seconds = (
            f"{ops.get('autoclose_set_based_seconds')} / {ops.get('escalate_set_based_seconds')}"
        )
        queries = (
            f"{ops.get('autoclose_set_based_queries')} / {ops.get('escalate_set_based_queries')}"
        )
        rows.append(
            [
                f"auto-close {ops.get('seed_jobneeds')} / escalate {ops.get('seed_tickets')} rows",
                f"{seconds} s ({queries} queries)",
                "≤ 40 s",
            ]
        )
    return table(["measure", "now", "goal"], rows)


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-all-") as folder:
        work = Path(folder)
        paths = task_path(args, work) if "task_path" in args.only else {}
        web = web_pages(args, work) if "web_pages" in args.only else {}
    mail = mail_fanout(args) if "mail_fanout" in args.only else {}
    ops = operations(args) if "operations" in args.only else {}
    print("### Against the issue's goals\n")
    print(goals_table(paths, web, mail, ops))
    if paths:
        print("\n### Task path against bare Celery doing the same work\n")
        print(task_path_table(paths))
    if web:
        print(f"\n### Pages at one client's size ({web['sizes']}; load {web['load']})\n")
        print(pages_table(web))
    if mail:
        print(
            f"\nMail fan-out ran under load {mail.get('load_average_at_start')} to "
            f"{mail.get('load_average_at_end')}; operations under "
            f"{ops.get('load_average_at_start', '-')} to {ops.get('load_average_at_end', '-')}."
        )


if __name__ == "__main__":
    main()
