"""Django's SMTP backend, pipelining where the server offers it.

Without pipelining a message waits for a reply to MAIL FROM, to each RCPT TO, to DATA and to the
end of its data: three round trips plus one per recipient, during which neither side works.
Where the server's EHLO names PIPELINING (RFC 2920: Postfix, Exim, the big providers do), MAIL
FROM, every RCPT TO and DATA go in one write and their replies are read together; and in a
batch (``send_each``) a message's data goes in one write with the next message's envelope,
which is built while the server reads the data: about one round trip a message, overlapped.

The outcomes and errors are smtplib's (``SMTP.sendmail``): a refused sender, every recipient
refused, a refused DATA or end of data raise its exceptions; some recipients refused is a sent
message. A transaction that cannot be completed is reset, or, where the server already waits
for its data, ended by closing the connection (the server then discards it).
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.core.mail.backends import smtp
from django.core.mail.message import sanitize_address

from apps.core.mail import Outgoing

_LEADING_PERIOD = re.compile(rb"(?m)^\.")
Reply = tuple[int, bytes]


def _envelope(connection: smtplib.SMTP, message: Outgoing) -> bytes:
    options = f" SIZE={len(message.data)}" if connection.has_extn("size") else ""
    commands = [
        f"MAIL FROM:{smtplib.quoteaddr(message.sender)}{options}",
        *(f"RCPT TO:{smtplib.quoteaddr(recipient)}" for recipient in message.recipients),
        "DATA",
    ]
    return "".join(f"{command}\r\n" for command in commands).encode("ascii")


def _data(data: bytes) -> bytes:
    body = _LEADING_PERIOD.sub(b"..", data)
    return body + (b".\r\n" if body.endswith(b"\r\n") else b"\r\n.\r\n")


def _read_envelope(connection: smtplib.SMTP, message: Outgoing) -> None:
    """Read the replies to a message's envelope; raise, ending the transaction, unless the
    server now waits for its data."""
    replies = [connection.getreply() for _ in range(len(message.recipients) + 2)]
    (mail_code, mail_reply), *rcpt_replies, (data_code, data_reply) = replies
    refused = {
        recipient: reply
        for recipient, reply in zip(message.recipients, rcpt_replies, strict=True)
        if reply[0] not in (250, 251)
    }
    failure: smtplib.SMTPException | None = None
    if mail_code != 250:
        failure = smtplib.SMTPSenderRefused(mail_code, mail_reply, message.sender)
    elif len(refused) == len(message.recipients):
        failure = smtplib.SMTPRecipientsRefused(refused)
    elif data_code != 354:
        failure = smtplib.SMTPDataError(data_code, data_reply)
    if failure is None:
        return
    if data_code == 354 or any(code == 421 for code, _ in replies):
        connection.close()  # it waits for data it must not get, or it is closing anyway
    else:
        connection.rset()
    raise failure


def _read_end_of_data(connection: smtplib.SMTP) -> None:
    code, reply = connection.getreply()
    if code != 250:
        raise smtplib.SMTPDataError(code, reply)


def pipelined_sendmail(
    connection: smtplib.SMTP, sender: str, recipients: list[str], data: bytes
) -> None:
    """``connection.sendmail(sender, recipients, data)`` in two round trips. The server must
    have offered PIPELINING."""
    message = Outgoing("", sender, recipients, data)
    connection.send(_envelope(connection, message))
    _read_envelope(connection, message)
    connection.send(_data(data))
    try:
        _read_end_of_data(connection)
    except smtplib.SMTPDataError as refused:
        if refused.smtp_code == 421:
            connection.close()
        else:
            connection.rset()
        raise


class EmailBackend(smtp.EmailBackend):
    """Django's SMTP backend (EMAIL_BACKEND when EMAIL_HOST is set), pipelining where the
    server offers it."""

    def _send(self, email_message: Any) -> bool:
        connection = self.connection
        if connection is None:  # send_messages opens it; it failed silently
            return False
        connection.ehlo_or_helo_if_needed()
        if not connection.has_extn("pipelining"):
            # Django's own, which its stubs leave out.
            return bool(super()._send(email_message))  # type: ignore[misc]
        if not email_message.recipients():
            return False
        encoding = email_message.encoding or settings.DEFAULT_CHARSET
        sender = sanitize_address(email_message.from_email, encoding)
        recipients = [sanitize_address(addr, encoding) for addr in email_message.recipients()]
        data = email_message.message().as_bytes(linesep="\r\n")
        try:
            pipelined_sendmail(connection, sender, recipients, data)
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True

    def send_each(self, messages: Iterable[Outgoing]) -> Iterator[str]:
        """Send `messages` over the open connection, yielding each one's key once the server
        has accepted it; the first failure raises smtplib's exception, and the batch ends
        with it (the connection closed where a transaction was left open)."""
        connection = self.connection
        if connection is None:
            raise smtplib.SMTPServerDisconnected("the SMTP connection is not open")
        connection.ehlo_or_helo_if_needed()
        if not connection.has_extn("pipelining"):
            for message in messages:
                connection.sendmail(message.sender, message.recipients, message.data)
                yield message.key
            return
        pending = iter(messages)
        current = next(pending, None)
        in_flight: Outgoing | None = None  # its data is sent, its reply not read yet
        try:
            if current is not None:
                connection.send(_envelope(connection, current))
            while current is not None:
                following = next(pending, None)  # built while the server reads
                if in_flight is not None:
                    _read_end_of_data(connection)
                    yield in_flight.key
                _read_envelope(connection, current)
                written = _data(current.data)
                if following is not None:
                    written += _envelope(connection, following)
                connection.send(written)
                in_flight, current = current, following
            if in_flight is not None:
                _read_end_of_data(connection)
                yield in_flight.key
        except BaseException:
            # A transaction may be open (an envelope or data sent, its reply not read): only
            # closing ends it safely, and the batch ends here anyway.
            connection.close()
            raise
