"""Calls to partner HTTP APIs, safe against server-side request forgery.

Only http(s) to allow-listed hosts. Every address a host resolves to is checked, and the
connection goes to a checked address (no second lookup an attacker could steer); private,
loopback, link-local, multicast, reserved and metadata addresses are refused unless that exact
host is allow-listed as private. Redirects are followed only after the same checks, and on a
redirect to another origin only harmless headers (apps.core.redaction.HARMLESS_HEADERS:
Accept, Content-Type, User-Agent...) travel on: a partner's credential may be named anything.
Partner credentials are named by the caller (``credentials="acme"``) and looked up here in
PARTNER_API_CREDENTIALS, so they never travel in a task's arguments. One deadline bounds the
whole call (resolving, connecting, every read), whatever a slow partner trickles. Bodies are
size-capped; results and logs carry no request or response headers.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import urllib3
from django.conf import settings

from apps.core.redaction import is_harmless_header
from apps.core.results import JSONValue
from apps.integrations.results import PartnerCallResult

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
METHODS = IDEMPOTENT_METHODS | {"POST", "PATCH"}
MAX_REDIRECTS = 3
MAX_TIMEOUT = 120  # seconds: the longest deadline a caller may give one partner call


class PartnerCallRefused(ValueError):
    """The request is not allowed (scheme, host, address, method); it is never retried."""


class PartnerUnavailable(ConnectionError):
    """A transient failure (timeout, 429, 5xx) of an idempotent call: worth a retry."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query
    address: str  # the checked IP to connect to


def _host_allowed(host: str) -> bool:
    for allowed in settings.PARTNER_API_ALLOWED_HOSTS:
        if allowed.startswith("*.") and host.endswith(allowed[1:]) and host != allowed[2:]:
            return True
        if host == allowed:
            return True
    return False


def _check_address(host: str, address: str) -> None:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_global and not ip.is_multicast:
        return
    if host in settings.PARTNER_API_PRIVATE_HOSTS:
        return
    raise PartnerCallRefused(f"{host} resolves to a non-public address ({ip}); refused")


def resolve(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise PartnerCallRefused(f"only http and https URLs are allowed, not {parts.scheme!r}")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise PartnerCallRefused("the URL has no host")
    if parts.username or parts.password:
        raise PartnerCallRefused("credentials in the URL are not allowed")
    if not _host_allowed(host):
        raise PartnerCallRefused(f"host {host} is not on the partner allow-list")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise PartnerUnavailable(f"cannot resolve {host}: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))  # IPv4 and IPv6: text
    for address in addresses:
        _check_address(host, address)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, path, addresses[0])


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _origin(target: Target) -> tuple[str, str, int]:
    return target.scheme, target.host, target.port


@dataclass(frozen=True)
class PartnerCredentials:
    """A named set of PARTNER_API_CREDENTIALS: its headers, and the code of the client it
    belongs to (None: the platform's own, which no client's subscription may name)."""

    headers: dict[str, str]
    client: str | None


def partner_credentials(name: str) -> PartnerCredentials:
    """The named set: ``{"client": "<client code>", "headers": {...}}``, a client's; or, in
    the earlier shape, the headers alone (``{"Authorization": "Bearer ..."}``), nobody's."""
    entry = settings.PARTNER_API_CREDENTIALS.get(name)
    if not isinstance(entry, dict):
        raise PartnerCallRefused(f"no partner credentials named {name!r}")
    if "headers" in entry:
        headers, client = entry["headers"], entry.get("client")
        if not isinstance(headers, dict) or not isinstance(client, str) or not client:
            raise PartnerCallRefused(
                f"partner credentials {name!r} must be "
                '{"client": "<client code>", "headers": {"<header>": "<value>"}}'
            )
        return PartnerCredentials({str(k): str(v) for k, v in headers.items()}, client)
    return PartnerCredentials({str(k): str(v) for k, v in entry.items()}, None)


def credentials_problem(name: str, client_code: str | None) -> str:
    """Why a subscription of the client `client_code` may not use the credentials `name` (""
    when it may): they must exist and belong to that client."""
    if not name:
        return ""
    if name not in settings.PARTNER_API_CREDENTIALS:
        return f"no set named {name!r} in PARTNER_API_CREDENTIALS"
    try:
        owner = partner_credentials(name).client
    except PartnerCallRefused as exc:
        return str(exc)
    if owner is None:
        return (
            f"the credentials {name!r} belong to no client, and a subscription may name only "
            "its client's: give them one in PARTNER_API_CREDENTIALS, "
            f'{{"{name}": {{"client": "<client code>", "headers": {{...}}}}}}'
        )
    if owner != client_code:
        return f"the credentials {name!r} belong to another client"
    return ""


def credential_headers(name: str | None) -> dict[str, str]:
    """The headers of the named partner credential (PARTNER_API_CREDENTIALS)."""
    return partner_credentials(name).headers if name is not None else {}


def _harmless_only(headers: dict[str, str]) -> dict[str, str]:
    """What may travel to another origin: the harmless headers, whatever the others are
    named (Ocp-Apim-Subscription-Key, X-Acme-Sig and X-Client-Id are credentials too)."""
    return {k: v for k, v in headers.items() if is_harmless_header(k)}


def _left(deadline: float, host: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise PartnerUnavailable(f"{host}: no answer within the call's deadline")
    return left


def _pool(target: Target, timeout: float) -> urllib3.HTTPConnectionPool:
    timeouts = urllib3.Timeout(connect=min(timeout, 10), read=timeout)
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=timeouts,
            retries=False,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
        )
    return urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeouts, retries=False)


def call_partner(
    url: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    data: Any = None,
    timeout: float = 30,
    credentials: str | None = None,
    idempotency_key: str = "",
) -> PartnerCallResult:
    """Call `url`; `timeout` is the deadline of the whole call, redirects and reads included.
    `idempotency_key`, sent as the Idempotency-Key header unless the caller set one, is the
    same on every attempt of one call, so a partner can recognise a repeated request."""
    method = method.upper()
    if method not in METHODS:
        raise PartnerCallRefused(f"method {method} is not allowed")
    if not 0 < timeout <= MAX_TIMEOUT:
        raise PartnerCallRefused(f"timeout must be between 0 and {MAX_TIMEOUT} seconds")
    body = data if data is None or isinstance(data, bytes | str) else json.dumps(data)
    request_headers = {**(headers or {}), **credential_headers(credentials)}
    if idempotency_key and not any(k.lower() == "idempotency-key" for k in request_headers):
        request_headers["Idempotency-Key"] = idempotency_key
    if data is not None and not isinstance(data, bytes | str):
        request_headers.setdefault("Content-Type", "application/json")
    started = time.monotonic()
    deadline = started + timeout
    origin = None
    for _ in range(MAX_REDIRECTS + 1):
        target = resolve(url)
        if origin is None:
            origin = _origin(target)
        elif _origin(target) != origin:  # credentials are for the origin they were meant for
            request_headers = _harmless_only(request_headers)
        pool = _pool(target, _left(deadline, target.host))
        try:
            response = pool.urlopen(
                method,
                target.path,
                body=body,
                headers={**request_headers, "Host": target.host},
                redirect=False,
                preload_content=False,
                assert_same_host=False,
            )
        except (
            urllib3.exceptions.TimeoutError,
            urllib3.exceptions.ProtocolError,
            urllib3.exceptions.NewConnectionError,
        ) as exc:
            raise PartnerUnavailable(f"{target.host}: {type(exc).__name__}") from None
        try:
            if response.status in (301, 302, 303, 307, 308) and response.headers.get("Location"):
                url = urljoin(url, response.headers["Location"])
                if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                    method, body = "GET", None
                continue
            content = _read_capped(response, deadline, target.host)
        finally:
            response.release_conn()
            pool.close()
        if response.status == 429 or response.status >= 500:
            message = f"{target.host} answered {response.status}"
            if method in IDEMPOTENT_METHODS:
                raise PartnerUnavailable(message, _retry_after(response.headers.get("Retry-After")))
            raise PartnerCallRefused(f"{message}; {method} is not retried (not idempotent)")
        return {
            "status": response.status,
            "ok": 200 <= response.status < 300,
            "host": target.host,
            "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
            "body": _decode(content, response.headers.get("Content-Type", "")),
        }
    raise PartnerCallRefused(f"more than {MAX_REDIRECTS} redirects")


def _read_capped(response: urllib3.BaseHTTPResponse, deadline: float, host: str) -> bytes:
    """The body, up to the size cap, read before the deadline: each read waits only for what
    is left of it, so a partner that trickles a byte at a time cannot stretch the call."""
    limit = settings.PARTNER_API_MAX_RESPONSE_BYTES
    sock = _socket_of(response)
    chunks: list[bytes] = []
    size = 0
    while True:
        left = _left(deadline, host)
        if sock is not None:
            with contextlib.suppress(OSError):  # closed once the whole body is read
                sock.settimeout(left)
        try:
            chunk = response.read1(64 * 1024)
        except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError) as exc:
            raise PartnerUnavailable(f"{host}: {type(exc).__name__}") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise PartnerCallRefused(f"the response is larger than {limit} bytes")
        chunks.append(chunk)


def _socket_of(response: urllib3.BaseHTTPResponse) -> socket.socket | None:
    """The socket under a streamed response (http.client's reader over a SocketIO), so each
    read can wait only for what is left of the deadline; None where it is not reachable (the
    pool's read timeout then bounds each read)."""
    reader = getattr(getattr(response, "_fp", None), "fp", None)
    sock = getattr(getattr(reader, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _decode(content: bytes, content_type: str) -> JSONValue:
    text = content.decode("utf-8", "replace")
    if "json" in content_type:
        try:
            decoded: JSONValue = json.loads(text)
            return decoded
        except ValueError:
            return text
    return text
