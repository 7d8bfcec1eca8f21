"""Face verification of attendance selfies with face_recognition (dlib), and the geofence check.

face_recognition and numpy load about 150 MB and take a second to import, so they are imported
inside the functions that need them: a process that never verifies a face never loads them.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from django.conf import settings
from django.utils import timezone

from apps.attendance.geofence import inside_geofence
from apps.attendance.models import AttendanceEvent, FaceOutcome, FaceReference
from apps.core.models import Attachment
from apps.core.uploads import UploadRefused, image_size
from apps.peoples.models import People

# dlib's HOG detector scores real faces above 1 and its false detections (a patch on a suit, a
# badge) near 0; detections under this score are ignored.
MIN_DETECTION_SCORE = 0.5
# Photos are scaled down to this many pixels on their longer side before detection (which
# upsamples once): a face fills a selfie, and detection time grows with the pixels.
MAX_DETECTION_SIDE = 1600


class StorageUnavailable(ConnectionError):
    """The photo could not be read from storage just now: worth a retry."""


@dataclass
class Verification:
    outcome: str
    distance: float | None = None


class FaceCheckResult(TypedDict):
    event: str
    outcome: str
    distance: float | None  # None when there was no face to compare
    threshold: float
    inside_geofence: bool | None  # None when the position or the site's geofence is unknown


def _read(attachment: Attachment) -> bytes:
    try:
        with attachment.open() as handle:
            return handle.read()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StorageUnavailable(f"cannot read attachment {attachment.uuid}: {exc}") from exc


@functools.cache
def _detector():
    import dlib

    return dlib.get_frontal_face_detector()


def load_image(image_bytes: bytes):
    """The photo as an RGB array at most MAX_DETECTION_SIDE pixels on a side; None when the
    bytes are not an image or are one of more pixels than an upload may have (checked from
    the header, before anything is decoded: a small PNG can decode to gigabytes)."""
    import numpy
    from PIL import Image, UnidentifiedImageError

    try:
        image_size(image_bytes)
        with Image.open(io.BytesIO(image_bytes)) as image:
            image.draft("RGB", (MAX_DETECTION_SIDE, MAX_DETECTION_SIDE))  # JPEG: decode small
            image.thumbnail((MAX_DETECTION_SIDE, MAX_DETECTION_SIDE))
            return numpy.asarray(image.convert("RGB"))
    except (UploadRefused, UnidentifiedImageError, OSError, ValueError):
        return None


def _faces(image_bytes: bytes) -> tuple[object, list[tuple[int, int, int, int]]] | None:
    """The decoded image and the boxes (top, right, bottom, left) of its faces, largest first;
    None when the bytes are not an image (or one too large to decode)."""
    image = load_image(image_bytes)
    if image is None:
        return None
    detections, scores, _ = _detector().run(image, 1, 0)
    boxes = [
        (d.top(), d.right(), d.bottom(), d.left())
        for d, score in zip(detections, scores, strict=True)
        if score >= MIN_DETECTION_SCORE
    ]
    boxes.sort(key=lambda b: (b[2] - b[0]) * (b[1] - b[3]), reverse=True)
    return image, boxes


def _encoding(image_bytes: bytes) -> tuple[str, list[float] | None]:
    import face_recognition

    found = _faces(image_bytes)
    if found is None:
        return FaceOutcome.UNREADABLE, None
    image, boxes = found
    if not boxes:
        return FaceOutcome.NO_FACE, None
    if len(boxes) > 1:
        return FaceOutcome.MULTIPLE_FACES, None
    (encoding,) = face_recognition.face_encodings(image, known_face_locations=boxes[:1])
    return "", [float(x) for x in encoding]


def reference_encodings(person_id: int, db: str) -> list[list[float]]:
    """The person's reference encodings, computing (once) those of new reference photos."""
    photos = Attachment.objects.using(db).filter(
        owner_type="peoples.people",
        owner_uuid__in=People.objects.using(db).filter(pk=person_id).values("uuid"),
        kind=Attachment.Kind.PHOTO,
    )
    known = {
        ref.attachment_id: ref
        for ref in FaceReference.objects.using(db).filter(person_id=person_id)
    }
    for photo in photos:
        if photo.pk not in known:
            _, encoding = _encoding(_read(photo))
            known[photo.pk] = FaceReference.objects.using(db).create(
                attachment=photo, person_id=person_id, encoding=encoding
            )
    return [ref.encoding for ref in known.values() if ref.encoding]


def verify(selfie: bytes, references: list[list[float]], threshold: float) -> Verification:
    import face_recognition
    import numpy

    outcome, encoding = _encoding(selfie)
    if encoding is None:
        return Verification(outcome)
    distance = float(
        min(face_recognition.face_distance(numpy.array(references), numpy.array(encoding)))
    )
    return Verification(
        FaceOutcome.MATCH if distance <= threshold else FaceOutcome.NO_MATCH, distance
    )


def verify_event(
    event_uuid: str, person_id: int, db: str = "default", now: datetime | None = None
) -> FaceCheckResult:
    """Verify the newest selfie of the event against the person's references and record it."""
    event = AttendanceEvent.objects.using(db).select_related("site").get(uuid=event_uuid)
    if event.person_id != person_id:
        raise ValueError(f"attendance event {event_uuid} is not person {person_id}'s")
    threshold = settings.FACE_MATCH_THRESHOLD
    selfie = (
        Attachment.objects.using(db)
        .filter(
            owner_type="attendance.attendanceevent",
            owner_uuid=event.uuid,
            kind=Attachment.Kind.SELFIE,
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    if selfie is None:
        result = Verification(FaceOutcome.NO_SELFIE)
    else:
        references = reference_encodings(person_id, db)
        result = (
            verify(_read(selfie), references, threshold)
            if references
            else Verification(FaceOutcome.NO_REFERENCE)
        )
    inside = inside_geofence(event.site, event.latitude, event.longitude)
    fields = {
        "face_outcome": result.outcome,
        "face_matched": result.outcome == FaceOutcome.MATCH
        if result.distance is not None
        else None,
        "face_distance": result.distance,
        "face_threshold": threshold,
        "face_checked_at": now or timezone.now(),
        "inside_geofence": inside,
    }
    AttendanceEvent.objects.using(db).filter(pk=event.pk).update(**fields)
    return {
        "event": str(event.uuid),
        "outcome": result.outcome,
        "distance": result.distance,
        "threshold": threshold,
        "inside_geofence": inside,
    }
