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
from intelliwiz_config.celery import (
    BEAT_SCHEDULE,
    DEFAULT_QUEUE,
    QUEUE_NAMES,
    TASK_QUEUES,
    UPSTREAM_QUEUE_NAMES,
    app,
)
from tests.contract import EXTRA_TASKS, NOT_YET_IMPLEMENTED, REGISTRY

BASE_DIR = Path(__file__).resolve().parent.parent
SHARED_REGISTRY = BASE_DIR.parent / "shared" / "reference" / "task-registry.md"
# The project's copy of the shared registry, for a checkout without the shared reference beside.
REGISTRY_COPY = Path(__file__).resolve().parent / "reference" / "task-registry.md"
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


def test_contract_matches_the_registry_and_the_copy_matches_the_shared_one() -> None:
    """tests/contract.py holds the registry's rows; tests/reference keeps the registry itself,
    the same text as the shared reference when that is beside the checkout (as in CI)."""
    if SHARED_REGISTRY.exists():
        assert REGISTRY_COPY.read_text() == SHARED_REGISTRY.read_text()
    rows = re.findall(
        r"^\| \d+ \| (\w+) \| (\w+) \| (?:\*\*)?([\w()., ]+?)(?:\*\*)? \|",
        REGISTRY_COPY.read_text(),
        flags=re.MULTILINE,
    )
    registry = [(m, f, None if name.startswith("(helper") else name) for m, f, name in rows]
    assert registry == REGISTRY


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


def _consumed_queues(command: str, drain: bool = True) -> set[str]:
    """The queues a worker command consumes: its -Q list, and upstream's queues when it takes
    the default queue and DRAIN_UPSTREAM_QUEUES is on (apps.core.tasks.consumer)."""
    match = re.search(r"-Q[ ,\"']+([\w,]+)", command)
    queues = set(match.group(1).split(",")) if match else set()
    if drain and DEFAULT_QUEUE in queues:
        queues |= set(UPSTREAM_QUEUE_NAMES)
    return queues


def _drains(environment: object) -> bool:
    """DRAIN_UPSTREAM_QUEUES as an environment gives it, on unless set to a false value."""
    value = str((environment or {}).get("DRAIN_UPSTREAM_QUEUES", "true"))  # type: ignore[attr-defined]
    return value.strip().lower() not in {"0", "false", "no", "off"}


def test_every_queue_has_a_consumer_in_the_procfile() -> None:
    commands = [
        line.split(":", 1)[1]
        for line in (BASE_DIR / "Procfile").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    workers = [c for c in commands if " worker " in c]
    consumed = set().union(
        *(_consumed_queues(c, "DRAIN_UPSTREAM_QUEUES=false" not in c) for c in workers)
    )
    assert consumed == {*QUEUE_NAMES, *UPSTREAM_QUEUE_NAMES}
    assert sum(DEFAULT_QUEUE in _consumed_queues(c, drain=False) for c in workers) == 1
    assert sum(" beat " in f" {c} " for c in commands) == 1


def test_every_queue_has_a_consumer_in_docker_compose_and_a_leading_and_a_standby_beat() -> None:
    services = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())["services"]
    commands = {name: " ".join(s.get("command", [])) for name, s in services.items()}
    workers = {name: c for name, c in commands.items() if " worker " in f" {c} "}
    consumed = set().union(
        *(
            _consumed_queues(c, _drains(services[name].get("environment")))
            for name, c in workers.items()
        )
    )
    assert consumed == {*QUEUE_NAMES, *UPSTREAM_QUEUE_NAMES}
    assert sum(DEFAULT_QUEUE in _consumed_queues(c, drain=False) for c in workers.values()) == 1
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
    assert _consumed_queues(lines["worker"]) == {*QUEUE_NAMES, *UPSTREAM_QUEUE_NAMES}
    assert "DRAIN_UPSTREAM_QUEUES" not in lines["worker"]


def test_flower_asks_for_a_password_and_is_not_published_to_the_network() -> None:
    flower = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())["services"]["flower"]
    assert "FLOWER_BASIC_AUTH" in flower["environment"]
    assert all(port.startswith("127.0.0.1:") for port in flower["ports"])
