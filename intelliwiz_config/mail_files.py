"""Development mail: one standard `.eml` file per message, which any mail program opens.

Django's file backend appends every message of a connection to one `.log` file (and opens
it, empty, even when nothing is sent); this one writes each message on its own, named by time
and a random suffix so none overwrite another, and opens no other file.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from django.core.mail.backends.filebased import EmailBackend
from django.core.mail.message import EmailMessage


class EmlFileBackend(EmailBackend):
    def open(self) -> bool:
        return False  # each message is a file of its own: no connection-wide stream

    def close(self) -> None:
        pass

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        folder = Path(self.file_path)
        folder.mkdir(parents=True, exist_ok=True)
        for message in email_messages:
            if not message.recipients():
                continue
            stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
            path = folder / f"{stamp}-{secrets.token_hex(3)}.eml"
            # Written under a temporary name first, so a reader never sees half a message.
            partial = path.with_suffix(".part")
            # django-stubs types message() as email's Message; it is Django's SafeMIME*, whose
            # as_bytes takes linesep.
            mime = message.message()
            partial.write_bytes(mime.as_bytes(linesep="\r\n"))  # type: ignore[call-arg]
            partial.rename(path)
            sent += 1
        return sent
