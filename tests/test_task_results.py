"""Every task's result is a named TypedDict declared in an app: its keys and value types are
written once, beside the service that builds them (the service builds and returns the TypedDict
itself: no class of its own converted to it), and mypy holds the service and the task to them.
The types are JSON's, what the result backend stores. A result is stored only where someone reads
it (RESULTS_READ)."""

from __future__ import annotations

import inspect
import sys
import types
import typing

import pytest
from celery import Task
from django_celery_results.models import TaskResult

from background_tasks import cache_warming_scheduled
from intelliwiz_config.celery import RESULTS_READ, app
from tests.contract import EXTRA_TASKS, NOT_YET_IMPLEMENTED, REGISTRY
from tests.support import worker_tasks

# Celery's own tasks, and the worker fixtures some test modules register (tests.*), are not the
# project's.
NOT_PROJECT = ("celery.", "tests.")
PROJECT_TASKS = sorted(name for name in app.tasks if not name.startswith(NOT_PROJECT))


def result_type(task: Task) -> object:
    # accepts_upstream wraps the task function (functools.wraps); its hints are the function's.
    return typing.get_type_hints(inspect.unwrap(task.run))["return"]


def test_every_contract_task_is_checked() -> None:
    contract = {
        name
        for _, function, name in [*REGISTRY, *EXTRA_TASKS]
        if name is not None and function not in NOT_YET_IMPLEMENTED
    }
    assert contract <= set(PROJECT_TASKS)


@pytest.mark.parametrize("name", PROJECT_TASKS)
def test_task_result_is_a_typeddict_of_an_app(name: str) -> None:
    returned = result_type(app.tasks[name])
    assert typing.is_typeddict(returned), f"{name} returns {returned}, not a TypedDict"
    assert returned.__module__.startswith("apps."), (
        f"{name}'s result {returned.__qualname__} is declared in {returned.__module__}, "
        "not beside the app service that builds it"
    )


def test_results_are_stored_only_for_the_tasks_named_as_read() -> None:
    assert set(RESULTS_READ) <= set(PROJECT_TASKS)
    storing = {name for name in PROJECT_TASKS if not app.tasks[name].ignore_result}
    assert storing == set(RESULTS_READ)
    # Failures and retries stay visible in the results admin and to monitors.
    assert all(app.tasks[name].store_errors_even_if_ignored for name in PROJECT_TASKS)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_run_writes_a_result_row_only_when_its_result_is_asked_for(worker, clean_cache) -> None:
    unread = cache_warming_scheduled.delay()
    asked = cache_warming_scheduled.apply_async(ignore_result=False)
    failed = worker_tasks.permanent_failure.apply_async(
        kwargs={"key": "results-unread"}, ignore_result=True
    )
    assert asked.get(timeout=60)["sites"] == 0
    worker.wait_for_log(f"id={unread.id} outcome=success")
    worker.wait_for_log(f"id={failed.id} outcome=failure")
    stored = dict(TaskResult.objects.values_list("task_id", "status"))
    assert unread.id not in stored
    assert stored[asked.id] == "SUCCESS"
    assert stored[failed.id] == "FAILURE"


JSON_SCALARS = (str, int, float, bool, type(None))


def not_json(declared: object, where: str, owner: type, seen: set[object]) -> list[str]:
    """Where the declared type holds something JSON has no value for."""
    if isinstance(declared, typing.ForwardRef):  # a recursive alias (JSONValue), by name
        if declared.__forward_arg__ in seen:
            return []
        seen = seen | {declared.__forward_arg__}
        declared = typing.get_type_hints(
            type("Probe", (), {"__annotations__": {"value": declared.__forward_arg__}}),
            globalns=vars(sys.modules[owner.__module__]),
        )["value"]
    if declared in JSON_SCALARS:
        return []
    if typing.is_typeddict(declared):
        return [
            problem
            for key, value in typing.get_type_hints(declared).items()
            for problem in not_json(value, f"{where}.{key}", declared, seen)
        ]
    origin, arguments = typing.get_origin(declared), typing.get_args(declared)
    if origin is list:
        return not_json(arguments[0], f"{where}[]", owner, seen)
    if origin is dict and arguments[0] is str:
        return not_json(arguments[1], f"{where}{{}}", owner, seen)
    if origin in (typing.Union, types.UnionType):
        return [p for argument in arguments for p in not_json(argument, where, owner, seen)]
    return [f"{where}: {declared}"]


@pytest.mark.parametrize("name", PROJECT_TASKS)
def test_task_result_holds_only_json_types(name: str) -> None:
    returned = result_type(app.tasks[name])
    assert not not_json(returned, returned.__qualname__, returned, set())
