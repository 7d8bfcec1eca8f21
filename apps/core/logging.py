"""Log filters: bearer tokens that travel in URLs never reach a log."""

from __future__ import annotations

import logging

from apps.core.redaction import redact_text


class RedactUrlTokens(logging.Filter):
    """Replace the token of a signed link in a request log line by "[token]"."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True
