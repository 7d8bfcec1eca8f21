"""The mail server of the multi-host suite, run on its own host:

    python -m tests.faults.smtp_sink ADDRESS PORT RECEIVED_FILE DELAY_FILE

Every message it accepts is appended to RECEIVED_FILE as one JSON line (recipients, subject,
Message-ID, time). It answers DATA after the number of seconds in DELAY_FILE (read each time),
like a slow MTA: the message is taken at the end of DATA, before the reply.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, received: Path, delay_file: Path) -> None:
        self.received = received
        self.delay_file = delay_file

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's hook
        message = message_from_bytes(envelope.content, policy=email_policy.default)
        line = {
            "recipients": list(envelope.rcpt_tos),
            "subject": str(message["Subject"]),
            "message_id": str(message["Message-ID"] or ""),
            "at": time.time(),
        }
        with self.received.open("a") as out:
            out.write(json.dumps(line) + "\n")
        await asyncio.sleep(float(self.delay_file.read_text() or 0))
        return "250 OK"


def main(address: str, port: str, received: str, delay_file: str) -> None:
    controller = Controller(
        Sink(Path(received), Path(delay_file)), hostname=address, port=int(port)
    )
    controller.start()
    print(f"listening on {address}:{port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main(*sys.argv[1:5])
