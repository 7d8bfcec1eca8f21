"""What every bench prints beside its figures: the load it ran under, CPU seconds of a process
tree (steadier than wall time on a shared machine), memory, percentiles.

CPU is read from /proc: a process's user and system time, plus the time of its children it has
reaped (a pool child replaced after max-tasks-per-child counts there), over the whole tree.
"""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages and the cores, e.g. '1.52 1.80 2.01 (2 cores)'."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def _stat_fields(pid: int) -> list[str]:
    # The command name may hold spaces and parentheses: the fields follow its last ')'.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """`pid` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(_stat_fields(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of `pid`'s tree, including its reaped children's."""
    ticks = 0
    for member in process_tree(pid):
        try:
            fields = _stat_fields(member)
        except OSError:
            continue
        # utime, stime, cutime, cstime: fields 14-17 of stat(5), here from the state field on.
        ticks += sum(int(value) for value in fields[11:15])
    return ticks / CLOCK_TICKS


def own_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of `pid` alone (a worker's main process without its pool)."""
    return sum(int(value) for value in _stat_fields(pid)[11:13]) / CLOCK_TICKS


def pss_mb(pid: int) -> float:
    """Proportional set size of `pid`'s tree, in MB."""
    total_kb = 0
    for member in process_tree(pid):
        try:
            for row in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if row.startswith("Pss:"):
                    total_kb += int(row.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
