"""The SMTP sink of bench/mail_fanout.py: aiosmtpd's Sink (accepts every message, keeps none)
that offers PIPELINING, as Postfix, Exim and the big providers do. aiosmtpd reads commands one
by one from what arrived, so a client that pipelines is served as RFC 2920 asks.

    .venv/bin/python -m aiosmtpd -n -l 127.0.0.1:PORT -c bench.smtp_sink.PipeliningSink
"""

from __future__ import annotations

from typing import Any


class PipeliningSink:
    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"
