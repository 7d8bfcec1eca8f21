"""No secret and no personal data in stored results or dead letters, for every task: the
result backend stores no arguments and redacts results, errors and tracebacks."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache
from django_celery_results.models import TaskResult

from apps.core.models import DeadLetter
from apps.core.redaction import redact_text
from apps.core.results import DatabaseBackend
from background_tasks import external_api_call_async
from intelliwiz_config.celery import app
from tests.support import worker_tasks
from tests.support.waiting import patience

SECRET, EMAIL = "s3cr3t-value", "alice@facility.test"


class EchoPartner(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"contact": EMAIL, "seen_auth": self.headers.get("Authorization")})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())


def stored_text() -> str:
    rows = TaskResult.objects.values()
    letters = DeadLetter.objects.values("args", "kwargs", "error")
    return json.dumps([*rows, *letters], default=str)


def test_every_task_stores_its_outcome_through_the_redacting_backend() -> None:
    app.loader.import_default_modules()
    for name, task in app.tasks.items():
        if not name.startswith("celery."):
            assert isinstance(task.backend, DatabaseBackend), name


def test_signed_links_and_addresses_are_redacted_from_text() -> None:
    text = f"mail {EMAIL} https://x.example/mobile/downloads/abc.def-ghi?x=1 /permits/decide/Zz9"
    assert redact_text(text) == (
        "mail [redacted] https://x.example/mobile/downloads/[token]?x=1 /permits/decide/[token]"
    )


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_stores_no_arguments_secrets_or_addresses(worker, settings, clean_cache) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoPartner)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://localhost:{server.server_address[1]}/contact"
        called = external_api_call_async.delay(url, "GET", {"Authorization": f"Bearer {SECRET}"})
        assert called.get(timeout=patience(30))["body"]["contact"] == "[redacted]"
        failed = worker_tasks.fail_once_then_echo.delay("privacy-1", token=SECRET, to=EMAIL)
        with pytest.raises(ValueError):
            failed.get(timeout=patience(30))
    finally:
        server.shutdown()
    assert TaskResult.objects.filter(task_id__in=[called.id, failed.id]).count() == 2
    text = stored_text()
    assert SECRET not in text and EMAIL not in text and "facility.test" not in text
    assert cache.get("received:privacy-1") is None
