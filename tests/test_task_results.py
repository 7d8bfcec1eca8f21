"""Every task's result is a named TypedDict declared in an app: its keys and value types are
written once, beside the service that builds them, and mypy holds the service and the task to
them."""

from __future__ import annotations

import inspect
import typing

import pytest
from celery import Task

from intelliwiz_config.celery import app
from tests.contract import EXTRA_TASKS, NOT_YET_IMPLEMENTED, REGISTRY

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
