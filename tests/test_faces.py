"""Face verification on real face images shipped with scikit-image, and the geofence."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal

import numpy
import pytest
from django.core.files.base import ContentFile
from PIL import Image
from skimage import data as images

from apps.attendance.faces import verify_event
from apps.attendance.models import AttendanceEvent, FaceReference
from apps.core.models import Attachment
from background_tasks import perform_facerecognition_bgt
from tests import factories
from tests.conftest import BASE_DIR, process_env
from tests.support.waiting import patience


def encode(array: numpy.ndarray, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def astronaut_selfie() -> bytes:
    """The astronaut, mirrored and scaled down: the same face in a different photo."""
    face = Image.fromarray(images.astronaut()).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return encode(numpy.asarray(face.resize((358, 358))))


def store(owner_type: str, owner_uuid, kind: str, content: bytes) -> Attachment:
    item = Attachment(
        owner_type=owner_type,
        owner_uuid=owner_uuid,
        kind=kind,
        filename="photo.jpg",
        size=len(content),
    )
    item.file.save("photo.jpg", ContentFile(content), save=True)
    return item


@pytest.fixture
def world(db):
    _, site = factories.client_and_site()
    site.latitude, site.longitude, site.geofence_radius_m = (
        Decimal("19.0760"),
        Decimal("72.8777"),
        200,
    )
    site.save()
    person = factories.person(site)
    store("peoples.people", person.uuid, "PHOTO", encode(images.astronaut(), "PNG"))
    return {"site": site, "person": person}


def punch(
    world, selfie: bytes | None, *, lat: str = "19.0765", lon: str = "72.8780"
) -> AttendanceEvent:
    event = AttendanceEvent.objects.create(
        person=world["person"],
        site=world["site"],
        kind="PUNCH_IN",
        at=datetime(2026, 6, 1, 3, 30, tzinfo=UTC),
        latitude=Decimal(lat),
        longitude=Decimal(lon),
    )
    if selfie is not None:
        store("attendance.attendanceevent", event.uuid, "SELFIE", selfie)
    return event


def test_the_same_face_matches_and_the_reference_is_encoded_once(world) -> None:
    first = verify_event(str(punch(world, astronaut_selfie()).uuid), world["person"].pk)
    assert first["outcome"] == "MATCH" and first["distance"] < 0.4
    assert first["threshold"] == 0.6 and first["inside_geofence"] is True
    second_event = punch(world, astronaut_selfie(), lat="19.1000")  # 2.7 km away
    second = verify_event(str(second_event.uuid), world["person"].pk)
    assert second["outcome"] == "MATCH" and second["inside_geofence"] is False
    assert FaceReference.objects.count() == 1  # computed for the first punch, reused after
    second_event.refresh_from_db()
    assert (second_event.face_matched, second_event.face_outcome) == (True, "MATCH")
    assert second_event.face_distance == pytest.approx(second["distance"])


@pytest.mark.parametrize(
    ("make_selfie", "outcome"),
    [
        (lambda: encode(images.chelsea()), "NO_FACE"),
        (lambda: encode(images.coffee()), "NO_FACE"),
        (lambda: b"not an image at all", "UNREADABLE"),
        (lambda: encode(numpy.hstack([images.astronaut(), images.astronaut()])), "MULTIPLE_FACES"),
        (lambda: None, "NO_SELFIE"),
    ],
)
def test_other_images_never_match_and_say_why(world, make_selfie, outcome) -> None:
    event = punch(world, make_selfie())
    result = verify_event(str(event.uuid), world["person"].pk)
    assert (result["outcome"], result["distance"]) == (outcome, None)
    event.refresh_from_db()
    assert event.face_matched is None and event.face_outcome == outcome


def test_a_selfie_of_more_pixels_than_an_upload_may_have_is_never_decoded(world) -> None:
    """A selfie stored before uploads were capped, just over the cap: read from its header,
    refused as unreadable at once, never decoded nor upsampled."""
    from apps.core.uploads import MAX_IMAGE_PIXELS

    buffer = io.BytesIO()
    Image.new("L", (6000, MAX_IMAGE_PIXELS // 6000 + 1)).save(buffer, format="PNG")
    event = punch(world, buffer.getvalue())
    started = time.monotonic()
    result = verify_event(str(event.uuid), world["person"].pk)
    assert result["outcome"] == "UNREADABLE" and time.monotonic() - started < 1


def test_a_large_photo_is_scaled_down_before_detection(world) -> None:
    """The astronaut at 4000 x 4000 (16 megapixels, under the cap): detection (which
    upsamples) runs on it scaled to 1600 px, about a quarter of the time, and still matches."""
    from apps.attendance.faces import load_image

    big = encode(numpy.asarray(Image.fromarray(images.astronaut()).resize((4000, 4000))))
    assert load_image(big).shape == (1600, 1600, 3)
    event = punch(world, big)
    assert verify_event(str(event.uuid), world["person"].pk)["outcome"] == "MATCH"


def test_missing_reference_and_someone_elses_event(world) -> None:
    Attachment.objects.filter(owner_type="peoples.people").delete()
    event = punch(world, astronaut_selfie())
    assert verify_event(str(event.uuid), world["person"].pk)["outcome"] == "NO_REFERENCE"
    with pytest.raises(ValueError, match="is not person"):
        verify_event(str(event.uuid), world["person"].pk + 1000)


def test_processes_that_never_verify_faces_never_load_dlib() -> None:
    probe = (
        "import django, sys; django.setup(); import background_tasks.tasks; "
        "print('face_recognition' in sys.modules, 'dlib' in sys.modules)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=BASE_DIR,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert completed.stdout.strip() == "False False"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_task_runs_on_the_worker(worker, world) -> None:
    event = punch(world, astronaut_selfie())
    result = perform_facerecognition_bgt.apply_async(
        (str(event.uuid), world["person"].pk), ignore_result=False
    ).get(timeout=patience(60))
    assert result["outcome"] == "MATCH"
