"""Where a punch was made against where its site is."""

from __future__ import annotations

import math
from decimal import Decimal

from apps.onboarding.models import BusinessUnit


def distance_m(lat1: Decimal, lon1: Decimal, lat2: Decimal, lon2: Decimal) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(float(lat1)), math.radians(float(lat2))
    dp, dl = p2 - p1, math.radians(float(lon2) - float(lon1))
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


def distance_from_site(
    site: BusinessUnit, latitude: Decimal | None, longitude: Decimal | None
) -> float | None:
    """Metres from the site's position; None when either position is unknown."""
    if latitude is None or longitude is None or site.latitude is None or site.longitude is None:
        return None
    return distance_m(latitude, longitude, site.latitude, site.longitude)


def inside_geofence(
    site: BusinessUnit, latitude: Decimal | None, longitude: Decimal | None
) -> bool | None:
    """Whether a position is within the site's geofence; None when the position, the site's
    or its geofence is unknown."""
    distance = distance_from_site(site, latitude, longitude)
    radius = site.geofence_radius_m
    return None if distance is None or radius is None else distance <= radius
