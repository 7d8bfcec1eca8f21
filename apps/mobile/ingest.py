"""Requests from mobile devices (HTTP or the MQTT bridge): authenticate the device, record the
request once per client id, enqueue it for the verified person, and report its status."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import uuid
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from graphql import OperationType

from apps.core.cache import count_in_window
from apps.core.enqueue import enqueue_on_commit
from apps.mobile.limits import QueryRefused, checked_document
from apps.mobile.models import MobileDevice, MobileMessage, secret_digest
from apps.mobile.schema import schema

logger = logging.getLogger(__name__)
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# What each kind of request may run: a download reads, a mutation writes.
OPERATIONS = {
    MobileMessage.Kind.DOWNLOAD: (OperationType.QUERY,),
    MobileMessage.Kind.MUTATION: (OperationType.MUTATION,),
}


class DeviceRejected(Exception):
    """Unknown device, disabled device or wrong secret (the caller is told no more)."""


class DeviceThrottled(DeviceRejected):
    """Too many failed attempts for this device or from this address: wait and try again."""


# Failed attempts allowed per device id, and per client address (many devices may share one
# behind a carrier's NAT), within FAILURE_WINDOW seconds.
MAX_FAILURES_PER_DEVICE = 10
MAX_FAILURES_PER_ADDRESS = 50
FAILURE_WINDOW = 15 * 60
# Compared against when the device is unknown, so that an unknown device id and a wrong
# secret take the same time.
_NO_DEVICE = secret_digest("")


def _failure_keys(device_id: str, address: str) -> dict[str, int]:
    """The failure counters of an attempt, each with its limit."""
    digest = hashlib.sha256(device_id.encode()).hexdigest()
    keys = {f"mobile-auth-failures:device:{digest}": MAX_FAILURES_PER_DEVICE}
    if address:
        keys[f"mobile-auth-failures:address:{address}"] = MAX_FAILURES_PER_ADDRESS
    return keys


def _throttled(keys: dict[str, int]) -> bool:
    counts = cache.get_many(list(keys))
    return any(counts.get(key, 0) >= limit for key, limit in keys.items())


def _count_failure(keys: dict[str, int]) -> None:
    for key in keys:
        count_in_window(key, FAILURE_WINDOW)


class BadRequest(ValueError):
    """The request body is not usable; the message says why."""


def authenticate_device(device_id: str, secret: str, *, address: str = "") -> MobileDevice:
    """The enabled device `device_id` if `secret` is its secret. Unknown devices and wrong
    secrets take the same time. Failures are counted per device and per address; past their
    limit a wrong secret is answered "throttled", but the right one is always let in: others'
    guesses never lock a device out (its secret is 192 random bits, beyond any guessing)."""
    keys = _failure_keys(device_id[:64], address)
    device = MobileDevice.objects.select_related("person").filter(device_id=device_id).first()
    reason = ""
    if device is None:
        hmac.compare_digest(secret_digest(secret), _NO_DEVICE)  # the same work as a check
        reason = "unknown device"
    elif not device.check_secret(secret):
        reason = "wrong secret"
    elif not device.enabled or not device.person.is_active:
        reason = "device or person disabled"
    if device is not None and not reason:
        MobileDevice.objects.filter(pk=device.pk).update(last_seen_at=timezone.now())
        return device
    if _throttled(keys):
        logger.warning("mobile_device_throttled device=%r address=%s", device_id[:64], address)
        raise DeviceThrottled("too many failed attempts")
    _count_failure(keys)
    # Logged for operators; the secret never is.
    logger.warning("mobile_device_rejected device=%r reason=%s", device_id[:64], reason)
    raise DeviceRejected(reason)


def device_signed_in_by_broker(device_id: str) -> MobileDevice:
    """The enabled device the broker signed in as `device_id` (its ACL let it publish only on
    its own request topic)."""
    device = (
        MobileDevice.objects.select_related("person")
        .filter(device_id=device_id, enabled=True, person__is_active=True)
        .first()
    )
    if device is None:
        logger.warning("mobile_device_rejected device=%r reason=unknown or disabled", device_id)
        raise DeviceRejected("unknown or disabled device")
    MobileDevice.objects.filter(pk=device.pk).update(last_seen_at=timezone.now())
    return device


def message_status(message: MobileMessage) -> dict[str, Any]:
    status = {"client_id": message.client_id, "task_id": message.task_id, "status": message.status}
    if message.result is not None:
        status["result"] = message.result
    return status


def accept(device: MobileDevice, body: Any) -> dict[str, Any]:
    """Record and enqueue the request (once per client id); or report a request's status."""
    if not isinstance(body, dict):
        raise BadRequest("the request must be a JSON object")
    kind, client_id = body.get("kind"), body.get("client_id")
    if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
        raise BadRequest("client_id must be 1 to 64 letters, digits or . _ : -")
    if kind == "status":
        message = MobileMessage.objects.filter(device=device, client_id=client_id).first()
        if message is None:
            raise BadRequest(f"no request with client_id {client_id!r}")
        return message_status(message)
    if kind not in MobileMessage.Kind.values:
        raise BadRequest("kind must be mutation, download or status")
    query, variables = body.get("query"), body.get("variables") or {}
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("query must be a GraphQL document")
    if not isinstance(variables, dict):
        raise BadRequest("variables must be an object")
    try:  # refused before it is recorded or queued
        checked_document(schema.graphql_schema, query, allowed=OPERATIONS[kind])
    except QueryRefused as exc:
        raise BadRequest(str(exc)) from None
    try:
        with transaction.atomic():
            message = MobileMessage.objects.create(
                device=device,
                person=device.person,
                client_id=client_id,
                kind=kind,
                query=query,
                variables=variables,
                task_id=str(uuid.uuid4()),
            )
            _enqueue(message)
    except IntegrityError:  # a resend: the first request stands
        message = MobileMessage.objects.get(device=device, client_id=client_id)
    return message_status(message)


def _enqueue(message: MobileMessage) -> None:
    task = (
        "process_graphql_mutation_async"
        if message.kind == MobileMessage.Kind.MUTATION
        else "process_graphql_download_async"
    )
    # The task gets the message id only: the person comes from the authenticated record.
    enqueue_on_commit(task, {"message_id": message.pk}, task_id=message.task_id)
