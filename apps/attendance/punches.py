"""What a punch sets going: the geofence check at once (a NOC mismatch when it fails), face
verification once its selfie arrives."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from apps.attendance.geofence import distance_from_site, inside_geofence
from apps.attendance.models import AttendanceEvent
from apps.core.enqueue import enqueue_on_commit
from apps.peoples.models import People

OUTSIDE_GEOFENCE = "ATTENDANCE_OUTSIDE_GEOFENCE"


def record_punch(
    person: People,
    kind: str,
    at: datetime,
    latitude: Decimal | None = None,
    longitude: Decimal | None = None,
) -> AttendanceEvent:
    """Record a punch at the person's site; one made outside the geofence is reported to the
    NOC (after commit) as a mismatch."""
    site = person.site
    if site is None:
        raise ValueError(f"{person} is not assigned to a site: a punch is made at one")
    distance = distance_from_site(site, latitude, longitude)
    inside = inside_geofence(site, latitude, longitude)
    event = AttendanceEvent.objects.create(
        person=person,
        site=site,
        kind=kind,
        at=at,
        latitude=latitude,
        longitude=longitude,
        inside_geofence=inside,
    )
    if inside is False and distance is not None:
        mismatch = {
            "kind": OUTSIDE_GEOFENCE,
            "source": f"site:{site.code}",
            "subject": f"person:{person.code}",
            "details": {
                "event": str(event.uuid),
                "punch": kind,
                "distance_m": round(distance),
                "radius_m": site.geofence_radius_m,
            },
        }
        enqueue_on_commit("send_mismatch_notification", mismatch)
    return event


def selfie_received(event: AttendanceEvent) -> None:
    """Verify the punch's new selfie in the background, once the upload commits."""
    enqueue_on_commit("perform_facerecognition_bgt", str(event.uuid), event.person_id)
