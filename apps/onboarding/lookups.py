"""The lists of lookup codes (TypeAssist) that forms offer, cached; a saved code drops its list
(apps.reports.freshness) and cache_warming_scheduled refills them."""

from __future__ import annotations

from typing import cast

from django.conf import settings
from django.core.cache import cache

from apps.onboarding.models import TypeAssist


def lookup_key(category: str) -> str:
    return f"choices:v1:lookup:{category}"


def lookup_choices(category: str) -> list[tuple[int, str]]:
    """(pk, name) of the enabled codes of `category`, by code."""
    codes = TypeAssist.objects.filter(category=category, enabled=True).order_by("code")
    return cast(
        "list[tuple[int, str]]",
        cache.get_or_set(
            lookup_key(category),
            lambda: list(codes.values_list("pk", "name")),
            settings.DASHBOARD_CACHE_SECONDS * 2,
        ),
    )
