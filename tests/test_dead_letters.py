"""Dead letters: redaction, and re-queueing from the admin to a real worker."""

from __future__ import annotations

import pytest
from celery.result import AsyncResult
from django.core.cache import cache

from apps.core.dead_letters import requeue, seal
from apps.core.models import DeadLetter
from apps.core.redaction import REDACTED, is_secret_name, redact
from apps.peoples.models import People
from tests.support import worker_tasks
from tests.support.waiting import patience, wait_until


def test_redact_hides_email_addresses_in_text() -> None:
    assert redact(["to alice@facility.test, bob@x.org", "site 4"]) == [
        f"to {REDACTED}, {REDACTED}",
        "site 4",
    ]


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


# One name per alternative of the secret-name pattern (and its spellings): dropping any of them
# from apps/core/redaction.py fails a case here.
@pytest.mark.parametrize(
    "name",
    [
        "pass",
        "password",
        "DB_PASSWD",
        "client_secret",
        "refresh_token",
        "api_key",
        "api-key",
        "ApiKey",
        "private_key",
        "private-key",
        "privatekey",
        "aws_access_key",
        "signing-key",
        "ClientKey",
        "app_key",
        "master_key",
        "Authorization",
        "credentials",
        "Cookie",
        "sessionid",
        "signature",
        "X-Amz-Signature",
        "Ocp-Apim-Subscription-Key",
        "X-Acme-Sig",
        "sig",
    ],
)
def test_every_kind_of_secret_name_is_recognised(name: str) -> None:
    assert is_secret_name(name)
    assert redact({name: "s3cr3t"}) == {name: REDACTED}


@pytest.mark.parametrize(
    "name", ["site", "description", "email_subject", "status", "count", "key", "signal"]
)
def test_ordinary_names_are_not_secret(name: str) -> None:
    assert not is_secret_name(name)


def test_query_string_secrets_are_redacted_wherever_a_url_is_shown() -> None:
    url = "https://partner.test/hook?site=S1&sig=abc123&X-Amz-Signature=f00&api_key=k&n=2"
    assert redact({"url": url}) == {
        "url": f"https://partner.test/hook?site=S1&sig={REDACTED}&X-Amz-Signature={REDACTED}"
        f"&api_key={REDACTED}&n=2"
    }


def test_a_requests_headers_show_only_the_harmless_ones_whatever_their_names() -> None:
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-Client-Id": "acme-prod-7731",
        "X-Tenant": "t-1",
        "Ocp-Apim-Subscription-Key": "k",
    }
    assert redact({"headers": headers})["headers"] == {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-Client-Id": REDACTED,
        "X-Tenant": REDACTED,
        "Ocp-Apim-Subscription-Key": REDACTED,
    }


@pytest.mark.django_db
def test_a_partner_calls_dead_letter_shows_neither_its_headers_nor_its_query_secrets() -> None:
    """Headers passed by position are still headers: each positional argument is redacted by
    the name of its parameter."""
    from apps.core.dead_letters import record_dead_letter, unseal

    url = "https://partner.test/hook?code=1&sig=s1gn4ture"
    headers = {"X-Client-Id": "acme-prod-7731", "Content-Type": "application/json"}
    letter = record_dead_letter(
        task_name="external_api_call_async",
        task_id="t-1",
        queue="external_api",
        args=[url, "POST", headers],
        kwargs={"data": {"ticket": 4}, "timeout": 10},
        exc=ConnectionError(f"gave up on {url}"),
        retries=3,
    )
    shown = str(letter.args) + str(letter.kwargs) + letter.error
    assert "acme-prod-7731" not in shown and "s1gn4ture" not in shown
    assert letter.args == [
        f"https://partner.test/hook?code=1&sig={REDACTED}",
        "POST",
        {"X-Client-Id": REDACTED, "Content-Type": "application/json"},
    ]
    assert unseal(letter.sealed_arguments)[0] == [url, "POST", headers]


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
    assert AsyncResult(letter.requeued_task_id).get(timeout=patience(30)) == 1

    # A second re-queue of the same letter is refused.
    response = admin_client.post(
        "/admin/core/deadletter/",
        {"action": "requeue_selected", "_selected_action": [letter.pk]},
        follow=True,
    )
    assert "was re-queued already" in response.content.decode()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_dead_letter_shows_redacted_arguments_and_requeues_the_real_ones(
    worker, admin_client, clean_cache
) -> None:
    sent = {"token": "s3cret", "to": "alice@facility.test", "site": "S1"}
    result = worker_tasks.fail_once_then_echo.delay("sealed-1", **sent)
    with pytest.raises(ValueError):
        result.get(timeout=patience(30))
    # The failure is stored before the dead letter is written (Celery's order): wait for it.
    wait_until(lambda: DeadLetter.objects.filter(task_id=result.id).exists(), 30)
    letter = DeadLetter.objects.get(task_id=result.id)
    assert letter.args == ["sealed-1"]
    assert letter.kwargs == {"token": REDACTED, "to": REDACTED, "site": "S1"}
    assert "s3cret" not in letter.sealed_arguments and "alice" not in letter.sealed_arguments
    page = admin_client.get(f"/admin/core/deadletter/{letter.pk}/change/").content.decode()
    assert "s3cret" not in page and "alice@facility.test" not in page

    new_id = requeue(letter)
    AsyncResult(new_id).get(timeout=patience(30))
    assert cache.get("received:sealed-1") == sent


@pytest.mark.django_db
def test_a_letter_sealed_under_another_secret_key_is_refused(settings) -> None:
    letter = DeadLetter.objects.create(
        task_name="tests.flaky",
        task_id="lost-3",
        exception_type="builtins.ValueError",
        sealed_arguments=seal([], {"key": "x"}),
    )
    settings.SECRET_KEY = "another-key-" + "x" * 50
    with pytest.raises(ValueError, match="another SECRET_KEY"):
        requeue(letter)


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
