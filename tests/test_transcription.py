"""Transcripts: PocketSphinx on real speech, Google Speech through a local gRPC server, limits,
failures and overlapping runs."""

from __future__ import annotations

import io
import wave
from concurrent import futures
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from google.cloud.speech_v1.types import cloud_speech

from apps.activity.models import Jobneed, JobneedDetails
from apps.activity.transcription import TranscriptionUnavailable, claim, transcribe_detail
from apps.core.models import Attachment
from background_tasks import process_audio_transcript
from tests import factories
from tests.support.waiting import patience

SPEECH = (Path(__file__).parent / "data" / "numbers.wav").read_bytes()  # espeak-ng, en-us


def audio_answer(content: bytes = SPEECH) -> JobneedDetails:
    client, site = factories.client_and_site()
    now = timezone.now()
    jobneed = Jobneed.objects.create(
        identifier="TASK",
        description="Voice note",
        plan_at=now,
        expiry_at=now + timedelta(hours=1),
        site=site,
        client=client,
    )
    detail = JobneedDetails.objects.create(
        jobneed=jobneed,
        seqno=1,
        question="Say the reading",
        answer_type="AUDIO",
        transcript_status="PENDING",
    )
    if content is not None:
        item = Attachment(
            owner_type="activity.jobneeddetails",
            owner_uuid=detail.uuid,
            kind="AUDIO",
            filename="note.wav",
            size=len(content),
        )
        item.file.save("note.wav", ContentFile(content), save=True)
    return detail


@pytest.mark.django_db
def test_pocketsphinx_transcribes_real_speech() -> None:
    detail = audio_answer()
    assert transcribe_detail(detail.pk)["status"] == "COMPLETED"
    detail.refresh_from_db()
    assert "three four five" in detail.transcript
    assert detail.transcript_status == "COMPLETED" and detail.transcript_processed_at
    assert transcribe_detail(detail.pk)["already"] is True


def silence(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


def declaring(seconds: int, content: bytes, rate: int = 8000) -> bytes:
    """`content` (a 44-byte-header WAV) whose header declares `seconds` of samples."""
    size = (seconds * rate * 2).to_bytes(4, "little")
    return content[:40] + size + content[44:]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "limits", "reason"),
    [
        (b"RIFF nonsense", {}, "not a readable WAV file"),
        (silence(3), {"TRANSCRIPTION_MAX_SECONDS": 2}, "lasts 3 s; the limit is 2 s"),
        # A header that declares an hour over a second of samples: refused by the header.
        (declaring(3600, silence(1)), {}, "lasts 3600 s; the limit is 60 s"),
        (silence(1), {"TRANSCRIPTION_MAX_BYTES": 1000}, "the limit is 1000"),
        (None, {}, "has no audio attachment"),
    ],
)
def test_unusable_audio_fails_with_the_reason(settings, content, limits, reason) -> None:
    for name, value in limits.items():
        setattr(settings, name, value)
    detail = audio_answer(content)
    result = transcribe_detail(detail.pk)
    assert result["status"] == "FAILED" and reason in result["reason"]
    detail.refresh_from_db()
    assert detail.transcript_status == "FAILED" and reason in detail.transcript_error


@pytest.mark.django_db
def test_two_runs_for_one_detail_cannot_overlap() -> None:
    detail = audio_answer()
    now = timezone.now()
    assert claim(detail.pk, now) is True
    assert transcribe_detail(detail.pk)["skipped"] == "another run is on it"
    assert claim(detail.pk, now + timedelta(minutes=16)) is True  # the first run died


class FakeSpeech:
    """A Speech API Recognize on a local gRPC server; scripted answers per call."""

    def __init__(self) -> None:
        self.requests: list[cloud_speech.RecognizeRequest] = []
        self.script: list[grpc.StatusCode | None] = []

    def recognize(self, request, context):
        self.requests.append(request)
        status = self.script.pop(0) if self.script else None
        if status is not None:
            context.abort(status, "scripted failure")
        words = f"heard {len(request.audio.content)} bytes"
        return cloud_speech.RecognizeResponse(
            results=[{"alternatives": [{"transcript": words, "confidence": 0.9}]}]
        )


@pytest.fixture
def google_speech(settings):
    fake = FakeSpeech()
    handler = grpc.method_handlers_generic_handler(
        "google.cloud.speech.v1.Speech",
        {
            "Recognize": grpc.unary_unary_rpc_method_handler(
                fake.recognize,
                request_deserializer=cloud_speech.RecognizeRequest.deserialize,
                response_serializer=cloud_speech.RecognizeResponse.serialize,
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    settings.TRANSCRIPTION_ENGINE = "google"
    settings.GOOGLE_SPEECH_EMULATOR_HOST = f"127.0.0.1:{port}"
    settings.TRANSCRIPTION_TIMEOUT_SECONDS = 5
    yield fake
    server.stop(0)


@pytest.mark.django_db
def test_google_speech_through_a_local_grpc_server(google_speech) -> None:
    detail = audio_answer()
    google_speech.script = [grpc.StatusCode.UNAVAILABLE]
    with pytest.raises(TranscriptionUnavailable):
        transcribe_detail(detail.pk)
    detail.refresh_from_db()
    assert detail.transcript_status == "PENDING"  # handed back for the retry
    assert transcribe_detail(detail.pk)["status"] == "COMPLETED"
    detail.refresh_from_db()
    sent = google_speech.requests[-1]
    assert sent.config.language_code == "en-US" and sent.config.sample_rate_hertz == 22050
    assert detail.transcript == f"heard {len(sent.audio.content)} bytes"

    refused = audio_answer()
    google_speech.script = [grpc.StatusCode.INVALID_ARGUMENT]
    result = transcribe_detail(refused.pk)
    assert result["status"] == "FAILED" and "refused the audio" in result["reason"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_task_transcribes_on_the_worker(worker) -> None:
    detail = audio_answer()
    assert (
        process_audio_transcript.apply_async((detail.pk,), ignore_result=False).get(
            timeout=patience(60)
        )["status"]
        == "COMPLETED"
    )
    detail.refresh_from_db()
    assert "four" in detail.transcript
