"""Log redaction: bearer tokens that travel in URLs (signed decision and download links) and
e-mail addresses never reach a log, whichever logger writes the line.

One filter, ``RedactUrlTokens``, applied to every record every logger of the process makes:
``redact_every_record`` installs it in the log record factory, so it holds for loggers and
handlers set up later by others too (Celery's task-success line and its task loggers,
gunicorn's access log, django.security.csrf, a test's capture). Django runs it in every process
(web, worker, beat) when the apps are ready.
"""

from __future__ import annotations

import logging
from typing import Any

from apps.core.redaction import redact_text


class RedactUrlTokens(logging.Filter):
    """Replace the token of a signed link by "[token]" (and e-mail addresses) in a record's
    message and in the text of its exception."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format: logging reports it when it emits
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            # Formatters print exc_text when it is set: the traceback, redacted.
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        return True


def redact_every_record() -> None:
    """Make every log record of this process pass through RedactUrlTokens as it is made."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "redacts_url_tokens", False):
        return
    redaction = RedactUrlTokens()

    def redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        redaction.filter(record)
        return record

    redacted_record.redacts_url_tokens = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacted_record)
