"""The worker's handling of our tasks' messages: one that keeps killing its worker stops.

Late-ack tasks put their message back when the worker child running them dies (the machine
OOM-kills it, a native library crashes), so a crash loses nothing. A message that kills every
child that runs it would come back forever; after ``MAX_WORKER_LOSSES`` deaths it is
acknowledged and recorded as a failure with a dead letter instead.
"""

from __future__ import annotations

import logging
from typing import Any

from billiard.einfo import ExceptionWithTraceback  # type: ignore[attr-defined]  # not in stubs
from billiard.exceptions import WorkerLostError
from celery.worker.request import Request as CeleryRequest
from celery.worker.state import task_ready

from apps.core.cache import count_in_window

logger = logging.getLogger(__name__)
MAX_WORKER_LOSSES = 3


def _losses(task_id: str) -> int:
    try:
        return count_in_window(f"task-worker-losses:{task_id}", window=24 * 60 * 60)
    except Exception:  # the cache is away: count nothing, requeue as usual
        logger.warning("worker_loss_not_counted id=%s", task_id, exc_info=True)
        return 0


class Request(CeleryRequest):
    def on_failure(
        self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False
    ) -> None:
        exc = exc_info.exception
        if isinstance(exc, ExceptionWithTraceback):
            exc = exc.exc
        if (
            isinstance(exc, WorkerLostError)
            and self.task.acks_late
            and self.task.reject_on_worker_lost
            and _losses(self.id) >= MAX_WORKER_LOSSES
        ):
            return self._give_up(exc_info)
        return super().on_failure(exc_info, send_failed_event, return_ok)

    def _give_up(self, exc_info: Any) -> None:
        error = WorkerLostError(
            f"the worker running this task died {MAX_WORKER_LOSSES} times; not delivered again"
        )
        logger.error("task_poison task=%s id=%s: %s", self.task.name, self.id, error)
        task_ready(self)
        self.acknowledge()
        context = self._context  # type: ignore[attr-defined]  # celery-types lacks it
        self.task.backend.mark_as_failure(
            self.id, error, request=context, store_result=self.store_errors
        )
        self.task.request_stack.push(context)
        try:
            self.task.on_failure(error, self.id, self.args, self.kwargs, exc_info)
        finally:
            self.task.request_stack.pop()
