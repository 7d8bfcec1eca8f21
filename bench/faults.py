"""The fault matrix: run tests/faults/ and print what each fault cost, as a table.

    .venv/bin/python bench/faults.py                # every scenario (about 20 minutes)
    .venv/bin/python bench/faults.py -k "outage"    # some of them (pytest's -k)

Each scenario of tests/faults/ records its figures (enqueued, side effects seen, duplicates as a
mail client counts them (one Message-ID, one mail), copies (a mail sent again under its
Message-ID: the at-least-once cases), lost, dead letters, and recovery: seconds from the end of
the fault to the last side effect)
in a JSON-lines file; this prints one row per scenario and stack, any other figures a scenario
measured, then pytest's verdict. The suite starts its own Redis, PostgreSQL, Mosquitto and SMTP
sink (see tests/faults/), so it never touches the machine's services; the multi-host scenarios
(stack "multi-host") build their hosts of network namespaces (tests/faults/hosts.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (figure, column title, width); "effects" is mails seen by the sink or messages by MQTT.
COLUMNS = (
    ("scenario", "scenario", 76),
    ("stack", "stack", 17),
    ("enqueued", "enqueued", 8),
    ("effects", "effects", 7),
    ("duplicates", "dups", 4),
    ("copies", "copies", 6),
    ("lost", "lost", 4),
    ("dead_letters", "dead", 4),
    ("recovery_s", "recovery_s", 10),
)
SHOWN = {figure for figure, _, _ in COLUMNS} | {"mailed", "published"}


def main() -> int:
    parser = argparse.ArgumentParser(description="Run tests/faults/ and print the fault matrix.")
    parser.add_argument("-k", default="", help="pytest -k expression choosing scenarios")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "faults.jsonl"
        command = [sys.executable, "-m", "pytest", "tests/faults", "-q", "-p", "no:cacheprovider"]
        if args.k:
            command += ["-k", args.k]
        completed = subprocess.run(
            command,
            cwd=ROOT,
            env={**os.environ, "FAULTS_REPORT": str(report)},
            capture_output=True,
            text=True,
        )
        rows = (
            [json.loads(line) for line in report.read_text().splitlines()]
            if report.exists()
            else []
        )
    print("  ".join(title.ljust(width) for _, title, width in COLUMNS))
    for figures in rows:
        figures.setdefault("effects", figures.get("mailed", figures.get("published", "")))
        print("  ".join(str(figures.get(key, "")).ljust(width) for key, _, width in COLUMNS))
    for figures in rows:
        more = {key: value for key, value in figures.items() if key not in SHOWN}
        if more:
            print(f"{figures['scenario']} [{figures['stack']}]: {json.dumps(more)}")
    summary = completed.stdout.strip().splitlines()
    print(summary[-1] if summary else completed.stderr[-2000:])
    return completed.returncode


if __name__ == "__main__":
    sys.exit(main())
