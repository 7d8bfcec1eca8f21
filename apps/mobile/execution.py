"""Run a recorded device message through the GraphQL schema as its verified person, once."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from graphql import ExecutionResult, GraphQLError

from apps.mobile.ingest import OPERATIONS
from apps.mobile.limits import QueryRefused, bounded_execute, checked_document
from apps.mobile.models import MobileMessage
from apps.mobile.results import DownloadResult, MutationResult
from apps.mobile.schema import schema
from apps.peoples.models import People

DOWNLOAD_SALT = "mobile-download"


@dataclass
class PersonContext:
    """What resolvers read as ``info.context``: the verified person."""

    user: People


def _errors(result: Any) -> list[str]:
    return [error.message for error in result.errors or []]


def _execute(message: MobileMessage) -> ExecutionResult:
    """Run the message's document as its person, within the limits for its kind (checked
    again here, where it runs, whatever path it came by) and the answer's budget."""
    try:
        document = checked_document(
            schema.graphql_schema,
            message.query,
            allowed=OPERATIONS[MobileMessage.Kind(message.kind)],
        )
    except QueryRefused as exc:
        return ExecutionResult(errors=[GraphQLError(str(exc))])
    return bounded_execute(
        schema.graphql_schema,
        document,
        variable_values=message.variables,
        context_value=PersonContext(message.person),
    )


def run_mutation(message_id: int) -> MutationResult:
    """Execute the mutation and store its result in one transaction: a redelivered or resent
    message finds the stored result and is not executed again."""
    with transaction.atomic():
        message = (
            MobileMessage.objects.select_for_update()
            .select_related("person")
            .get(pk=message_id, kind=MobileMessage.Kind.MUTATION)
        )
        if message.result is not None:
            return message.result
        result = _execute(message)
        errors = _errors(result)
        if errors:
            transaction.set_rollback(True)  # nothing of a failed mutation stays
        else:
            done = MutationResult(ok=True, data=result.data)
            _finish(message, done, MobileMessage.Status.DONE)
            return done
    failed = MutationResult(ok=False, errors=errors)
    _finish(MobileMessage.objects.get(pk=message_id), failed, MobileMessage.Status.FAILED)
    return failed


def run_download(message_id: int, progress: Callable[[int], None]) -> DownloadResult:
    """Run the query, store the data as compressed JSON, return an expiring reference."""
    message = MobileMessage.objects.select_related("person").get(
        pk=message_id, kind=MobileMessage.Kind.DOWNLOAD
    )
    if message.result is not None:
        return message.result
    progress(10)
    result = _execute(message)
    errors = _errors(result)
    if errors:
        outcome = DownloadResult(ok=False, errors=errors)
        _finish(message, outcome, MobileMessage.Status.FAILED)
        return outcome
    progress(60)
    content = gzip.compress(json.dumps(result.data, default=str).encode())
    name = default_storage.save(
        f"mobile-downloads/{message.person_id}/{message.task_id}.json.gz", ContentFile(content)
    )
    progress(90)
    token = signing.dumps({"m": message.pk, "f": name}, salt=DOWNLOAD_SALT)
    outcome = DownloadResult(
        ok=True,
        download=settings.SITE_URL.rstrip("/") + reverse("mobile:download", args=[token]),
        bytes=len(content),
        expires_at=(
            timezone.now() + timedelta(seconds=settings.MOBILE_DOWNLOAD_MAX_AGE_SECONDS)
        ).isoformat(),
    )
    _finish(message, outcome, MobileMessage.Status.DONE)
    return outcome


def download_file(token: str) -> str:
    """The storage name a valid, unexpired download token points to."""
    data = signing.loads(
        token, salt=DOWNLOAD_SALT, max_age=settings.MOBILE_DOWNLOAD_MAX_AGE_SECONDS
    )
    return data["f"]


def _finish(message: MobileMessage, result: MutationResult | DownloadResult, status: str) -> None:
    MobileMessage.objects.filter(pk=message.pk, result__isnull=True).update(
        result=result, status=status, finished_at=timezone.now()
    )
