"""The mobile pipeline: the GraphQL schema, device authentication, ingestion over HTTP and the
MQTT bridge, execution once per client id as the verified person, and downloads."""

from __future__ import annotations

import base64
import gzip
import io
import json
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from apps.activity.models import Jobneed, JobneedDetails
from apps.attendance.models import AttendanceEvent
from apps.core.models import Attachment
from apps.mobile.models import MobileDevice, MobileMessage
from apps.y_helpdesk.models import Ticket
from tests import factories
from tests.conftest import ManagedProcess, process_env
from tests.support.mqtt import Subscriber
from tests.support.waiting import patience

JOBNEEDS = """query($from: DateTime!, $to: DateTime!) {
  myJobneeds(dateFrom: $from, dateTo: $to) { uuid description details { seqno question } }
  mySite { code timeZone }
}"""
SUBMIT = """mutation($uuid: UUID!, $answers: [AnswerInput!]!) {
  submitJobneedAnswers(jobneedUuid: $uuid, answers: $answers, complete: true) {
    alerts jobneed { status }
  }
}"""
CREATE_TICKET = """mutation($text: String!) {
  createTicket(description: $text, priority: "HIGH") { ticket { id description } }
}"""


@pytest.fixture
def world(db):
    return mobile_world()


def mobile_world() -> dict:
    """A site, a person with a device (phone-1, secret s3cret-token), their jobneed and someone
    else's."""
    client, site = factories.client_and_site("Asia/Kolkata")
    person = factories.person(site, email="tech@facility.test")
    other = factories.person(site)
    now = timezone.now()

    def jobneed(assignee):
        jn = Jobneed.objects.create(
            identifier="TASK",
            description="Pump check",
            plan_at=now,
            expiry_at=now + timedelta(hours=1),
            site=site,
            client=client,
            people=assignee,
        )
        JobneedDetails.objects.create(
            jobneed=jn,
            seqno=1,
            question="Pressure",
            answer_type="NUMERIC",
            min_value=1,
            max_value=5,
        )
        return jn

    device = MobileDevice(device_id="phone-1", person=person)
    device.set_secret("s3cret-token")
    device.save()
    return {
        "site": site,
        "person": person,
        "mine": jobneed(person),
        "theirs": jobneed(other),
        "now": now,
        "device": device,
    }


def graphql(browser: Client, query: str, **variables) -> dict:
    response = browser.post(
        "/graphql", {"query": query, "variables": variables}, content_type="application/json"
    )
    return response.json()


def test_graphql_serves_a_person_their_own_work_only(world) -> None:
    anonymous = Client().post(
        "/graphql", {"query": "{ mySite { code } }"}, content_type="application/json"
    )
    assert anonymous.status_code == 302  # to the login page
    browser = Client()
    browser.force_login(world["person"])
    now = world["now"]
    data = graphql(
        browser,
        JOBNEEDS,
        **{
            "from": (now - timedelta(hours=1)).isoformat(),
            "to": (now + timedelta(hours=1)).isoformat(),
        },
    )["data"]
    assert [j["uuid"] for j in data["myJobneeds"]] == [str(world["mine"].uuid)]
    assert data["mySite"] == {"code": world["site"].code, "timeZone": "Asia/Kolkata"}

    answer = [{"seqno": 1, "answer": "7"}]
    done = graphql(browser, SUBMIT, uuid=str(world["mine"].uuid), answers=answer)
    assert done["data"]["submitJobneedAnswers"] == {"alerts": 1, "jobneed": {"status": "COMPLETED"}}
    refused = graphql(browser, SUBMIT, uuid=str(world["theirs"].uuid), answers=answer)
    assert refused["errors"][0]["message"] == "no such jobneed assigned to you"
    assert world["theirs"].details.get().answer == ""


def ingest(headers: dict, body: dict) -> tuple[int, dict]:
    response = Client().post(
        "/mobile/ingest",
        json.dumps(body),
        content_type="application/json",
        **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()},
    )
    return response.status_code, response.json()


GOOD = {"X-Device-Id": "phone-1", "X-Device-Secret": "s3cret-token"}


def test_ingestion_rejects_bad_credentials_and_bad_bodies(world, caplog) -> None:
    for headers in (
        {},
        {"X-Device-Id": "phone-1", "X-Device-Secret": "wrong"},
        {"X-Device-Id": "ghost", "X-Device-Secret": "s3cret-token"},
    ):
        assert ingest(headers, {"kind": "mutation"}) == (401, {"error": "unauthorized"})
    assert "mobile_device_rejected device='phone-1' reason=wrong secret" in caplog.text
    assert "s3cret" not in caplog.text and "wrong" not in caplog.text.replace("wrong secret", "")
    status, body = ingest(GOOD, {"kind": "mutation", "client_id": "bad id!", "query": "x"})
    assert (status, body["error"]) == (400, "client_id must be 1 to 64 letters, digits or . _ : -")
    assert ingest(GOOD, {"kind": "delete", "client_id": "c1"})[0] == 400


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_mutation_runs_once_as_the_verified_person(worker, world, mail_sink) -> None:
    body = {
        "kind": "mutation",
        "client_id": "c-1",
        "query": CREATE_TICKET,
        "variables": {"text": "Leak near pump", "createdBy": "someone-else"},
    }
    status, first = ingest(GOOD, body)
    assert status == 202 and first["status"] == "QUEUED"
    assert ingest(GOOD, body)[1]["task_id"] == first["task_id"]  # a resend: same request
    deadline = time.monotonic() + patience(30)
    while time.monotonic() < deadline:
        status, answer = ingest(GOOD, {"kind": "status", "client_id": "c-1"})
        if answer["status"] != "QUEUED":
            break
        time.sleep(0.2)
    assert answer["status"] == "DONE" and answer["result"]["ok"] is True
    ticket = Ticket.objects.get()
    assert ticket.created_by == world["person"] and ticket.description == "Leak near pump"
    assert answer["result"]["data"]["createTicket"]["ticket"]["id"] == str(ticket.pk)

    invalid = {"kind": "mutation", "client_id": "c-2", "query": "mutation { nothing }"}
    status, refused = ingest(GOOD, invalid)  # refused before it is recorded or queued
    assert status == 400 and "Cannot query field 'nothing'" in refused["error"]
    assert not MobileMessage.objects.filter(client_id="c-2").exists()

    failing = {
        "kind": "mutation",
        "client_id": "c-3",
        "query": 'mutation { updateTicket(id: "999999", status: "OPEN") { ticket { id } } }',
    }
    ingest(GOOD, failing)
    deadline = time.monotonic() + patience(30)
    while (
        MobileMessage.objects.get(client_id="c-3").status == "QUEUED"
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    message = MobileMessage.objects.get(client_id="c-3")
    assert message.status == "FAILED" and "no such ticket" in message.result["errors"][0]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_download_is_stored_compressed_behind_an_expiring_link(worker, world) -> None:
    now = world["now"]
    ingest(
        GOOD,
        {
            "kind": "download",
            "client_id": "d-1",
            "query": JOBNEEDS,
            "variables": {
                "from": (now - timedelta(hours=1)).isoformat(),
                "to": (now + timedelta(hours=1)).isoformat(),
            },
        },
    )
    deadline = time.monotonic() + patience(30)
    while (
        MobileMessage.objects.get(client_id="d-1").status == "QUEUED"
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    result = MobileMessage.objects.get(client_id="d-1").result
    path = "/" + result["download"].split("://", 1)[1].split("/", 1)[1]
    response = Client().get(path)
    data = json.loads(gzip.decompress(b"".join(response.streaming_content)))
    assert data["myJobneeds"][0]["uuid"] == str(world["mine"].uuid)
    assert Client().get(path[:-4] + "abcd").status_code == 404
    # The worker's task-success line prints the result: with the link's token redacted.
    worker.wait_for_log("succeeded in")
    token = path.rsplit("/", 1)[1]
    assert token not in worker.log() and "/mobile/downloads/[token]" in worker.log()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_mqtt_bridge_end_to_end(worker, worker_mqtt_broker, world, tmp_path) -> None:
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
            "client_id": "m-1",
            "query": CREATE_TICKET,
            "variables": {"text": "Over MQTT"},
        }
        topic = "intelliwiz/mobile/phone-1/request"
        sender._client.publish(topic, json.dumps(request | {"secret": "nope"}), qos=1)
        sender._client.publish(topic, json.dumps(request), qos=1)
        sender._client.publish(topic, json.dumps(request), qos=1)  # a duplicate
        answers = [json.loads(p) for _, p in replies.wait_for(3)]
        assert answers[0] == {"error": "unauthorized"}
        assert answers[1]["task_id"] == answers[2]["task_id"]
        done = MobileMessage.objects.filter(client_id="m-1", status=MobileMessage.Status.DONE)
        deadline = time.monotonic() + patience(30)
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        sender._client.publish(
            topic,
            json.dumps({"secret": "s3cret-token", "kind": "status", "client_id": "m-1"}),
            qos=1,
        )
        status = json.loads(replies.wait_for(4)[3][1])
        assert status["status"] == "DONE"
        assert Ticket.objects.get().description == "Over MQTT"
        assert Ticket.objects.count() == 1
        assert "mobile_device_rejected device='phone-1' reason=wrong secret" in bridge.log()
    finally:
        replies.close()
        sender.close()
        bridge.stop()


def tiny_image(image_format: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, format=image_format)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("kind", "content", "refusal"),
    [
        ("PHOTO", b"<html><script>alert(1)</script></html>", "must not carry markup"),
        ("SELFIE", b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>', "markup"),
        ("SIGNATURE", b"\xff\xd8 not really a jpeg", "must be a JPEG, PNG or WebP image"),
        ("AUDIO", b"<html>", "markup"),
        ("AUDIO", b"not sound at all", "an audio upload must be audio"),
        ("ATTACHMENT", b"<!doctype html><p>hi", "markup"),
        ("ATTACHMENT", b"<p>hi</p>", "image, audio, a PDF or plain text"),
        ("ATTACHMENT", b"<?xml version='1.0'?><svg/>", "markup"),
    ],
)
def test_uploads_are_refused_when_their_content_is_not_their_kind(
    world, kind, content, refusal
) -> None:
    browser = Client()
    browser.force_login(world["person"])
    upload = """mutation($owner: UUID!, $kind: String!, $data: String!) {
      uploadAttachment(ownerUuid: $owner, kind: $kind, filename: "f.jpg", contentBase64: $data) {
        attachment { uuid } } }"""
    data = base64.b64encode(content).decode()
    answer = graphql(browser, upload, owner=str(world["mine"].uuid), kind=kind, data=data)
    assert refusal in answer["errors"][0]["message"]
    assert not Attachment.objects.exists()


def wav(seconds: float, rate: int = 8000) -> bytes:
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(rate)
        sound.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


def mp3(frames: int = 20) -> bytes:
    """An ID3 tag and MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz) of silence."""
    tag = b"ID3\x03\x00\x00\x00\x00\x00\x00"
    return tag + (b"\xff\xfb\x90\x64" + bytes(413)) * frames


def png_of(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


UPLOAD = """mutation($owner: UUID!, $kind: String!, $name: String!, $data: String!) {
  uploadAttachment(ownerUuid: $owner, kind: $kind, filename: $name, contentBase64: $data) {
    attachment { filename } } }"""


def upload(world, kind: str, content: bytes, name: str = "x.exe") -> dict:
    browser = Client()
    browser.force_login(world["person"])
    data = base64.b64encode(content).decode()
    return graphql(browser, UPLOAD, owner=str(world["mine"].uuid), kind=kind, name=name, data=data)


@pytest.mark.parametrize(
    ("kind", "content", "content_type"),
    [
        ("PHOTO", tiny_image("PNG"), "image/png"),
        ("SIGNATURE", tiny_image("WEBP"), "image/webp"),
        ("AUDIO", wav(1), "audio/wav"),
        ("AUDIO", mp3(), "audio/mpeg"),
        ("ATTACHMENT", b"%PDF-1.7 ...", "application/pdf"),
        ("ATTACHMENT", b"meter reading: 4 bar", "text/plain"),
    ],
)
def test_uploads_take_their_type_from_their_content(world, kind, content, content_type) -> None:
    upload(world, kind, content)
    assert Attachment.objects.get().content_type == content_type


@pytest.mark.parametrize(
    ("kind", "content", "refusal"),
    [
        ("PHOTO", tiny_image("PNG") + b"<html><script>alert(1)</script>", "must not carry markup"),
        ("PHOTO", tiny_image("PNG") + b"trailing bytes", "must be a JPEG, PNG or WebP image"),
        ("SELFIE", tiny_image("JPEG") + b"<p onclick=x>hi</p>", "must be a JPEG, PNG or WebP"),
        ("AUDIO", b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"plain words " * 40, "must be audio"),
        ("AUDIO", b"RIFF\x24\x00\x00\x00WAVEfmt ", "must be audio"),
        ("ATTACHMENT", b"notes <svg onload=alert(1)>", "must not carry markup"),
    ],
)
def test_uploads_whose_content_is_more_or_other_than_their_kind_are_refused(
    world, kind, content, refusal
) -> None:
    answer = upload(world, kind, content)
    assert refusal in answer["errors"][0]["message"]
    assert not Attachment.objects.exists()


def test_a_decompression_bomb_and_overlong_audio_are_refused_from_their_headers(world) -> None:
    """A 12000 x 12000 PNG of a few hundred KB (the report's selfie) and eleven minutes of
    audio: refused at once, nothing decoded, nothing kept."""
    bomb = png_of(12000, 12000)
    assert len(bomb) < 1_000_000
    started = time.monotonic()
    answer = upload(world, "SELFIE", bomb)
    assert "is 12000x12000 pixels; at most 24000000 pixels" in answer["errors"][0]["message"]
    answer = upload(world, "AUDIO", wav(11 * 60, rate=800))
    assert answer["errors"][0]["message"] == "the audio lasts 660 s; at most 600 s"
    assert time.monotonic() - started < 2
    assert not Attachment.objects.exists()


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("..", "upload"),
        ("../..", "upload"),
        ("..\\..\\selfie.jpg", "selfie.jpg"),
        ("x\x00y.jpg", "xy.jpg"),
        ("line\nbreak.png", "linebreak.png"),
        (".hidden.png", "hidden.png"),
        ("e\u0301te\u0301.png", "\u00e9t\u00e9.png"),
    ],
)
def test_upload_names_are_normalised(world, given, kept) -> None:
    upload(world, "PHOTO", tiny_image("PNG"), name=given)
    assert Attachment.objects.get().filename == kept


def test_attendance_and_attachments_through_the_schema(world) -> None:
    browser = Client()
    browser.force_login(world["person"])
    punch = graphql(
        browser,
        """mutation { recordAttendanceEvent(kind: "PUNCH_IN", at: "2026-06-01T09:00:00+05:30",
        latitude: "19.07", longitude: "72.87") { event { uuid } } }""",
    )
    event = AttendanceEvent.objects.get()
    assert punch["data"]["recordAttendanceEvent"]["event"]["uuid"] == str(event.uuid)
    assert (event.person, event.site) == (world["person"], world["site"])

    upload = """mutation($owner: UUID!, $name: String!, $data: String!) {
      uploadAttachment(ownerUuid: $owner, kind: "SELFIE", filename: $name, contentBase64: $data) {
        attachment { filename size checksum } } }"""
    jpeg = tiny_image("JPEG")
    data = base64.b64encode(jpeg).decode()
    done = graphql(browser, upload, owner=str(event.uuid), name="..\\\\..\\\\selfie.jpg", data=data)
    assert done["data"]["uploadAttachment"]["attachment"]["size"] == len(jpeg)
    stored = Attachment.objects.get()
    assert stored.filename == "selfie.jpg" and stored.owner_type == "attendance.attendanceevent"
    assert stored.content_type == "image/jpeg"
    assert stored.file.name.startswith(f"attachments/attendance.attendanceevent/{event.uuid}/")
    with stored.file.open("rb") as handle:
        assert handle.read() == jpeg
    theirs = graphql(browser, upload, owner=str(world["theirs"].uuid), name="x.jpg", data=data)
    assert theirs["errors"][0]["message"] == "no such jobneed, answer or attendance event of yours"


ALIAS_BOMB = "{ " + " ".join(f"t{n}: myTickets {{ id description }}" for n in range(60)) + " }"


@pytest.mark.parametrize(
    ("query", "refusal"),
    [
        (ALIAS_BOMB, "aliases (at most 20)"),
        ("{ mySite { code } }" + " " * 9000, "over 8192 bytes"),
        ("{ __schema { types { name } } }", "introspection"),
    ],
)
def test_graphql_refuses_costly_documents_before_running_them(
    world, settings, query, refusal
) -> None:
    settings.GRAPHQL_INTROSPECTION = False
    browser = Client()
    browser.force_login(world["person"])
    started = time.monotonic()
    errors = graphql(browser, query)["errors"]
    assert refusal in errors[0]["message"].lower() or refusal in errors[0]["message"]
    assert time.monotonic() - started < 2


def test_a_download_request_runs_queries_only_and_a_mutation_request_mutations_only(
    world,
) -> None:
    create = {"kind": "download", "client_id": "d1", "query": CREATE_TICKET}
    status, body = ingest(GOOD, create | {"variables": {"text": "via a download"}})
    assert (status, body["error"]) == (400, "only query operations may be sent here")
    status, body = ingest(GOOD, {"kind": "mutation", "client_id": "m1", "query": JOBNEEDS})
    assert (status, body["error"]) == (400, "only mutation operations may be sent here")
    status, body = ingest(GOOD, {"kind": "download", "client_id": "d2", "query": ALIAS_BOMB})
    assert status == 400 and "aliases" in body["error"]
    assert not MobileMessage.objects.exists()
    assert not Ticket.objects.filter(description="via a download").exists()


def test_a_recorded_download_that_mutates_is_refused_where_it_runs(world) -> None:
    from apps.mobile.execution import run_download

    message = MobileMessage.objects.create(  # as if recorded before the limits existed
        device=world["device"],
        person=world["person"],
        client_id="old-1",
        kind=MobileMessage.Kind.DOWNLOAD,
        query=CREATE_TICKET,
        variables={"text": "via an old download"},
        task_id="t-old-1",
    )
    outcome = run_download(message.pk, progress=lambda percent: None)
    assert outcome == {"ok": False, "errors": ["only query operations may be sent here"]}
    assert not Ticket.objects.filter(description="via an old download").exists()


def test_unknown_devices_and_wrong_secrets_take_the_same_short_time(world) -> None:
    from apps.mobile.ingest import DeviceRejected, authenticate_device

    def median_ms(device_id: str) -> float:
        timings = []
        for n in range(15):
            started = time.perf_counter()
            with pytest.raises(DeviceRejected):
                authenticate_device(device_id, f"wrong-{n}", address=f"10.0.0.{n}")
            timings.append((time.perf_counter() - started) * 1000)
        return sorted(timings)[len(timings) // 2]

    cache.clear()
    unknown, known = median_ms("ghost-device"), median_ms("phone-1")
    cache.clear()
    assert unknown < 50 and known < 50, (unknown, known)
    assert max(unknown, known) / min(unknown, known) < 3, (unknown, known)


def test_failed_attempts_are_throttled_but_never_lock_the_right_secret_out(world) -> None:
    """Strangers' guesses are throttled per device (10) and per address (50); the device with
    its right secret still gets in, from anywhere, the stranger's address included."""
    cache.clear()
    bad = {"X-Device-Id": "phone-1", "X-Device-Secret": "guess"}
    for _ in range(10):
        assert ingest(bad, {"kind": "mutation"})[0] == 401
    status, body = ingest(bad, {"kind": "status", "client_id": "c1"})
    assert (status, body["error"]) == (429, "too many failed attempts; try later")
    status, body = ingest(GOOD, {"kind": "status", "client_id": "c1"})  # the right secret
    assert (status, body["error"]) == (400, "no request with client_id 'c1'")  # let in
    cache.clear()
    for n in range(50):  # one address trying many device ids
        ingest({"X-Device-Id": f"ghost-{n}", "X-Device-Secret": "x"}, {})
    assert ingest({"X-Device-Id": "ghost-x", "X-Device-Secret": "x"}, {})[0] == 429
    assert ingest(GOOD, {"kind": "status", "client_id": "c1"})[0] == 400  # let in
    cache.clear()


def test_a_secret_issued_before_digests_still_works_and_is_upgraded(world) -> None:
    from django.contrib.auth.hashers import make_password

    from apps.mobile.ingest import authenticate_device

    MobileDevice.objects.filter(pk=world["device"].pk).update(
        secret_hash=make_password("s3cret-token")
    )
    assert authenticate_device("phone-1", "s3cret-token").pk == world["device"].pk
    assert MobileDevice.objects.get(pk=world["device"].pk).secret_hash.startswith("sha256$")
    assert authenticate_device("phone-1", "s3cret-token").pk == world["device"].pk


def test_the_bridge_trusts_the_topic_only_where_the_broker_signs_devices_in(
    world, settings
) -> None:
    from apps.mobile.bridge import handle

    request = json.dumps({"kind": "status", "client_id": "none-yet"}).encode()
    settings.MQTT_DEVICES_AUTHENTICATED_BY_BROKER = False
    assert handle("intelliwiz/mobile/phone-1/request", request) == (
        "intelliwiz/mobile/phone-1/response",
        {"error": "unauthorized"},
    )
    settings.MQTT_DEVICES_AUTHENTICATED_BY_BROKER = True
    _, answer = handle("intelliwiz/mobile/phone-1/request", request)
    assert answer == {"error": "no request with client_id 'none-yet'"}  # signed in, then asked
    MobileDevice.objects.filter(device_id="phone-1").update(enabled=False)
    assert handle("intelliwiz/mobile/phone-1/request", request)[1] == {"error": "unauthorized"}
