"""A device's offline batch goes in through the syncRecords mutation (over HTTP and over the
MQTT bridge), is applied by insert_json_records_async on a real worker, and the device reads
back the outcome of every record (mySyncBatch)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django.test import Client

from apps.activity.models import JobneedDetails
from apps.integrations.models import SyncBatch
from tests.conftest import ManagedProcess, process_env
from tests.support.mqtt import Subscriber
from tests.support.waiting import patience
from tests.test_mobile import GOOD, ingest, mobile_world

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(db) -> dict:
    return mobile_world()


SYNC = """mutation($table: String!, $records: GenericScalar!) {
  syncRecords(table: $table, records: $records) { batch { uuid status records } } }"""
BATCH = """query($id: UUID!) { mySyncBatch(id: $id) {
  status applied rejected { index uuid reason } } }"""


def records_for(world) -> list[dict]:
    mine = world["mine"].details.get()
    theirs = world["theirs"].details.get()
    return [
        {"uuid": str(mine.uuid), "answer": "4"},
        {"uuid": str(theirs.uuid), "answer": "4"},  # not assigned to this device's person
        {"uuid": str(uuid.uuid4()), "answer": "1"},
    ]


def wait_for_batch() -> SyncBatch:
    deadline = time.monotonic() + patience(60)
    while not SyncBatch.objects.filter(status="DONE").exists():
        assert time.monotonic() < deadline, "the batch was not applied"
        time.sleep(0.25)
    return SyncBatch.objects.get()


def assert_outcome(world, batch: SyncBatch) -> None:
    phone = Client()
    phone.force_login(world["person"])
    seen = phone.post(
        "/graphql", {"query": BATCH, "variables": {"id": str(batch.uuid)}}, "application/json"
    ).json()["data"]["mySyncBatch"]
    assert (seen["status"], seen["applied"]) == ("DONE", 1)
    assert [(r["index"], r["reason"]) for r in seen["rejected"]] == [
        (1, "belongs to another client or site, or is not assigned to the sender"),
        (2, "unknown uuid"),
    ]
    assert JobneedDetails.objects.get(jobneed=world["mine"]).answer == "4"
    assert JobneedDetails.objects.get(jobneed=world["theirs"]).answer == ""


def test_a_batch_sent_over_http_is_applied_and_its_outcome_read_back(worker, world) -> None:
    status, _ = ingest(
        GOOD,
        {
            "kind": "mutation",
            "client_id": "sync-1",
            "query": SYNC,
            "variables": {"table": "jobneeddetails", "records": records_for(world)},
        },
    )
    assert status == 202
    assert_outcome(world, wait_for_batch())


def test_a_batch_sent_over_the_mqtt_bridge_is_applied(
    worker, worker_mqtt_broker, world, tmp_path
) -> None:
    bridge = ManagedProcess(
        ["manage.py", "mqtt_bridge"],
        process_env(MQTT_URL=worker_mqtt_broker.url),
        tmp_path / "bridge.log",
    )
    replies = Subscriber(worker_mqtt_broker.url, "intelliwiz/mobile/phone-1/response")
    sender = Subscriber(worker_mqtt_broker.url, "intelliwiz/mobile/none")
    try:
        bridge.wait_for_log("mqtt_bridge: listening")
        request = {
            "secret": "s3cret-token",
            "kind": "mutation",
            "client_id": "sync-mqtt-1",
            "query": SYNC,
            "variables": {"table": "jobneeddetails", "records": records_for(world)},
        }
        sender._client.publish("intelliwiz/mobile/phone-1/request", json.dumps(request), qos=1)
        assert json.loads(replies.wait_for(1)[0][1])["status"] == "QUEUED"
        assert_outcome(world, wait_for_batch())
    finally:
        replies.close()
        sender.close()
        bridge.stop()


def test_a_batch_for_an_unknown_table_is_refused_at_once(world) -> None:
    phone = Client()
    phone.force_login(world["person"])
    answer = phone.post(
        "/graphql",
        {"query": SYNC, "variables": {"table": "people", "records": [{}]}},
        "application/json",
    ).json()
    assert "table 'people' cannot be synced" in answer["errors"][0]["message"]
    assert not SyncBatch.objects.exists()
