"""Base task classes shared by every task of the project.

BaseTask (the app's ``task_cls``; a DjangoTask, so ``delay_on_commit`` is there) writes one
structured line per run: task name, id, outcome, duration, queue wait and retry count; never
arguments or results, which may hold personal data. A run that fails for good leaves a
DeadLetter row for operators to inspect and re-queue. ExternalServiceTask adds a circuit
breaker shared by all worker processes.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery.contrib.django.task import DjangoTask
from celery.exceptions import Ignore, Reject, Retry
from django.conf import settings

from apps.core import metrics
from apps.core.idempotency import ClaimLost, SideEffectInProgress
from apps.core.outages import record_retry
from apps.core.tasks import legacy
from apps.core.tasks.circuit_breaker import CircuitBreaker, CircuitOpenError

logger = logging.getLogger("intelliwiz.tasks")


class BaseTask(DjangoTask):
    Request = "apps.core.tasks.request:Request"
    # Seconds from the task's first publication during which transient errors are retried
    # (None: count retries with max_retries only). Set by the retry policies.
    retry_window: float | None = None
    autoretry_for: tuple[type[Exception], ...] = ()  # set by the retry policies

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        metrics.record_started(self.name, self._queue())
        started = time.monotonic()
        outcome, error = "success", ""
        try:
            return super().__call__(*args, **kwargs)
        except Retry:
            outcome = "retry"
            raise
        except (Ignore, Reject):
            outcome = "ignored"
            raise
        except BaseException as exc:
            outcome, error = "failure", type(exc).__name__
            raise
        finally:
            if legacy.upstream_name(self) and not self.request.get("legacy_call_logged"):
                legacy.log_legacy_call(self, "", self.name)
            self._log_run(outcome, error, time.monotonic() - started)

    @classmethod
    def on_bound(cls, app: Any) -> None:
        # A task that accepts upstream call forms (apps.core.tasks.legacy) checks a call against
        # them, rather than against its wrapper's catch-all signature, when it is sent.
        check = getattr(cls.run, "check_call", None)
        if check is not None:
            name = cls.name
            # celery-types lacks Task.__header__ (celery.app.task: the arguments check on send)
            cls.__header__ = staticmethod(  # type: ignore[attr-defined]
                lambda *args, **kwargs: check(name, args, kwargs)
            )

    def _queue(self) -> str:
        return str((self.request.delivery_info or {}).get("routing_key") or "")

    def _log_run(self, outcome: str, error: str, duration: float) -> None:
        request = self.request
        published_at = request.get("published_at")
        queue = self._queue()
        queue_wait = time.time() - duration - published_at if published_at else None
        metrics.record_run(self.name, queue, outcome, duration, queue_wait)
        level = logging.ERROR if outcome == "failure" else logging.INFO
        if not logger.isEnabledFor(level):
            return
        fields = {
            "task": self.name,
            "id": request.id,
            "outcome": outcome,
            "duration_ms": round(duration * 1000, 1),
            "retries": request.retries,
            "queue": queue,
        }
        if queue_wait is not None:
            fields["queue_wait_ms"] = round(queue_wait * 1000, 1)
        if error:
            fields["error"] = error
        # Sent from inside a trace (apps.core.observability): W3C version-traceid-spanid-flags.
        traceparent = str(request.get("traceparent") or "").split("-")
        if len(traceparent) == 4:
            fields["trace_id"] = traceparent[1]
        logger.log(level, "task_run %s", " ".join(f"{k}={v}" for k, v in fields.items()))

    def retry(
        self,
        args: Any = None,
        kwargs: Any = None,
        exc: Exception | None = None,
        throw: bool = True,
        eta: Any = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Retry:
        """Celery's retry, bounded by ``retry_window`` rather than a count.

        A claim held by another run is retried once its lease is over; a retry that cannot be
        published puts the message back instead of dropping it.
        """
        scale = settings.RETRY_TIME_SCALE
        if countdown is not None:
            countdown *= scale
        if isinstance(exc, SideEffectInProgress):
            jitter = random.uniform(0, 5)  # noqa: S311 (spreads retries, not a secret)
            countdown = max(countdown or 0.0, exc.retry_after + jitter)
        elif exc is not None:
            record_retry(self.name, exc)  # /healthz shows what is failing now
        first_published_at = (
            self.request.get("first_published_at") or self.request.get("published_at") or 0
        )
        if self.retry_window is not None and exc is not None and first_published_at:
            retry_at = time.time() + (countdown or 0.0)
            if retry_at - first_published_at > self.retry_window * scale:
                logger.warning(
                    "task_retry_window_over task=%s id=%s window_s=%s",
                    self.name,
                    self.request.id,
                    self.retry_window * scale,
                )
                raise exc
        headers = dict(options.pop("headers", None) or {})
        if first_published_at:
            headers["first_published_at"] = first_published_at
        try:
            return super().retry(
                args, kwargs, exc, throw, eta, countdown, max_retries, headers=headers, **options
            )
        except Reject as reject:
            if reject.requeue:  # type: ignore[attr-defined]  # celery-types' Reject lacks it
                raise
            raise Reject(reject.reason, requeue=True) from exc  # type: ignore[attr-defined]

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        from apps.core.dead_letters import record_dead_letter
        from apps.core.results import with_database_patience

        if self.request.is_eager:
            return  # run in the caller's process (apply()): the caller has the error
        if isinstance(exc, ClaimLost):
            # Another run took the work over (its message came back while this run was cut off
            # or past its time limit) and owns it now: nothing for an operator to re-queue.
            logger.error("side_effect_claim_lost task=%s id=%s error=%s", self.name, task_id, exc)
            metrics.record_claim_lost(self.name, self._queue())
            return

        # Without its dead letter a failure would be invisible to operators: if the database
        # stays down, the message goes back to the broker and the task runs again later.
        queue = self._queue()
        recorded = with_database_patience(
            lambda: record_dead_letter(
                task_name=self.name,
                task_id=task_id,
                queue=queue,
                args=args,
                kwargs=kwargs,
                exc=exc,
                retries=self.request.retries,
            ),
            f"dead letter of task {task_id}",
            task_id,
        )
        if recorded is not None:
            metrics.record_dead_letter(self.name, queue)


class ExternalServiceTask(BaseTask):
    """A task that calls another system through ``with self.external_call(): ...``.

    Failures of the types in ``autoretry_for`` count against the service's circuit; while the
    circuit is open, calls fail fast with CircuitOpenError (itself retried with backoff).
    """

    service_name: str = ""
    failure_threshold = 5
    recovery_timeout = 60.0

    def circuit_breaker(self, service: str | None = None) -> CircuitBreaker:
        return CircuitBreaker(
            service or self.service_name or self.name,
            failure_threshold=self.failure_threshold,
            recovery_timeout=self.recovery_timeout,
        )

    @contextmanager
    def external_call(self, service: str | None = None) -> Iterator[CircuitBreaker]:
        breaker = self.circuit_breaker(service)
        breaker.before_call()
        trips_on = tuple(
            t for t in (self.autoretry_for or ()) if not issubclass(t, CircuitOpenError)
        )
        try:
            yield breaker
        except trips_on:
            breaker.record_failure()
            raise
        breaker.record_success()
