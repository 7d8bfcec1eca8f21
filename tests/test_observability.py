"""Optional Sentry and OpenTelemetry: off and not imported by default; on by their variables;
a request's trace reaches the task it enqueued."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from apps.core import observability
from apps.peoples.models import People
from apps.y_helpdesk.models import Ticket
from tests import factories
from tests.conftest import BASE_DIR, ManagedProcess

PROBE = (
    "import json, sys, django; django.setup(); "
    "from opentelemetry import trace; from apps.core import observability; "
    "sentry = sys.modules.get('sentry_sdk'); client = sentry and sentry.get_client(); "
    "print(json.dumps({'sentry': bool(client and client.is_active()), "
    "'integrations': sorted(client.integrations) if client else [], "
    "'before_send': getattr(client and client.options['before_send'], '__name__', None), "
    "'tracing': observability._tracing, "
    "'provider': type(trace.get_tracer_provider()).__name__}))"
)


def probe(tmp_path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "OTEL_"))}
    clean |= {"DJANGO_SETTINGS_MODULE": "intelliwiz_config.settings"}
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=BASE_DIR,
        env=clean | {"INTELLIWIZ_VAR_DIR": str(tmp_path)} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def found(completed: subprocess.CompletedProcess[str]) -> dict:
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.splitlines()[-1])


def test_without_their_variables_neither_is_set_up_nor_sentry_imported(tmp_path) -> None:
    assert found(probe(tmp_path)) == {
        "sentry": False,
        "integrations": [],
        "before_send": None,
        "tracing": False,
        "provider": "ProxyTracerProvider",
    }


def test_sentry_reports_django_and_celery_errors_when_a_dsn_is_set(tmp_path) -> None:
    sentry = found(probe(tmp_path, SENTRY_DSN="https://public@sentry.example/1"))
    assert sentry["sentry"] is True
    assert {"django", "celery"} <= set(sentry["integrations"])
    assert sentry["before_send"] == "drop_task_arguments"


def test_tracing_without_its_extra_stops_at_start_naming_the_extra(tmp_path) -> None:
    pytest.importorskip("opentelemetry.sdk")
    try:
        import opentelemetry.exporter.otlp.proto.http  # noqa: F401
    except ImportError:
        completed = probe(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318")
        assert completed.returncode != 0 and "the 'tracing' extra" in completed.stderr
    else:  # the extra is installed: tracing is on
        on = found(probe(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318"))
        assert on["tracing"] is True and on["provider"] == "TracerProvider"


def test_task_arguments_never_reach_sentry() -> None:
    event = {"extra": {"celery-job": {"task_name": "t", "args": ["a@x.test"], "kwargs": {}}}}
    assert observability.drop_task_arguments(event, {}) == {
        "extra": {"celery-job": {"task_name": "t"}}
    }


# OpenTelemetry takes one tracer provider per process: one exporter for the session.
@pytest.fixture(scope="session")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    observability.configure_tracing(exporter)
    return exporter


@pytest.fixture
def tracing(spans: InMemorySpanExporter, monkeypatch) -> InMemorySpanExporter:
    """Tracing on for one test (the provider is the process's, set once)."""
    monkeypatch.setattr(observability, "_tracing", True)
    spans.clear()
    yield spans
    monkeypatch.setattr(observability, "_tracing", False)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_trace_of_a_request_reaches_the_task_it_enqueued(
    worker: ManagedProcess, mail_sink, client, tracing: InMemorySpanExporter
) -> None:
    test_client, site = factories.client_and_site("UTC")
    in_charge = factories.person(site, designation="SITEINCHARGE", email="incharge@facility.test")
    operator = People.objects.create_superuser(
        "operator", "pw", email="operator@facility.test", client=test_client, site=site
    )
    client.force_login(operator)
    response = client.post(
        "/tickets/new",
        {
            "description": "Traced leak",
            "site": site.pk,
            "priority": "HIGH",
            "status": "NEW",
            "assigned_people": in_charge.pk,
        },
    )
    assert response.status_code == 302
    (request_span,) = [s for s in tracing.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    assert request_span.name == "POST tickets/new"
    trace_id = trace.format_trace_id(request_span.context.trace_id)
    assert Ticket.objects.filter(description="Traced leak").exists()
    assert mail_sink.wait_for(1)
    # The worker runs without tracing of its own: the trace id comes in the message.
    worker.wait_for_log("task_run task=send_ticket_email id=")
    lines = [line for line in worker.log().splitlines() if "task=send_ticket_email" in line]
    assert any(f"trace_id={trace_id}" in line for line in lines), lines


def test_a_task_run_is_a_child_span_of_the_trace_its_message_carries(tracing) -> None:
    class Request:
        delivery_info = {"routing_key": "email"}
        headers = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}

        def get(self, key: str) -> str | None:
            return self.headers.get(key)

    class Task:
        name = "send_ticket_email"
        request = Request()

    observability._start_task_span(task_id="t1", task=Task())
    observability._end_task_span(task_id="t1", state="SUCCESS")
    (span,) = tracing.get_finished_spans()
    assert span.name == "run send_ticket_email"
    assert trace.format_trace_id(span.context.trace_id) == "0af7651916cd43dd8448eb211c80319c"
    assert trace.format_span_id(span.parent.span_id) == "b7ad6b7169203331"
    assert span.attributes["messaging.destination.name"] == "email"
