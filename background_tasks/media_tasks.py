"""Media tasks: face recognition for attendance, media offload to object storage, transcription."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.activity.results import TranscriptionResult
from apps.activity.transcription import transcribe_detail
from apps.attendance.faces import FaceCheckResult, verify_event
from apps.core.offload import OffloadBusy, OffloadResult, offload_media
from apps.core.tasks.legacy import UpstreamForm, accepts_upstream, refuse
from apps.core.tasks.utils import task_retry_policy


@shared_task(name="move_media_to_cloud_storage", bind=True, **task_retry_policy("maintenance"))
def move_media_to_cloud_storage(self) -> OffloadResult:
    """Move local media older than MEDIA_OFFLOAD_AFTER_DAYS to the cloud bucket."""

    def progress(done: int, total: int) -> None:
        if self.request.id and not self.request.is_eager:
            self.update_state(state="PROGRESS", meta={"done": done, "total": total})

    try:
        return offload_media(progress=progress)
    except OffloadBusy as exc:
        return {"skipped": str(exc)}


@shared_task(name="perform_facerecognition_bgt", bind=True, **task_retry_policy("default"))
@accepts_upstream(
    UpstreamForm(
        "pel_uuid, peopleid, db='default'",
        refuse(
            "upstream routed tenants to databases of their own; here every tenant shares the "
            "configured databases, and this alias is not one of them",
            use="perform_facerecognition_bgt(pel_uuid, peopleid)",
        ),
        matches=lambda arguments: arguments["db"] not in settings.DATABASES,
        label="db:tenant-alias",
    )
)
def perform_facerecognition_bgt(
    self, pel_uuid: str, peopleid: int, db: str = "default"
) -> FaceCheckResult:
    """Verify an attendance event's newest selfie against the person's reference photos.

    No face, several faces, an unreadable image or no reference photo is a recorded outcome,
    not a retry; a storage hiccup (StorageUnavailable, a ConnectionError) retries.
    """
    return verify_event(pel_uuid, peopleid, db=db)


@shared_task(name="process_audio_transcript", **task_retry_policy("external_api"))
def process_audio_transcript(jobneed_detail_id: int) -> TranscriptionResult:
    """Transcribe an audio answer; transient engine errors retry, permanent ones fail it."""
    return transcribe_detail(jobneed_detail_id)
