"""Apps start tasks by registered name (apps.core.enqueue): every name they use is registered,
and a name that is not fails at once, not after the commit."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import background_tasks.tasks  # noqa: F401  (registers every task)
from apps.core.enqueue import enqueue_on_commit
from intelliwiz_config.celery import app
from tests.conftest import BASE_DIR


def names_enqueued() -> list[tuple[str, str]]:
    """(file, task name) of every literal name passed to enqueue_on_commit under apps/."""
    found = []
    for path in sorted(Path(BASE_DIR, "apps").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "enqueue_on_commit"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.append((str(path.relative_to(BASE_DIR)), node.args[0].value))
    return found


def test_apps_enqueue_only_registered_tasks() -> None:
    names = names_enqueued()
    assert len(names) > 10  # the scan finds the producers
    assert [(f, n) for f, n in names if n not in app.tasks] == []


def test_an_unknown_task_name_fails_at_once() -> None:
    with pytest.raises(KeyError):
        enqueue_on_commit("no_such_task")


def test_a_process_that_never_imports_the_tasks_has_them_all_registered() -> None:
    """The web and management commands start tasks by name without importing background_tasks:
    the app's ready() registers them."""
    script = (
        "import django; django.setup()\n"
        "from celery import current_app\n"
        "print(sorted(n for n in current_app.tasks if not n.startswith('celery.')))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "intelliwiz_config.settings"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    registered = {
        name for name, task in app.tasks.items() if task.__module__.startswith("background_tasks.")
    }
    assert ast.literal_eval(output.strip().splitlines()[-1]) == sorted(registered)
