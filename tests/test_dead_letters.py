"""Dead letters: redaction, and re-queueing from the admin to a real worker."""

from __future__ import annotations

import pytest
from celery.result import AsyncResult

from apps.core.dead_letters import REDACTED, redact
from apps.core.models import DeadLetter
from apps.peoples.models import People


def test_redact_hides_secret_named_values_at_any_depth() -> None:
    value = {
        "site": "S1",
        "api_key": "k",
        "nested": {"Authorization": "Bearer x", "items": [{"password": "p", "n": 1}]},
        "tuple": (1, "two"),
        "object": object,
    }
    assert redact(value) == {
        "site": "S1",
        "api_key": REDACTED,
        "nested": {"Authorization": REDACTED, "items": [{"password": REDACTED, "n": 1}]},
        "tuple": [1, "two"],
        "object": repr(object),
    }


@pytest.fixture
def admin_client(client):
    client.force_login(People.objects.create_superuser("root", "pw", email="root@example.com"))
    return client


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_admin_requeues_a_dead_letter_to_the_worker(worker, admin_client, clean_cache) -> None:
    letter = DeadLetter.objects.create(
        task_name="tests.flaky",
        task_id="lost-1",
        args=[],
        kwargs={"key": "requeued", "failures": 0},
        exception_type="builtins.ConnectionError",
        retries=3,
    )
    response = admin_client.post(
        "/admin/core/deadletter/",
        {"action": "requeue_selected", "_selected_action": [letter.pk]},
        follow=True,
    )
    assert "Re-queued 1 task(s)." in response.content.decode()
    letter.refresh_from_db()
    assert letter.requeued_at is not None
    assert AsyncResult(letter.requeued_task_id).get(timeout=30) == 1

    # A second re-queue of the same letter is refused.
    response = admin_client.post(
        "/admin/core/deadletter/",
        {"action": "requeue_selected", "_selected_action": [letter.pk]},
        follow=True,
    )
    assert "was re-queued already" in response.content.decode()


@pytest.mark.django_db
def test_a_dead_letter_with_redacted_arguments_is_not_requeued(admin_client) -> None:
    letter = DeadLetter.objects.create(
        task_name="tests.flaky",
        task_id="lost-2",
        kwargs={"key": "x", "token": REDACTED},
        exception_type="builtins.ValueError",
    )
    response = admin_client.post(
        "/admin/core/deadletter/",
        {"action": "requeue_selected", "_selected_action": [letter.pk]},
        follow=True,
    )
    assert "has redacted arguments" in response.content.decode()
    letter.refresh_from_db()
    assert letter.requeued_at is None
