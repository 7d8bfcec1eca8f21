"""What every page's header shows about the signed-in person."""

from __future__ import annotations

from django.http import HttpRequest

from apps.peoples.access import role_of


def signed_in(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"role": role_of(user)}
