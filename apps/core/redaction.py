"""What counts as a secret or as personal data in what we store, log and show: one rule, used
by dead letters, task results and log filters."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_plus

REDACTED = "[redacted]"
_SECRET_NAME = re.compile(
    r"pass(word|wd)?|secret|token|auth|credential|cookie|session|signature"
    r"|(api|private|subscription|access|signing|client|app|master)[_-]?key"
    r"|(^|[^a-z])sig($|[^a-z])",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"[^\s@<>,;\"']+@[^\s@<>,;\"']+\.[^\s@<>,;\"']+")
# URL paths whose last segment is a bearer credential: signed decision and download links.
_TOKEN_PATH = re.compile(r"(/permits/decide/|/mobile/downloads/)[^/\s?\"']+")
# A query-string parameter: its separator, name and value.
_QUERY_PARAMETER = re.compile(r"([?&;])([^=&;#\s\"'<>?]+)=([^&;#\s\"'<>]*)")
# Request headers that carry no credential, whatever a partner names its own: the only ones
# shown in a dead letter's headers, and the only ones a partner call keeps on a redirect to
# another origin (apps.integrations.partner_api).
HARMLESS_HEADERS = frozenset(
    {
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "content-language",
        "content-type",
        "idempotency-key",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-unmodified-since",
        "pragma",
        "user-agent",
    }
)


def _redact_parameter(match: re.Match[str]) -> str:
    separator, name, value = match.groups()
    if value and is_secret_name(unquote_plus(name)):
        return f"{separator}{name}={REDACTED}"
    return match.group(0)


def redact_text(text: str) -> str:
    """`text` without e-mail addresses, the tokens of signed links, and the values of
    secret-named query-string parameters (``?sig=…``, ``&api_key=…``)."""
    text = _QUERY_PARAMETER.sub(_redact_parameter, text)
    return _TOKEN_PATH.sub(r"\1[token]", _EMAIL.sub(REDACTED, text))


def is_secret_name(name: str) -> bool:
    """A field or header named like a credential (password, token, key, Authorization,
    signature...)."""
    return bool(_SECRET_NAME.search(name))


def is_harmless_header(name: str) -> bool:
    return name.strip().lower() in HARMLESS_HEADERS


def redact(value: Any, *, headers: bool = False) -> Any:
    """A JSON-safe copy of `value` for display: secret-named entries, e-mail addresses and
    secret query-string values replaced; in a mapping of request headers (an entry named
    "headers"), every header but the harmless ones, whatever its name."""
    if isinstance(value, dict):
        return {str(k): _redact_entry(str(k), v, headers) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, int | float | bool):
        return value
    return repr(value)


def _redact_entry(name: str, value: Any, headers: bool) -> Any:
    if is_secret_name(name) or (headers and not is_harmless_header(name)):
        return REDACTED
    return redact(value, headers=name.lower() == "headers")
