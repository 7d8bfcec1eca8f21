"""The code holds to the task-registry contract (tests/contract.py)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml
from celery import Task

import background_tasks
from background_tasks import tasks as old_path
from intelliwiz_config.celery import BEAT_SCHEDULE, QUEUE_NAMES, TASK_QUEUES, app
from tests.contract import EXTRA_TASKS, NOT_YET_IMPLEMENTED, REGISTRY

BASE_DIR = Path(__file__).resolve().parent.parent
SHARED_REGISTRY = BASE_DIR.parent / "shared" / "reference" / "task-registry.md"
MODULES = sorted({module for module, _, _ in REGISTRY})
IMPLEMENTED = [row for row in REGISTRY if row[1] not in NOT_YET_IMPLEMENTED]


def _project_tasks() -> dict[str, Task]:
    """Every task object defined in background_tasks' domain modules, by registered name."""
    found: dict[str, list[Task]] = {}
    for module_name in MODULES:
        module = importlib.import_module(f"background_tasks.{module_name}")
        for value in vars(module).values():
            if isinstance(value, Task) and value.__module__ == module.__name__:
                found.setdefault(value.name, []).append(value)
    duplicates = {name: objs for name, objs in found.items() if len(objs) > 1}
    assert not duplicates, f"registered twice: {sorted(duplicates)}"
    return {name: objs[0] for name, objs in found.items()}


def test_contract_copy_matches_the_shared_registry() -> None:
    if not SHARED_REGISTRY.exists():
        pytest.skip(f"{SHARED_REGISTRY} is not beside this checkout")
    rows = re.findall(
        r"^\| \d+ \| (\w+) \| (\w+) \| (?:\*\*)?([\w()., ]+?)(?:\*\*)? \|",
        SHARED_REGISTRY.read_text(),
        flags=re.MULTILINE,
    )
    shared = [(m, f, None if name.startswith("(helper") else name) for m, f, name in rows]
    assert shared == REGISTRY


@pytest.mark.parametrize(("module", "function", "registered"), IMPLEMENTED)
def test_implemented_names_import_three_ways_as_one_object(module, function, registered) -> None:
    obj = getattr(importlib.import_module(f"background_tasks.{module}"), function)
    assert getattr(old_path, function) is obj
    assert getattr(background_tasks, function) is obj
    if registered is not None:
        assert obj.name == registered
        assert app.tasks[registered] is obj._get_current_object()


def test_not_yet_implemented_list_is_exact() -> None:
    """A task that lands must leave NOT_YET_IMPLEMENTED; no placeholder may stand in for one."""
    present = {
        function
        for module, function, _ in REGISTRY
        if hasattr(importlib.import_module(f"background_tasks.{module}"), function)
    }
    assert present.isdisjoint(NOT_YET_IMPLEMENTED), present & NOT_YET_IMPLEMENTED
    assert present | NOT_YET_IMPLEMENTED == {function for _, function, _ in REGISTRY}


def test_every_project_task_is_in_the_registry_and_exported() -> None:
    registered_names = {name for _, _, name in REGISTRY if name}
    extra_names = {name for _, _, name in EXTRA_TASKS}
    assert set(_project_tasks()) <= registered_names | extra_names
    assert extra_names.isdisjoint(registered_names)
    assert sorted(old_path.__all__) == sorted(
        [function for _, function, _ in IMPLEMENTED] + [function for _, function, _ in EXTRA_TASKS]
    )


@pytest.mark.parametrize(("module", "function", "registered"), EXTRA_TASKS)
def test_extra_tasks_are_namespaced_routed_and_exported(module, function, registered) -> None:
    obj = getattr(importlib.import_module(f"background_tasks.{module}"), function)
    assert obj.name == registered and "." in registered
    assert getattr(old_path, function) is obj
    assert TASK_QUEUES[registered] in QUEUE_NAMES


def test_every_registered_name_routes_to_a_declared_queue() -> None:
    registered_names = {name for _, _, name in REGISTRY if name}
    assert set(TASK_QUEUES) == registered_names | {name for _, _, name in EXTRA_TASKS}
    for name in registered_names:
        route = app.amqp.router.route({}, name)
        assert route["queue"].name in QUEUE_NAMES, name
        assert route["queue"].name == TASK_QUEUES[name]


def test_beat_entries_name_registry_tasks() -> None:
    registered_names = {name for _, _, name in REGISTRY if name}
    assert {entry["task"] for entry in BEAT_SCHEDULE.values()} <= registered_names


def _consumed_queues(command: str) -> set[str]:
    match = re.search(r"-Q[ ,\"']+([\w,]+)", command)
    return set(match.group(1).split(",")) if match else set()


def test_every_queue_has_a_consumer_in_the_procfile() -> None:
    commands = [
        line.split(":", 1)[1]
        for line in (BASE_DIR / "Procfile").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    consumed = set().union(*(_consumed_queues(c) for c in commands if " worker " in c))
    assert consumed == set(QUEUE_NAMES)
    assert sum(" beat " in f" {c} " for c in commands) == 1


def test_every_queue_has_a_consumer_in_docker_compose_and_a_leading_and_a_standby_beat() -> None:
    services = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())["services"]
    commands = {name: " ".join(s.get("command", [])) for name, s in services.items()}
    workers = [c for c in commands.values() if " worker " in f" {c} "]
    consumed = set().union(*(_consumed_queues(c.replace(" -Q ", " -Q ")) for c in workers))
    assert consumed == set(QUEUE_NAMES)
    beats = [name for name, c in commands.items() if " beat " in f" {c} "]
    assert beats == ["beat"]
    assert services["beat"]["deploy"]["replicas"] == 2


def test_dev_procfile_runs_one_worker_on_every_queue() -> None:
    lines = dict(
        line.split(":", 1)
        for line in (BASE_DIR / "Procfile.dev").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(lines) == {"web", "worker", "beat"}
    assert _consumed_queues(lines["worker"]) == set(QUEUE_NAMES)


def test_flower_asks_for_a_password_and_is_not_published_to_the_network() -> None:
    flower = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())["services"]["flower"]
    assert "FLOWER_BASIC_AUTH" in flower["environment"]
    assert all(port.startswith("127.0.0.1:") for port in flower["ports"])
