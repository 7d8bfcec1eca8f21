"""Face verification of attendance selfies: cached reference encodings against recomputed ones.

Run from the repository root (see bench/README.md):

    INTELLIWIZ_VAR_DIR=/tmp/bench-faces .venv/bin/python bench/faces.py

It migrates, replaces its own rows (a client, a site, a person with K reference photos and N
punches with a selfie each), times one cold `import face_recognition` in a fresh interpreter,
then `verify_event` on every punch with the FaceReference rows cached, then with them deleted
before each call, and prints one `name  value` line per figure.
"""

# ruff: noqa: E402 (the app modules can only be imported after django.setup())
from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import django

# Run as a script, only bench/ would be on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "intelliwiz_config.settings")
django.setup()

import numpy
from django.core.files.base import ContentFile
from django.core.management import call_command
from PIL import Image
from skimage import data as images

from apps.attendance.faces import verify_event
from apps.attendance.models import AttendanceEvent, FaceOutcome, FaceReference
from apps.core.models import Attachment
from apps.onboarding.models import BusinessUnit
from apps.peoples.models import People

CLIENT_CODE = "BENCHFACESCLIENT"
SITE_CODE = "BENCHFACESSITE"
LOGINID = "bench-faces"
SELFIE_SIZE = 358  # the astronaut mirrored and scaled down, as in tests/test_faces.py
SMALLEST_REFERENCE_SCALE = 0.75  # references are the astronaut at 100% down to 75%
IMPORT_PROBE = (
    "import time; started = time.perf_counter(); import face_recognition; "
    "print(time.perf_counter() - started)"
)


class BenchError(Exception):
    """A failure that ends the run with a message instead of a traceback."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20, help="punches verified per phase")
    parser.add_argument("--references", type=int, default=3, help="reference photos of the person")
    args = parser.parse_args()
    if args.events < 2:
        parser.error("--events needs at least 2 samples for percentiles")
    if args.references < 1:
        parser.error("--references must be at least 1")
    return args


def line(name: str, value: object) -> None:
    print(f"{name:<36} {value}", flush=True)


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def reference_photos(count: int) -> list[bytes]:
    """The astronaut as PNG, the first at full size and the others scaled down a little."""
    astronaut = Image.fromarray(images.astronaut())
    photos = []
    for scale in numpy.linspace(1.0, SMALLEST_REFERENCE_SCALE, count):
        side = round(astronaut.width * float(scale))
        photos.append(encode(astronaut.resize((side, side)), "PNG"))
    return photos


def selfie() -> bytes:
    """The astronaut mirrored and scaled down: the same face in a different photo."""
    face = Image.fromarray(images.astronaut()).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return encode(face.resize((SELFIE_SIZE, SELFIE_SIZE)), "JPEG")


def store(owner_type: str, owner_uuid: object, kind: str, name: str, content: bytes) -> None:
    attachment = Attachment(
        owner_type=owner_type, owner_uuid=owner_uuid, kind=kind, filename=name, size=len(content)
    )
    attachment.file.save(name, ContentFile(content), save=True)


def delete_bench_rows() -> None:
    """Delete what an earlier run left: attachments (and their files), punches, person, units."""
    person = People.objects.filter(loginid=LOGINID).first()
    if person is not None:
        events = AttendanceEvent.objects.filter(person=person)
        owners = [person.uuid, *events.values_list("uuid", flat=True)]
        for attachment in Attachment.objects.filter(owner_uuid__in=owners):
            attachment.file.delete(save=False)
            attachment.delete()  # cascades to its FaceReference
        events.delete()
        person.delete()
    BusinessUnit.objects.filter(code=SITE_CODE).delete()
    BusinessUnit.objects.filter(code=CLIENT_CODE).delete()


def seed(events: int, references: int) -> tuple[People, list[str]]:
    """The person with their reference photos, and the uuids of their punches with a selfie."""
    client = BusinessUnit.objects.create(code=CLIENT_CODE, name="Bench faces", kind="CLIENT")
    site = BusinessUnit.objects.create(
        code=SITE_CODE, name="Bench faces site", kind="SITE", parent=client
    )
    person = People.objects.create_user(
        LOGINID, None, email="bench-faces@facility.test", client=client, site=site
    )
    for n, photo in enumerate(reference_photos(references), start=1):
        store("peoples.people", person.uuid, "PHOTO", f"reference{n}.png", photo)
    content = selfie()
    uuids = []
    for _ in range(events):
        event = AttendanceEvent.objects.create(
            person=person, site=site, kind="PUNCH_IN", at=datetime.now(UTC)
        )
        store("attendance.attendanceevent", event.uuid, "SELFIE", "selfie.jpg", content)
        uuids.append(str(event.uuid))
    return person, uuids


def cold_import() -> tuple[float, float]:
    """Seconds of `import face_recognition` in a fresh interpreter, and of that whole process."""
    started = time.perf_counter()
    probe = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, check=False
    )
    process_s = time.perf_counter() - started
    if probe.returncode:
        raise BenchError(f"import face_recognition failed:\n{probe.stderr}")
    return float(probe.stdout), process_s


def timed_verify(event_uuid: str, person_id: int) -> float:
    """Milliseconds of one verify_event call; BenchError unless the selfie matched."""
    started = time.perf_counter()
    result = verify_event(event_uuid, person_id)
    elapsed_ms = (time.perf_counter() - started) * 1000
    if result["outcome"] != FaceOutcome.MATCH:
        raise BenchError(f"event {event_uuid} gave {result['outcome']}, expected MATCH")
    return elapsed_ms


def verify_all(
    event_uuids: list[str], person_id: int, before_each: Callable[[], object]
) -> list[float]:
    samples = []
    for event_uuid in event_uuids:
        before_each()
        samples.append(timed_verify(event_uuid, person_id))
    return samples


def report(prefix: str, samples: list[float]) -> float:
    """Print mean, p50 and p90 of the samples; return the mean."""
    deciles = statistics.quantiles(samples, n=10, method="inclusive")
    mean = statistics.fmean(samples)
    line(f"{prefix}_n", len(samples))
    line(f"{prefix}_mean_ms", f"{mean:.1f}")
    line(f"{prefix}_p50_ms", f"{statistics.median(samples):.1f}")
    line(f"{prefix}_p90_ms", f"{deciles[8]:.1f}")
    return mean


def run(args: argparse.Namespace) -> None:
    call_command("migrate", verbosity=0)
    delete_bench_rows()
    person, event_uuids = seed(args.events, args.references)
    import_s, import_process_s = cold_import()  # before this process loads dlib

    import dlib
    import face_recognition

    line("python", platform.python_version())
    line("dlib", dlib.__version__)
    line("face_recognition", face_recognition.__version__)
    line("nproc", len(os.sched_getaffinity(0)))
    line("references", args.references)
    line("cold_import_face_recognition_ms", f"{import_s * 1000:.0f}")
    line("cold_import_process_ms", f"{import_process_s * 1000:.0f}")

    # Loads the models and computes the FaceReference rows the cached phase reuses.
    line("first_call_ms", f"{timed_verify(event_uuids[0], person.pk):.0f}")
    encoded = FaceReference.objects.filter(person=person, encoding__isnull=False).count()
    if encoded != args.references:
        raise BenchError(f"{encoded} of {args.references} reference photos have a face encoding")

    references = FaceReference.objects.filter(person=person)
    cached = report("cached", verify_all(event_uuids, person.pk, lambda: None))
    recomputed = report("recomputed", verify_all(event_uuids, person.pk, references.delete))
    line("ratio_recomputed_to_cached", f"{recomputed / cached:.2f}")
    delete_bench_rows()


def main() -> None:
    args = parse_args()
    try:
        run(args)
    except BenchError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
