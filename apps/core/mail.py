"""Outgoing mail: clean recipients, HTML with a plain-text alternative, sent once per key.

Every message carries an idempotency key naming its business event (e.g.
``jobneed:12:autoclosed``); ``deliver`` sends each message at most once however often the
task that sends it runs, and never inside a database transaction.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import smtplib
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from email import quoprimime
from email.header import Header
from email.utils import formatdate
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.message import sanitize_address
from django.core.validators import validate_email
from django.db import connection as db_connection
from django.template.loader import render_to_string
from django.utils import timezone

from apps.core.idempotency import BatchClaim, ClaimLost, claim_many, side_effect_identity
from apps.core.models import IdempotencyKey

logger = logging.getLogger(__name__)

# Addresses that stand for "nobody" in imported data.
_PLACEHOLDER = re.compile(r"^none@|@(none\.com|test\.com|example\.(com|org|net))$")


def local_times(zone: tzinfo, **moments: datetime | None) -> dict[str, str]:
    """Each moment in the site's zone as mails print it (05-Mar-2026 14:30; empty for None).

    Formatted here rather than with {% timezone %} and |date in the template, which took
    most of a fan-out mail's render time.
    """
    return {
        name: f"{timezone.localtime(moment, zone):%d-%b-%Y %H:%M}" if moment else ""
        for name, moment in moments.items()
    }


def message_id(key: str) -> str:
    """The Message-ID of the mail of ledger key `key`: the same for every copy, so a mail
    client shows one mail where a send was repeated (the reply to DATA lost, a partition right
    after the send)."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "intelliwiz.invalid"
    return f"<{side_effect_identity(key)}@{domain}>"


def clean_recipients(addresses: Iterable[str | None]) -> list[str]:
    """Trimmed, valid, de-duplicated (case-insensitively, first spelling kept) addresses."""
    return list(_clean_recipients(tuple(addresses)))


# A fan-out mails thousands of rows that share a few recipient lists: validate each list once.
@functools.lru_cache(maxsize=1024)
def _clean_recipients(addresses: tuple[str | None, ...]) -> tuple[str, ...]:
    seen: set[str] = set()
    cleaned = []
    for raw in addresses:
        for address in (raw or "").split(","):
            address = address.strip()
            if not address or _PLACEHOLDER.search(address.lower()):
                continue
            try:
                validate_email(address)
            except ValidationError:
                continue
            if address.lower() not in seen:
                seen.add(address.lower())
                cleaned.append(address)
    return tuple(cleaned)


def _in_transaction() -> bool:
    # Test cases wrap each test in an atomic block of their own (marked _from_testcase, as
    # Django's durable check does); only the application's own blocks count.
    return any(not getattr(b, "_from_testcase", False) for b in db_connection.atomic_blocks)


@dataclass
class Mail:
    key: str
    subject: str
    to: list[str]
    template: str  # renders "<template>.html" and "<template>.txt"
    context: dict[str, Any]
    cc: list[str] = field(default_factory=list)
    attachments: list[tuple[str, bytes, str]] = field(default_factory=list)
    from_email: str = ""  # DEFAULT_FROM_EMAIL unless set
    reply_to: list[str] = field(default_factory=list)

    def message(self) -> EmailMultiAlternatives:
        text, html = self._bodies()
        message = EmailMultiAlternatives(
            subject=self._subject(),
            body=text,
            from_email=self._sender(),
            to=self.to,
            cc=self.cc,
            reply_to=self.reply_to,
            headers={"Message-ID": message_id(self.key)},
        )
        message.attach_alternative(html, "text/html")
        for name, content, mimetype in self.attachments:
            message.attach(name, content, mimetype)
        return message

    def outgoing(self) -> Outgoing:
        """The message as the SMTP server receives it. Without attachments it is written here
        (its text and HTML as a multipart/alternative, headers as Django writes them): the
        email package's generator took a third of a fan-out mail's time."""
        if self.attachments:
            # Django's MIME classes take linesep (its stubs know the email package's only).
            mime: Any = self.message().message()
            data = mime.as_bytes(linesep="\r\n")
        else:
            text, html = self._bodies()
            data = _alternatives(self._headers(), text, html)
        recipients = [_address(address) for address in [*self.to, *self.cc]]
        return Outgoing(self.key, _address(self._sender()), recipients, data)

    def _subject(self) -> str:
        # User text reaches subjects (site, permit names): a line break must not start a new
        # header, so every run of whitespace becomes one space.
        return " ".join(self.subject.split())

    def _sender(self) -> str:
        return self.from_email or settings.DEFAULT_FROM_EMAIL

    def _bodies(self) -> tuple[str, str]:
        context = {"subject": self.subject, **self.context}
        return (
            render_to_string(f"{self.template}.txt", context),
            render_to_string(f"{self.template}.html", context),
        )

    def _headers(self) -> list[tuple[str, str]]:
        subject = self._subject()
        headers = [
            ("Subject", Header(subject, None if subject.isascii() else "utf-8").encode()),
            ("From", _address(self._sender())),
            ("To", ", ".join(_address(address) for address in self.to)),
        ]
        if self.cc:
            headers.append(("Cc", ", ".join(_address(address) for address in self.cc)))
        if self.reply_to:
            headers.append(("Reply-To", ", ".join(_address(a) for a in self.reply_to)))
        headers += [
            ("Date", formatdate(localtime=settings.EMAIL_USE_LOCALTIME)),
            ("Message-ID", message_id(self.key)),
        ]
        return headers


@dataclass
class Outgoing:
    """A message as SMTP sends it: its ledger key, envelope and bytes."""

    key: str
    sender: str
    recipients: list[str]
    data: bytes


# Fan-out mails go to a few addresses thousands of times: each is checked and written once.
@functools.lru_cache(maxsize=4096)
def _address(address: str) -> str:
    return str(sanitize_address(address, "utf-8"))


def _part(subtype: str, body: str) -> str:
    """A text part as Django's SafeMIMEText writes it: 7bit or 8bit UTF-8, quoted-printable
    where a line exceeds SMTP's 998 octets."""
    body = body.replace("\r\n", "\n")
    encoded = body.encode()
    if any(len(line) > 998 for line in encoded.split(b"\n")):
        transfer = "quoted-printable"
        body = quoprimime.body_encode(encoded.decode("latin-1"), eol="\n")  # UTF-8 octets
    else:
        transfer = "7bit" if body.isascii() else "8bit"
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\nMIME-Version: 1.0\n'
        f"Content-Transfer-Encoding: {transfer}\n\n{body}"
    )


def _alternatives(headers: list[tuple[str, str]], text: str, html: str) -> bytes:
    parts = [_part("plain", text), _part("html", html)]
    boundary = f"==============={secrets.token_hex(12)}=="
    while any(boundary in part for part in parts):  # never in practice: 96 random bits
        boundary = f"==============={secrets.token_hex(12)}=="
    head = "".join(f"{name}: {value}\n" for name, value in headers)
    message = (
        f'Content-Type: multipart/alternative;\n boundary="{boundary}"\nMIME-Version: 1.0\n'
        f"{head}\n" + "".join(f"--{boundary}\n{part}\n" for part in parts) + f"--{boundary}--\n"
    )
    return message.replace("\n", "\r\n").encode()


class TransientMailError(Exception):
    """The mail server is unreachable or answered 4xx: try again later."""


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in exc.recipients.values())
    return isinstance(exc, (ConnectionError, TimeoutError, smtplib.SMTPServerDisconnected))


@dataclass
class Delivery:
    sent: list[str]  # keys sent by this call
    settled: set[str]  # keys needing no more work: sent (now or before), or nobody to send to
    error: Exception | None = None  # the send failure that stopped the batch, if any

    def raise_error(self) -> None:
        """Raise the send failure (after the caller has recorded what did settle); a transient
        one as TransientMailError, which the email retry policy retries."""
        if self.error is None:
            return
        if _is_transient(self.error):
            raise TransientMailError(f"{type(self.error).__name__}: {self.error}") from self.error
        raise self.error


def _held(batch: BatchClaim, mails: list[Mail]) -> Iterator[Outgoing]:
    """Each mail as sent, built only once its claim is known to be held."""
    for mail in mails:
        batch.ensure_held()  # no send on a claim another run took over
        yield mail.outgoing()


def deliver(mails: list[Mail], *, task_id: str = "") -> Delivery:
    """Send each mail whose key is not done yet, over one SMTP connection.

    A send failure stops the batch. On every way out (an error, a time limit, the process
    exiting) keys sent so far are recorded as done and the rest released for the retry. The
    failure is returned in ``Delivery.error`` so the caller can record what settled before
    raising it; so is SideEffectInProgress when another run still holds some of the keys.
    """
    if _in_transaction():
        raise RuntimeError("send mail after the transaction commits, not inside it")
    to_send = [mail for mail in mails if mail.to]
    batch = BatchClaim(frozenset(), uuid.uuid4().hex)
    sent: list[str] = []
    error: Exception | None = None
    try:
        # Inside the try: a time limit that strikes while claiming still releases the claims.
        batch = claim_many([mail.key for mail in to_send], task_id=task_id, owner=batch.owner)
        if batch.keys:
            claimed = [mail for mail in to_send if mail.key in batch.keys]
            with get_connection() as smtp:
                send_each = getattr(smtp, "send_each", None)  # the SMTP backend's (apps.core.smtp)
                if send_each is None:
                    for mail in claimed:
                        batch.ensure_held()  # no send on a claim another run took over
                        smtp.send_messages([mail.message()])
                        sent.append(mail.key)
                else:
                    for key in send_each(_held(batch, claimed)):
                        sent.append(key)  # one by one: the keys sent before a failure count
        error = batch.busy()
    except Exception as exc:
        error = exc
    finally:
        try:
            batch.complete(set(sent))
        except ClaimLost as lost:
            error = lost  # sent, but another run holds them now: say so, not success
        finally:
            batch.release_unfinished()
    done = set(
        IdempotencyKey.objects.filter(
            key__in=[m.key for m in to_send], status=IdempotencyKey.Status.DONE
        ).values_list("key", flat=True)
    )
    logger.info("mail_delivery sent=%d of=%d failed=%s", len(sent), len(mails), bool(error))
    return Delivery(sent, done | {m.key for m in mails if not m.to}, error)
