"""Every task's result is a named TypedDict declared in an app: its keys and value types are
written once, beside the service that builds them, and mypy holds the service and the task to
them. A result is stored only where someone reads it (RESULTS_READ)."""

from __future__ import annotations

import inspect
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
