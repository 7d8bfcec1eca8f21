"""The mobile app's actions set their background work going, through a real worker: a selfie
punch is verified, a punch outside the geofence reaches the NOC, an audio answer gets its
transcript; each outcome shows where the person and the NOC look."""

from __future__ import annotations

import base64
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from skimage import data as images

from apps.activity.models import Jobneed, JobneedDetails
from apps.attendance.models import AttendanceEvent
from apps.integrations.models import NocAlert
from tests import factories
from tests.support.mqtt import Subscriber
from tests.test_faces import astronaut_selfie, encode, store

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
SPEECH = (Path(__file__).parent / "data" / "numbers.wav").read_bytes()
PUNCH = """mutation($lat: Decimal, $lon: Decimal) {
  recordAttendanceEvent(kind: "PUNCH_IN", at: "2026-06-01T09:00:00+00:00",
                        latitude: $lat, longitude: $lon) { event { uuid insideGeofence } } }"""
UPLOAD = """mutation($owner: UUID!, $kind: String!, $data: String!) {
  uploadAttachment(ownerUuid: $owner, kind: $kind, filename: "f", contentBase64: $data) {
    attachment { uuid } } }"""


def graphql(browser: Client, query: str, **variables) -> dict:
    answer = browser.post(
        "/graphql", {"query": query, "variables": variables}, content_type="application/json"
    ).json()
    assert "errors" not in answer, answer
    return answer["data"]


def wait_for(predicate, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the background work did not finish"
        time.sleep(0.25)


@pytest.fixture
def phone():
    _, site = factories.client_and_site()
    site.latitude, site.longitude, site.geofence_radius_m = (
        Decimal("19.076"),
        Decimal("72.8777"),
        200,
    )
    site.save()
    person = factories.person(site)
    store("peoples.people", person.uuid, "PHOTO", encode(images.astronaut(), "PNG"))
    browser = Client()
    browser.force_login(person)
    return {"site": site, "person": person, "browser": browser}


def test_a_selfie_punch_is_verified_and_its_outcome_shows_on_the_phone(worker, phone) -> None:
    browser = phone["browser"]
    punched = graphql(browser, PUNCH, lat="19.0761", lon="72.8778")["recordAttendanceEvent"]
    assert punched["event"]["insideGeofence"] is True
    selfie = base64.b64encode(astronaut_selfie()).decode()
    graphql(browser, UPLOAD, owner=punched["event"]["uuid"], kind="SELFIE", data=selfie)
    event = AttendanceEvent.objects.get(uuid=punched["event"]["uuid"])
    wait_for(lambda: AttendanceEvent.objects.get(pk=event.pk).face_checked_at is not None)
    mine = graphql(browser, "{ myAttendance { uuid faceOutcome faceMatched insideGeofence } }")
    assert mine["myAttendance"] == [
        {
            "uuid": str(event.uuid),
            "faceOutcome": "MATCH",
            "faceMatched": True,
            "insideGeofence": True,
        }
    ]


def test_a_punch_outside_the_geofence_is_a_noc_mismatch(
    worker, worker_mqtt_broker, phone, mail_sink
):
    subscriber = Subscriber(worker_mqtt_broker.url, "noc/alerts")
    try:
        punched = graphql(phone["browser"], PUNCH, lat="19.2000", lon="72.9000")
        assert punched["recordAttendanceEvent"]["event"]["insideGeofence"] is False
        wait_for(lambda: NocAlert.objects.exists())
        alert = NocAlert.objects.get()
        assert (alert.kind, alert.source) == (
            "ATTENDANCE_OUTSIDE_GEOFENCE",
            f"site:{phone['site'].code}",
        )
        assert alert.details["distance_m"] > 200 and alert.details["radius_m"] == 200
        assert subscriber.wait_for(1) and mail_sink.wait_for(1)
        assert "noc@facility.test" in mail_sink.messages[0][0]
    finally:
        subscriber.close()


def test_an_audio_answer_gets_its_transcript(worker, phone) -> None:
    now = timezone.now()
    jobneed = Jobneed.objects.create(
        identifier="TASK",
        description="Meter round",
        plan_at=now,
        expiry_at=now + timedelta(hours=1),
        site=phone["site"],
        client=phone["site"].client,
        people=phone["person"],
    )
    detail = JobneedDetails.objects.create(
        jobneed=jobneed, seqno=1, question="Say the reading", answer_type="SINGLELINE"
    )
    audio = base64.b64encode(SPEECH).decode()
    graphql(phone["browser"], UPLOAD, owner=str(detail.uuid), kind="AUDIO", data=audio)
    wait_for(lambda: JobneedDetails.objects.get(pk=detail.pk).transcript_status == "COMPLETED")
    seen = graphql(
        phone["browser"],
        """query($from: DateTime!, $to: DateTime!) { myJobneeds(dateFrom: $from, dateTo: $to) {
             details { transcript transcriptStatus } } }""",
        **{
            "from": (now - timedelta(hours=1)).isoformat(),
            "to": (now + timedelta(hours=1)).isoformat(),
        },
    )
    (answer,) = seen["myJobneeds"][0]["details"]
    assert answer["transcriptStatus"] == "COMPLETED" and answer["transcript"].strip()
