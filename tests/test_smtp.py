"""Mail as the SMTP server receives it (apps.core.mail, apps.core.smtp): the message a fan-out
writes itself is the one Django writes, and where the server offers PIPELINING the envelope
goes in one write and each message's data with the next one's envelope, with smtplib's own
outcomes when the server refuses something."""

from __future__ import annotations

import smtplib
import socket
import threading
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.core.mail.message import sanitize_address

from apps.core.idempotency import IdempotencyKey
from apps.core.mail import Mail, TransientMailError, deliver
from apps.core.smtp import EmailBackend

pytestmark = pytest.mark.django_db


def mail(n: int, **fields: Any) -> Mail:
    defaults: dict[str, Any] = {
        "key": f"smtp-test:{n}",
        "subject": f"Ticket #{n} escalated",
        "to": [f"in-charge{n}@facility.test"],
        "template": "reports/mail/report",
        "context": {"intro": f"Your report {n} is ready.", "link": f"https://x.test/r/{n}"},
    }
    return Mail(**(defaults | fields))


def parsed(data: bytes) -> EmailMessage:
    return message_from_bytes(data, policy=email_policy.default)  # type: ignore[return-value]


def shape(message: EmailMessage) -> dict[str, Any]:
    """What a mail client shows: the headers decoded, each part's type and decoded text."""
    return {
        "headers": {
            name: str(message[name])
            for name in ("Subject", "From", "To", "Cc", "Reply-To", "Message-ID")
            if message[name] is not None
        },
        "type": message.get_content_type(),
        "parts": [
            (part.get_content_type(), part.get_content_charset(), part.get_content())
            for part in message.iter_parts()
        ],
    }


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"subject": "Fuite d'eau à l'étage — urgent", "to": ["Zoë Müller <zoe@facility.test>"]},
        {"cc": ['"Smith, John" <john@facility.test>'], "reply_to": ["Ops <ops@facility.test>"]},
        {"subject": "A long subject " * 12},
        {"context": {"intro": "x" * 1200}},
        {"context": {"intro": "ünïcode " * 200, "link": ".starts with a period"}},
    ],
    ids=["plain", "non-ascii", "cc-reply-to", "long-subject", "long-line", "long-non-ascii"],
)
def test_a_written_mail_reads_as_djangos(fields: dict[str, Any]) -> None:
    """The email package's generator took a third of a fan-out mail's time; the message is
    written by hand now, and must read the same in a mail client."""
    ours = mail(1, **fields)
    outgoing = ours.outgoing()
    djangos = ours.message().message().as_bytes(linesep="\r\n")
    assert shape(parsed(outgoing.data)) == shape(parsed(djangos))
    assert all(len(line) <= 998 for line in outgoing.data.split(b"\r\n"))
    assert b"\n" not in outgoing.data.replace(b"\r\n", b"")
    assert outgoing.recipients == [sanitize_address(a, "utf-8") for a in [*ours.to, *ours.cc]]


class StrictPipeliningServer:
    """An SMTP server offering PIPELINING that answers an envelope only once all of it has
    arrived (up to DATA): a client waiting for each reply would wait forever. `refuse` maps an
    address to the reply its RCPT gets; `fail_data` the message numbers whose end of data is
    answered 451."""

    def __init__(
        self, refuse: dict[str, str] | None = None, fail_data: frozenset[int] = frozenset()
    ) -> None:
        self.refuse = refuse or {}
        self.fail_data = fail_data
        self.messages: list[bytes] = []
        self.transactions = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection, connection.makefile("rb") as reader:
            connection.sendall(b"220 strict\r\n")
            envelope: list[bytes] = []
            while line := reader.readline():
                command = line.strip().upper()
                if command.startswith((b"EHLO", b"HELO")):
                    connection.sendall(b"250-strict\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                elif command.startswith((b"MAIL", b"RCPT")):
                    envelope.append(line)  # answered with DATA
                elif command == b"DATA":
                    connection.sendall(self.answer(envelope))
                    accepted = any(b"250" in reply for reply in self.answers[1:])
                    envelope = []
                    if accepted:
                        self.read_data(reader, connection)
                elif command == b"RSET":
                    connection.sendall(b"250 reset\r\n")
                elif command == b"QUIT":
                    connection.sendall(b"221 bye\r\n")
                    return

    def answer(self, envelope: list[bytes]) -> bytes:
        self.answers = [b"250 sender ok\r\n"]
        for line in envelope[1:]:
            address = line.decode().split(":", 1)[1].strip().strip("<>")
            self.answers.append(f"{self.refuse.get(address, '250 ok')}\r\n".encode())
        accepted = any(b"250" in reply for reply in self.answers[1:])
        return b"".join(self.answers) + (b"354 go on\r\n" if accepted else b"554 no recipients\r\n")

    def read_data(self, reader: Any, connection: socket.socket) -> None:
        data = b""
        while (line := reader.readline()) not in (b".\r\n", b""):
            data += line
        if not line:
            return  # the client closed in the middle: nothing is delivered
        self.transactions += 1
        if self.transactions in self.fail_data:
            connection.sendall(b"451 try again later\r\n")
        else:
            self.messages.append(data)
            connection.sendall(b"250 queued\r\n")


@pytest.fixture
def strict(settings):
    def start(**options: Any) -> StrictPipeliningServer:
        server = StrictPipeliningServer(**options)
        settings.EMAIL_BACKEND = "apps.core.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = (
            "127.0.0.1",
            server.port,
            5,
        )
        return server

    return start


def test_a_batch_is_pipelined_where_the_server_offers_it(strict) -> None:
    server = strict()
    delivery = deliver([mail(n) for n in range(5)])
    assert sorted(delivery.sent) == [f"smtp-test:{n}" for n in range(5)] and not delivery.error
    assert len(server.messages) == 5
    assert b"Ticket #3 escalated" in server.messages[3]
    assert IdempotencyKey.objects.filter(status="DONE").count() == 5


def test_some_recipients_refused_is_a_sent_mail_and_all_refused_stops_the_batch(strict) -> None:
    server = strict(refuse={"gone@facility.test": "550 no such user"})
    first = mail(1, to=["in-charge1@facility.test", "gone@facility.test"])
    nobody = mail(2, to=["gone@facility.test"])
    delivery = deliver([first, nobody, mail(3)])
    assert delivery.sent == ["smtp-test:1"]
    assert isinstance(delivery.error, smtplib.SMTPRecipientsRefused)
    assert len(server.messages) == 1
    assert not IdempotencyKey.objects.filter(key__in=["smtp-test:2", "smtp-test:3"]).exists()


def test_a_refused_end_of_data_keeps_what_went_before_and_sends_nothing_after(strict) -> None:
    """The third message's data is answered 451 after the fourth's envelope was sent with it:
    the batch stops there, the fourth's transaction is closed unfinished, the first two count."""
    server = strict(fail_data={3})
    delivery = deliver([mail(n) for n in range(1, 6)])
    assert delivery.sent == ["smtp-test:1", "smtp-test:2"]
    with pytest.raises(TransientMailError):
        delivery.raise_error()
    server.thread.join(5)
    assert len(server.messages) == 2
    assert set(IdempotencyKey.objects.values_list("key", flat=True)) == {
        "smtp-test:1",
        "smtp-test:2",
    }


class NoPipeliningRecorder:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope.content)
        return "250 OK"


def test_without_pipelining_each_message_goes_the_usual_way(settings) -> None:
    handler = NoPipeliningRecorder()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "apps.core.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        delivery = deliver([mail(n) for n in range(3)])
        assert len(delivery.sent) == 3 and len(handler.received) == 3
        backend = EmailBackend()
        with backend:
            backend.connection.ehlo()
            assert backend.connection.esmtp_features
            assert not backend.connection.has_extn("pipelining")
    finally:
        controller.stop()
