"""Transcripts of audio answers: PENDING -> PROCESSING -> COMPLETED or FAILED.

Two engines behind one interface, chosen by TRANSCRIPTION_ENGINE: "pocketsphinx" (offline, its
English model ships in the wheel; the embedded default) and "google" (Google Cloud Speech). The
audio is a WAV (16-bit PCM) answer attachment; size and duration are limited. A detail is
claimed by a conditional update, so two runs for it cannot overlap.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.activity.models import JobneedDetails
from apps.activity.results import TranscriptionResult
from apps.core.models import Attachment

Status = JobneedDetails.TranscriptStatus
STALE_AFTER = timedelta(minutes=15)  # a claim older than this belongs to a dead run


class TranscriptionUnavailable(ConnectionError):
    """The engine failed for now (unavailable, deadline): worth a retry."""


class TranscriptionRejected(ValueError):
    """The audio cannot be transcribed (format, size, length, engine refusal): final."""


@dataclass
class Audio:
    pcm16: bytes  # mono, 16-bit little-endian
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.pcm16) / 2 / self.sample_rate


class SpeechEngine(Protocol):
    def transcribe(self, audio: Audio, language: str) -> str: ...


class PocketSphinxEngine:
    RATE = 16000

    def transcribe(self, audio: Audio, language: str) -> str:
        import numpy
        from pocketsphinx import Decoder

        if not language.lower().startswith("en"):
            raise TranscriptionRejected(
                f"the offline engine has an English model only, not {language}"
            )
        samples = numpy.frombuffer(audio.pcm16, dtype="<i2")
        if audio.sample_rate != self.RATE:
            count = int(len(samples) * self.RATE / audio.sample_rate)
            positions = numpy.linspace(0, len(samples) - 1, count)
            samples = numpy.interp(positions, numpy.arange(len(samples)), samples).astype("<i2")
        decoder = Decoder(samprate=self.RATE)
        decoder.start_utt()
        decoder.process_raw(samples.tobytes(), full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        return hypothesis.hypstr if hypothesis else ""


class GoogleSpeechEngine:
    def transcribe(self, audio: Audio, language: str) -> str:
        from google.api_core import exceptions as google_errors
        from google.cloud import speech

        config = speech.RecognitionConfig(
            encoding=speech.RecognitionConfig.AudioEncoding.LINEAR16,
            sample_rate_hertz=audio.sample_rate,
            language_code=language,
        )
        try:
            response = _google_client().recognize(
                config=config,
                audio=speech.RecognitionAudio(content=audio.pcm16),
                timeout=settings.TRANSCRIPTION_TIMEOUT_SECONDS,
                retry=None,  # Celery retries, with backoff and the circuit, not the client
            )
        except (
            google_errors.ServiceUnavailable,
            google_errors.DeadlineExceeded,
            google_errors.TooManyRequests,
            google_errors.InternalServerError,
        ) as exc:
            raise TranscriptionUnavailable(f"Google Speech: {exc.message}") from None
        except google_errors.GoogleAPICallError as exc:
            raise TranscriptionRejected(f"Google Speech refused the audio: {exc.message}") from None
        return " ".join(r.alternatives[0].transcript for r in response.results if r.alternatives)


def _google_client():
    from google.cloud import speech

    emulator = settings.GOOGLE_SPEECH_EMULATOR_HOST
    if emulator:  # a local Speech server without TLS, as for Google's other emulators
        import grpc
        from google.auth.credentials import AnonymousCredentials
        from google.cloud.speech_v1.services.speech.transports import SpeechGrpcTransport

        transport = SpeechGrpcTransport(
            host=emulator,
            credentials=AnonymousCredentials(),
            channel=lambda host, **kwargs: grpc.insecure_channel(host),
        )
        return speech.SpeechClient(transport=transport)
    return speech.SpeechClient()


ENGINES: dict[str, type] = {"pocketsphinx": PocketSphinxEngine, "google": GoogleSpeechEngine}


def read_wav(data: bytes, max_seconds: float | None = None) -> Audio:
    """The WAV's samples, mono; its length is read from its header and refused over
    `max_seconds` before any sample is read."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            if wav.getsampwidth() != 2:
                raise TranscriptionRejected("the audio must be 16-bit PCM WAV")
            channels, rate = wav.getnchannels(), wav.getframerate()
            seconds = wav.getnframes() / rate
            if max_seconds is not None and seconds > max_seconds:
                raise TranscriptionRejected(
                    f"the audio lasts {seconds:.0f} s; the limit is {max_seconds} s"
                )
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise TranscriptionRejected(f"the audio is not a readable WAV file: {exc}") from None
    if channels > 1:
        import numpy

        samples = numpy.frombuffer(frames, dtype="<i2").reshape(-1, channels)
        frames = samples.mean(axis=1).astype("<i2").tobytes()
    return Audio(frames, rate)


def claim(detail_id: int, now: datetime) -> bool:
    """Take the detail for this run; False when another run is on it or it is done."""
    return bool(
        JobneedDetails.objects.filter(pk=detail_id)
        .filter(
            Q(transcript_status__in=["", Status.PENDING, Status.FAILED])
            | Q(transcript_status=Status.PROCESSING, transcript_started_at__lt=now - STALE_AFTER)
        )
        .update(transcript_status=Status.PROCESSING, transcript_started_at=now, transcript_error="")
    )


def transcribe_detail(detail_id: int) -> TranscriptionResult:
    now = timezone.now()
    detail = JobneedDetails.objects.get(pk=detail_id)
    if detail.transcript_status == Status.COMPLETED:
        return {"detail": detail_id, "status": Status.COMPLETED, "already": True}
    if not claim(detail_id, now):
        return {"detail": detail_id, "status": Status.PROCESSING, "skipped": "another run is on it"}
    try:
        text = _transcribe(detail)
    except TranscriptionRejected as exc:
        _finish(detail_id, Status.FAILED, error=str(exc))
        return {"detail": detail_id, "status": Status.FAILED, "reason": str(exc)}
    except BaseException:
        # Transient or unexpected: hand the detail back so the retry can claim it.
        JobneedDetails.objects.filter(pk=detail_id, transcript_status=Status.PROCESSING).update(
            transcript_status=Status.PENDING
        )
        raise
    _finish(detail_id, Status.COMPLETED, text=text)
    return {"detail": detail_id, "status": Status.COMPLETED, "characters": len(text)}


def _transcribe(detail: JobneedDetails) -> str:
    audio_file = (
        Attachment.objects.filter(
            owner_type="activity.jobneeddetails", owner_uuid=detail.uuid, kind=Attachment.Kind.AUDIO
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    if audio_file is None:
        raise TranscriptionRejected("the answer has no audio attachment")
    if audio_file.size > settings.TRANSCRIPTION_MAX_BYTES:
        raise TranscriptionRejected(
            f"the audio is {audio_file.size} bytes; the limit is {settings.TRANSCRIPTION_MAX_BYTES}"
        )
    try:
        with audio_file.open() as handle:
            data = handle.read(settings.TRANSCRIPTION_MAX_BYTES + 1)
    except FileNotFoundError:
        raise TranscriptionRejected("the audio file is missing from storage") from None
    except OSError as exc:
        raise TranscriptionUnavailable(f"cannot read the audio: {exc}") from exc
    if len(data) > settings.TRANSCRIPTION_MAX_BYTES:
        raise TranscriptionRejected(f"the audio is over {settings.TRANSCRIPTION_MAX_BYTES} bytes")
    audio = read_wav(data, max_seconds=settings.TRANSCRIPTION_MAX_SECONDS)
    engine = ENGINES[settings.TRANSCRIPTION_ENGINE]()
    return engine.transcribe(audio, detail.transcript_language or "en-US").strip()


def _finish(detail_id: int, status: str, *, text: str = "", error: str = "") -> None:
    JobneedDetails.objects.filter(pk=detail_id).update(
        transcript_status=status,
        transcript=text,
        transcript_error=error[:300],
        transcript_processed_at=timezone.now(),
    )
