"""Start-up checks for INTELLIWIZ_ENV=production: every problem is reported by variable name."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.core.exceptions import ImproperlyConfigured

_DEFAULT_MARKER = "dev-only-insecure-key"


def production_problems(settings: dict[str, Any]) -> list[str]:
    problems = []
    secret = settings["SECRET_KEY"]
    if _DEFAULT_MARKER in secret:
        problems.append("DJANGO_SECRET_KEY is missing")
    elif len(secret) < 50:
        problems.append("DJANGO_SECRET_KEY is too short (at least 50 characters)")
    elif secret.startswith("django-insecure-"):
        problems.append("DJANGO_SECRET_KEY is a development key (django-insecure-...)")
    elif len(set(secret)) < 5:  # Django's own check --deploy rule: a key of repeated characters
        problems.append("DJANGO_SECRET_KEY is not random (at least 5 different characters)")
    elif _period(secret) <= len(secret) // 2:
        problems.append(
            f"DJANGO_SECRET_KEY is not random (a pattern of {_period(secret)} characters, repeated)"
        )
    if settings["DEBUG"]:
        problems.append("DJANGO_DEBUG must be false")
    if not settings["DATABASE_URL"]:
        problems.append("DATABASE_URL is missing (a PostgreSQL URL)")
    elif settings["DATABASE_URL"].startswith("sqlite"):
        problems.append("DATABASE_URL must point at PostgreSQL, not SQLite")
    if settings["CELERY_BROKER_URL"].startswith("filesystem"):
        problems.append("CELERY_BROKER_URL is missing (a redis:// or amqp:// URL)")
    if not settings["CACHE_URL"]:
        problems.append("CACHE_URL is missing (a redis:// URL)")
    if not settings["EMAIL_HOST"]:
        problems.append("EMAIL_HOST is missing (the SMTP server)")
    if settings["DEFAULT_FROM_EMAIL"].endswith("@localhost"):
        problems.append("DEFAULT_FROM_EMAIL is missing")
    if not settings["SITE_URL"].startswith("https://"):
        problems.append("SITE_URL must be an https:// URL")
    if set(settings["ALLOWED_HOSTS"]) <= {"localhost", "127.0.0.1", "[::1]", "testserver"}:
        problems.append("DJANGO_ALLOWED_HOSTS is missing (the public host names)")
    elif any(_is_wildcard(host) for host in settings["ALLOWED_HOSTS"]):
        problems.append(
            "DJANGO_ALLOWED_HOSTS must name hosts, not a wildcard such as '*' or a public "
            "suffix such as '.com' or '.co.uk' (anyone may register a name under it)"
        )
    for token in ("METRICS_TOKEN", "HEALTHZ_TOKEN"):
        if 0 < len(settings.get(token) or "") < 32:
            problems.append(f"{token} is too short (at least 32 characters)")
    mqtt_url = settings.get("MQTT_URL") or ""
    if mqtt_url and "@" not in mqtt_url.split("://", 1)[-1]:
        problems.append("MQTT_URL must sign in with a user and password (mqtt://user:pass@host)")
    return problems


def _is_wildcard(host: str) -> bool:
    """'*', or a name, or a leading-dot pattern, that is a public suffix of the Public Suffix
    List (".com", ".co.uk", "github.io"): names under it belong to whoever registers them."""
    from publicsuffixlist import PublicSuffixList

    name = host.lstrip(".").lower()
    if host == "*" or not name:
        return True
    try:
        ipaddress.ip_address(name.strip("[]"))
        return False
    except ValueError:
        pass
    if not host.startswith(".") and "." not in name:
        return False  # a single-label host of the deployment's own network
    return bool(PublicSuffixList().is_public(name))


def _period(text: str) -> int:
    """The length of the shortest pattern `text` repeats (its own length when none)."""
    for period in range(1, len(text) // 2 + 1):
        if all(text[i] == text[i + period] for i in range(len(text) - period)):
            return period
    return len(text)


def check_production_settings(settings: dict[str, Any]) -> None:
    problems = production_problems(settings)
    if problems:
        raise ImproperlyConfigured("INTELLIWIZ_ENV=production but: " + "; ".join(problems))
