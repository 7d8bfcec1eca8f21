"""Optional error reporting (Sentry) and traces (OpenTelemetry), each on only when its variable
is set (SENTRY_DSN, OTEL_EXPORTER_OTLP_ENDPOINT): neither SDK is imported otherwise.

A trace follows a request into the tasks it enqueues: the web's span context travels in the
task message's ``traceparent`` header (W3C Trace Context), and the worker's run is a child span
of it. The ``task_run`` line names the trace (``trace_id=``) whenever the message carries one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celery.signals import before_task_publish, task_postrun, task_prerun
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.http import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint

_tracing = False
# Task id -> (its span, the token that made it current), between prerun and postrun.
_task_spans: dict[str, tuple[Any, Any]] = {}


def configure_error_reporting(dsn: str, traces_sample_rate: float, environment: str) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        before_send=drop_task_arguments,
    )


def drop_task_arguments(event: Event, hint: Hint) -> Event:
    """Task arguments may hold personal data; the task_run line never shows them either."""
    job = event.get("extra", {}).get("celery-job")
    if isinstance(job, dict):
        job.pop("args", None)
        job.pop("kwargs", None)
    return event


def configure_tracing(exporter: Any = None) -> None:
    """Spans of web requests and task runs, sent to the OTLP endpoint (OTEL_EXPORTER_OTLP_*
    variables), or to `exporter` when given."""
    global _tracing
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as missing:
        raise ImproperlyConfigured(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry's SDK is not installed: "
            "install the 'tracing' extra (uv sync --extra tracing)"
        ) from missing
    if exporter is None:
        processor: Any = BatchSpanProcessor(OTLPSpanExporter())
    else:
        processor = SimpleSpanProcessor(exporter)
    name = os.environ.get("OTEL_SERVICE_NAME", "intelliwiz")
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    before_task_publish.connect(_inject_trace_context, weak=False)
    task_prerun.connect(_start_task_span, weak=False)
    task_postrun.connect(_end_task_span, weak=False)
    _tracing = True


def _inject_trace_context(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if _tracing and headers is not None:
        from opentelemetry import propagate

        propagate.inject(headers)


def _start_task_span(task_id: str = "", task: Any = None, **_: Any) -> None:
    if not _tracing or task is None:
        return
    from opentelemetry import context, propagate, trace

    carrier = {key: task.request.get(key) for key in ("traceparent", "tracestate")}
    parent = propagate.extract({k: v for k, v in carrier.items() if v})
    span = trace.get_tracer("intelliwiz.tasks").start_span(
        f"run {task.name}", context=parent, kind=trace.SpanKind.CONSUMER
    )
    queue = (task.request.delivery_info or {}).get("routing_key", "")
    span.set_attribute("messaging.destination.name", queue)
    _task_spans[task_id] = (span, context.attach(trace.set_span_in_context(span)))


def _end_task_span(task_id: str = "", state: str | None = None, **_: Any) -> None:
    started = _task_spans.pop(task_id, None)
    if started is None:
        return
    from opentelemetry import context

    span, token = started
    if state:
        span.set_attribute("celery.state", state)
    context.detach(token)
    span.end()


class TracingMiddleware:
    """A server span per request, continuing a caller's trace; named by the route, never the
    path (signed links carry their token in it). Left out when tracing is off."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not _tracing:
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from opentelemetry import propagate, trace

        tracer = trace.get_tracer("intelliwiz.web")
        with tracer.start_as_current_span(
            request.method or "HTTP",
            context=propagate.extract(request.headers),
            kind=trace.SpanKind.SERVER,
        ) as span:
            response = self.get_response(request)
            match = request.resolver_match
            if match is not None:
                span.update_name(f"{request.method} {match.route}")
                span.set_attribute("http.route", match.route)
            span.set_attribute("http.request.method", request.method or "")
            span.set_attribute("http.response.status_code", response.status_code)
            return response
