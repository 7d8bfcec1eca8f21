"""Log filters: bearer tokens that travel in URLs never reach a log."""

from __future__ import annotations

import logging
import re

# URL paths whose last segment is a credential: signed decision links, download links.
_TOKEN_PATHS = re.compile(r"(/permits/decide/|/mobile/downloads/)[^/\s?\"']+")


class RedactUrlTokens(logging.Filter):
    """Replace the token of a signed link in a request log line by "[token]"."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _TOKEN_PATHS.sub(r"\1[token]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True
