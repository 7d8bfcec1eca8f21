"""What counts as a secret or as personal data in what we store, log and show: one rule, used
by dead letters, task results and log filters."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[redacted]"
_SECRET_NAME = re.compile(
    r"pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|auth|credential|cookie|session|signature",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"[^\s@<>,;\"']+@[^\s@<>,;\"']+\.[^\s@<>,;\"']+")
# URL paths whose last segment is a bearer credential: signed decision and download links.
_TOKEN_PATH = re.compile(r"(/permits/decide/|/mobile/downloads/)[^/\s?\"']+")


def redact_text(text: str) -> str:
    """`text` without e-mail addresses and without the tokens of signed links."""
    return _TOKEN_PATH.sub(r"\1[token]", _EMAIL.sub(REDACTED, text))


def is_secret_name(name: str) -> bool:
    """A field or header named like a credential (password, token, API key, Authorization...)."""
    return bool(_SECRET_NAME.search(name))


def redact(value: Any) -> Any:
    """A JSON-safe copy of `value` for display: secret-named entries and e-mail addresses
    replaced."""
    if isinstance(value, dict):
        return {str(k): REDACTED if is_secret_name(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, int | float | bool):
        return value
    return repr(value)
