"""Integration tasks: MQTT publishing, the mobile GraphQL pipeline, partner APIs and bulk sync."""

from __future__ import annotations

from urllib.parse import urlsplit

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval

from apps.core.idempotency import perform_once, side_effect_identity
from apps.core.tasks.base import ExternalServiceTask
from apps.core.tasks.legacy import (
    Arguments,
    LegacyCallRefused,
    UpstreamForm,
    accepts_upstream,
    refuse,
)
from apps.core.tasks.utils import task_retry_policy
from apps.integrations.bulk_sync import UPSTREAM_TABLES, apply_records_once
from apps.integrations.mqtt import (
    outside_allowed_prefixes,
    publish,
    validate_mqtt_payload,
    validate_mqtt_topic,
)
from apps.integrations.partner_api import (
    IDEMPOTENT_METHODS,
    PartnerUnavailable,
    call_partner,
)
from apps.integrations.results import BulkSyncResult, PartnerCallResult, PublishResult
from apps.mobile.results import DownloadResult, MutationResult
from background_tasks.ticket_tasks import alert_sendmail

PARTNER_CALL_MARGIN = 10  # seconds of the task's soft limit kept for recording the outcome
# Upstream's post_save signals published change capture here, before commit and for rolled-back
# saves too; apps.integrations.cdc now publishes every change after commit itself.
UPSTREAM_CHANGES_TOPIC = "redmine_to_noc"

__all__ = [
    "external_api_call_async",
    "insert_json_records_async",
    "process_graphql_download_async",
    "process_graphql_mutation_async",
    "publish_mqtt",
    "validate_mqtt_payload",
    "validate_mqtt_topic",
]


@shared_task(
    name="publish_mqtt",
    base=ExternalServiceTask,
    bind=True,
    service_name="mqtt-broker",
    **task_retry_policy("external_api"),
)
@accepts_upstream(
    UpstreamForm(
        "topic, payload",
        refuse(
            "change capture is published after commit by the application itself (to "
            "MQTT_CHANGES_TOPIC); relaying upstream's signal messages would publish changes "
            "twice, and rolled-back ones",
            use="no call: apps.integrations.cdc publishes each change; drop upstream's producers",
        ),
        matches=lambda arguments: arguments["topic"] == UPSTREAM_CHANGES_TOPIC,
        label=f"topic={UPSTREAM_CHANGES_TOPIC}",
    ),
    # Upstream published under any topic (its MQTT bridge's response/..., its sites' ...);
    # here only under MQTT_ALLOWED_TOPIC_PREFIXES, which the operator may widen to keep them.
    UpstreamForm(
        "topic, payload, qos=1, retain=False",
        refuse(
            "the topic lies outside MQTT_ALLOWED_TOPIC_PREFIXES (upstream published under any "
            "prefix)",
            use="a topic under MQTT_ALLOWED_TOPIC_PREFIXES, or add the topic's first level to "
            "that setting to keep publishing it",
        ),
        matches=lambda arguments: outside_allowed_prefixes(arguments["topic"]),
        label="topic:outside-allowed-prefixes",
    ),
)
def publish_mqtt(
    self, topic: str, payload: object, qos: int = 1, retain: bool = False
) -> PublishResult:
    """Publish one message and wait for the broker's acknowledgement, once per task id."""
    validate_mqtt_topic(topic)  # bad input fails at once, before the circuit or the ledger
    sent: list[int] = []

    def send() -> None:
        with self.external_call():
            sent.append(publish(topic, payload, qos=qos, retain=retain))

    performed = perform_once(f"mqtt:{self.request.id}", send, task_id=self.request.id or "")
    return {"topic": topic, "published": performed, "bytes": sent[0] if sent else 0}


@shared_task(
    name="external_api_call_async",
    base=ExternalServiceTask,
    bind=True,
    **task_retry_policy("external_api"),
)
def external_api_call_async(
    self,
    url: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    data: object = None,
    timeout: float = 30,
    user_id: int | None = None,
    credentials: str | None = None,
) -> PartnerCallResult:
    """Call an allow-listed partner API (SSRF-safe; one circuit per host).

    `credentials` names a set of PARTNER_API_CREDENTIALS, added on the worker. `timeout` bounds
    the whole call and is capped to leave the task time to record it (its soft limit less 10 s).
    Idempotent methods are retried on timeouts, 429 and 5xx, after Retry-After when the partner
    sends one; other methods run at most once per task id.
    """
    host = urlsplit(url).hostname or ""
    method = method.upper()
    timeout = min(timeout, self.soft_time_limit - PARTNER_CALL_MARGIN)
    ledger_key = f"partner:{self.request.id}"

    def call() -> PartnerCallResult:
        with self.external_call(f"partner:{host}"):
            return call_partner(
                url,
                method,
                headers,
                data,
                timeout,
                credentials,
                idempotency_key=side_effect_identity(ledger_key),
            )

    try:
        if method in IDEMPOTENT_METHODS:
            return call()
        outcome: list[PartnerCallResult] = []
        done = perform_once(
            ledger_key,
            lambda: outcome.append(call()),
            task_id=self.request.id or "",
        )
        return outcome[0] if done else {"host": host, "skipped": "already performed"}
    except PartnerUnavailable as exc:
        countdown = exc.retry_after if exc.retry_after is not None else _backoff(self)
        raise self.retry(exc=exc, countdown=min(countdown, self.retry_backoff_max)) from None


def _backoff(task) -> float:
    return get_exponential_backoff_interval(
        factor=task.retry_backoff,
        retries=task.request.retries,
        maximum=task.retry_backoff_max,
        full_jitter=task.retry_jitter,
    )


@shared_task(name="insert_json_records_async", bind=True, **task_retry_policy("database_heavy"))
@accepts_upstream(
    UpstreamForm(
        "records, tablename",
        refuse(
            "it names no person, so the records cannot be scoped to a client and site (upstream "
            "upserted any row by uuid)",
            use="insert_json_records_async(records, tablename, user_id) or the mobile sync",
        ),
    ),
    UpstreamForm(
        "records, tablename, user_id",
        lambda arguments: _refuse_upstream_table(arguments),
        matches=lambda arguments: arguments["tablename"] in UPSTREAM_TABLES,
        label="tablename:upstream-table",
    ),
)
def insert_json_records_async(
    self, records: list[dict], tablename: str, user_id: int
) -> BulkSyncResult:
    """Apply a device's bulk sync for `tablename`, scoped to the sender, once per task id."""
    result = apply_records_once(records, tablename, user_id, self.request.id or "")
    if result is None:
        return {"table": tablename, "duplicate": True}
    for jobneed_id in result["alerting_jobneeds"]:
        alert_sendmail.delay(jobneed_id, "observation")
    return result


def _refuse_upstream_table(arguments: Arguments) -> Arguments:
    table = arguments["tablename"]
    raise LegacyCallRefused(
        f"table {table!r} is not synced in bulk here (upstream upserted any of its columns by "
        "uuid, across clients)",
        use=UPSTREAM_TABLES[table],
    )


def _upstream_graphql_form(kind: str) -> UpstreamForm:
    """Upstream sent the document itself (a JSON string) with no person: anyone who could
    publish on the broker ran it. Now the task gets the id of an authenticated device's
    recorded message."""
    return UpstreamForm(
        "payload",
        refuse(
            f"an unauthenticated {kind} document is never executed",
            use='POST /mobile/ingest or the MQTT bridge (the task then gets {"message_id": id})',
        ),
        matches=lambda arguments: not _is_recorded_message(arguments["payload"]),
        label="payload:graphql-document",
    )


def _is_recorded_message(payload: object) -> bool:
    return isinstance(payload, dict) and "message_id" in payload


@shared_task(name="process_graphql_mutation_async", **task_retry_policy("default"))
@accepts_upstream(_upstream_graphql_form("mutation"))
def process_graphql_mutation_async(payload: dict) -> MutationResult:
    """Execute a device's recorded mutation as its verified person, once per client id.

    GraphQL errors are a failed result (not retried); transient database errors retry.
    """
    # GraphQL (graphene and the schema, about half a second) loads with a worker's first mobile
    # task, not in every worker at start.
    from apps.mobile.execution import run_mutation

    return run_mutation(int(payload["message_id"]))


@shared_task(name="process_graphql_download_async", bind=True, **task_retry_policy("default"))
@accepts_upstream(_upstream_graphql_form("download"))
def process_graphql_download_async(self, payload: dict) -> DownloadResult:
    """Run a device's download query, store it as compressed JSON, return an expiring link."""
    from apps.mobile.execution import run_download  # GraphQL on first use, as above

    def progress(percent: int) -> None:
        if self.request.id and not self.request.is_eager:
            self.update_state(state="PROGRESS", meta={"percent": percent})

    return run_download(int(payload["message_id"]), progress)
