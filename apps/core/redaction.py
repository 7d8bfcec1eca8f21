"""What counts as a secret or as personal data in what we store and show: one rule."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[redacted]"
_SECRET_NAME = re.compile(
    r"pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|auth|credential|cookie|session|signature",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"[^\s@<>,;\"']+@[^\s@<>,;\"']+\.[^\s@<>,;\"']+")


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
        return _EMAIL.sub(REDACTED, value)
    if value is None or isinstance(value, int | float | bool):
        return value
    return repr(value)
