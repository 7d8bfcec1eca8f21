"""Partner API calls against a local HTTP server: results, caps, retries, and SSRF refusals."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError

from apps.integrations.models import PartnerDelivery, PartnerEvent, PartnerSubscription
from apps.integrations.partner_api import PartnerCallRefused, PartnerUnavailable, call_partner
from apps.y_helpdesk.models import Ticket
from background_tasks import external_api_call_async
from tests import factories
from tests.support.waiting import patience


class Partner(BaseHTTPRequestHandler):
    failures_left: dict[str, int] = {}

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        routes = {
            "/ok": lambda: self._send(
                200, b'{"hello": "partner"}', Content_Type="application/json", X_Secret="s3cr3t"
            ),
            "/big": lambda: self._send(200, b"x" * 5000),
            "/to-ok": lambda: self._send(302, Location="/ok"),
            "/to-loopback": lambda: self._send(302, Location=f"http://127.0.0.1:{port}/ok"),
            "/to-metadata": lambda: self._send(302, Location="http://169.254.169.254/latest/"),
            "/to-file": lambda: self._send(302, Location="file:///etc/passwd"),
            "/headers": lambda: self._send(
                200, json.dumps(dict(self.headers)).encode(), Content_Type="application/json"
            ),
            "/to-other-origin": lambda: self._send(
                302, Location=f"http://127.0.0.1:{port}/headers"
            ),
            "/to-same-origin": lambda: self._send(302, Location="/headers"),
            "/trickle": self._trickle,
        }
        if self.path.startswith("/flaky/"):
            key = self.path
            left = Partner.failures_left.setdefault(key, 2)
            if left:
                Partner.failures_left[key] = left - 1
                return self._send(503, b"busy", Retry_After="1")
            return self._send(200, b"recovered")
        routes.get(self.path, lambda: self._send(404, b"none"))()

    def _trickle(self) -> None:
        """A partner that sends its body a byte a second."""
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        for _ in range(100):
            try:
                self.wfile.write(b"x")
                self.wfile.flush()
            except OSError:
                return
            time.sleep(1)

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        if self.path == "/fail":
            return self._send(503, b"busy")
        self._send(201, body, Content_Type="application/json")


@pytest.fixture(scope="module")
def partner():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Partner)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def allow_localhost(settings):
    settings.PARTNER_API_ALLOWED_HOSTS = ["localhost", "*.partner.test"]
    settings.PARTNER_API_PRIVATE_HOSTS = ["localhost"]
    settings.PARTNER_API_MAX_RESPONSE_BYTES = 4096


def test_a_call_returns_status_and_body_but_no_headers(partner, allow_localhost) -> None:
    result = call_partner(f"{partner}/ok")
    assert (result["status"], result["ok"], result["body"]) == (200, True, {"hello": "partner"})
    assert "s3cr3t" not in json.dumps(result)
    assert call_partner(f"{partner}/to-ok")["body"] == {"hello": "partner"}
    echoed = call_partner(f"{partner}/echo", "POST", data={"n": 1})
    assert (echoed["status"], echoed["body"]) == (201, {"n": 1})


@pytest.mark.parametrize(
    ("path_or_url", "message"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("ftp://localhost/x", "only http and https"),
        ("http://127.0.0.1/ok", "not on the partner allow-list"),
        ("http://[::1]/ok", "not on the partner allow-list"),
        ("http://169.254.169.254/latest/meta-data", "not on the partner allow-list"),
        ("http://2130706433/ok", "not on the partner allow-list"),
        ("http://user:pw@localhost/ok", "credentials in the URL"),
        ("http://partner.test/ok", "not on the partner allow-list"),
        ("http://evilpartner.test/ok", "not on the partner allow-list"),
        ("/to-loopback", "not on the partner allow-list"),
        ("/to-metadata", "not on the partner allow-list"),
        ("/to-file", "only http and https"),
        ("/big", "larger than 4096 bytes"),
    ],
)
def test_forgery_attempts_are_refused(partner, allow_localhost, path_or_url, message) -> None:
    url = partner + path_or_url if path_or_url.startswith("/") else path_or_url
    with pytest.raises(PartnerCallRefused, match=message):
        call_partner(url)


def test_an_allowed_name_that_resolves_to_loopback_is_refused(partner, settings) -> None:
    settings.PARTNER_API_ALLOWED_HOSTS = ["localhost"]
    settings.PARTNER_API_PRIVATE_HOSTS = []
    with pytest.raises(PartnerCallRefused, match=r"resolves to a non-public address \(127.0.0.1\)"):
        call_partner(f"{partner}/ok")


def test_transient_failures_are_retryable_only_for_idempotent_methods(partner, allow_localhost):
    with pytest.raises(PartnerUnavailable) as error:
        call_partner(f"{partner}/flaky/direct")
    assert error.value.retry_after == 1.0
    with pytest.raises(PartnerCallRefused, match="POST is not retried"):
        call_partner(f"{partner}/fail", "POST", data={})
    with pytest.raises(PartnerCallRefused, match="method TRACE is not allowed"):
        call_partner(f"{partner}/ok", "TRACE")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_task_retries_after_retry_after_and_succeeds(worker, partner) -> None:
    result = external_api_call_async.delay(f"{partner}/flaky/task", timeout=5)
    outcome = result.get(timeout=patience(60))
    assert (outcome["status"], outcome["body"]) == (200, "recovered")
    assert f"id={result.id} outcome=retry" in worker.log()
    refused = external_api_call_async.delay("http://169.254.169.254/latest/meta-data")
    with pytest.raises(PartnerCallRefused):
        refused.get(timeout=patience(30))


def test_credentials_are_named_and_never_follow_a_redirect_to_another_origin(
    partner, allow_localhost, settings
) -> None:
    settings.PARTNER_API_ALLOWED_HOSTS += ["127.0.0.1"]
    settings.PARTNER_API_PRIVATE_HOSTS += ["127.0.0.1"]
    unusual = {"Ocp-Apim-Subscription-Key": "k2", "X-Acme-Sig": "s1", "X-Client-Id": "c1"}
    settings.PARTNER_API_CREDENTIALS = {
        "acme": {"Authorization": "Bearer k3y", "X-Api-Key": "a1", **unusual}
    }
    same = call_partner(f"{partner}/to-same-origin", credentials="acme")["body"]
    assert (same["Authorization"], same["X-Api-Key"]) == ("Bearer k3y", "a1")
    assert all(same[name] == value for name, value in unusual.items())
    other = call_partner(
        f"{partner}/to-other-origin",
        headers={"Cookie": "s=1", "Accept": "application/json", "X-Tenant": "t1"},
        credentials="acme",
    )["body"]
    sent = {name.lower() for name in other}
    assert not sent & {"authorization", "x-api-key", "cookie", "x-tenant"}
    assert not sent & {name.lower() for name in unusual}  # whatever a credential is named
    assert other["Accept"] == "application/json"
    with pytest.raises(PartnerCallRefused, match="no partner credentials named 'nobody'"):
        call_partner(f"{partner}/ok", credentials="nobody")


def test_one_deadline_bounds_the_whole_call_however_slowly_the_partner_trickles(
    partner, allow_localhost
) -> None:
    started = time.monotonic()
    with pytest.raises(PartnerUnavailable, match=r"deadline|Timeout"):
        call_partner(f"{partner}/trickle", timeout=3)
    assert time.monotonic() - started < 4


def test_the_task_keeps_every_call_within_its_time_limit() -> None:
    from background_tasks.integration_tasks import PARTNER_CALL_MARGIN

    task = external_api_call_async
    assert task.soft_time_limit - PARTNER_CALL_MARGIN > 0
    assert task.soft_time_limit < task.time_limit


@pytest.mark.django_db
def test_a_subscription_may_name_only_its_own_clients_credentials(
    settings, django_capture_on_commit_callbacks
) -> None:
    """Client B's subscription naming client A's credentials (the report: B's ticket sent A's
    bearer token) is refused when saved, and, saved before the rule, fails without a call."""
    settings.PARTNER_API_ALLOWED_HOSTS = ["partner.example"]
    client_a, _ = factories.client_and_site()
    client_b, site_b = factories.client_and_site()
    settings.PARTNER_API_CREDENTIALS = {
        "a-cmms": {"client": client_a.code, "headers": {"Authorization": "Bearer A-token"}},
        "platform": {"Authorization": "Bearer platform-token"},  # the earlier shape: nobody's
    }
    subscription = PartnerSubscription(
        client=client_b,
        name="B's CMMS",
        event=PartnerEvent.TICKET_CREATED,
        url="https://partner.example/h",
        credentials="a-cmms",
    )
    with pytest.raises(ValidationError, match=r"a-cmms.* belong to another client"):
        subscription.full_clean()
    subscription.credentials = "platform"
    with pytest.raises(ValidationError, match=r"platform.* belong to no client"):
        subscription.full_clean()
    subscription.credentials = "a-cmms"
    subscription.save()  # as if saved before credentials belonged to clients
    category = factories.lookup("TICKETCATEGORY", "X")
    with django_capture_on_commit_callbacks() as enqueued:
        Ticket.objects.create(description="B's ticket", site=site_b, category=category)
    tasks = [getattr(getattr(c, "func", None), "__self__", None) for c in enqueued]
    assert external_api_call_async not in tasks  # no call at all
    (delivery,) = PartnerDelivery.objects.all()
    assert delivery.status == "FAILED" and "belong to another client" in delivery.error
    subscription.client = client_a
    subscription.full_clean()  # A's own subscription may name them


def test_every_attempt_of_one_call_carries_the_same_idempotency_key(partner, allow_localhost):
    """Where a call may reach the partner twice (a timeout after the partner acted, a
    partition), the partner recognises the repeat by its Idempotency-Key."""
    from apps.core.idempotency import side_effect_identity

    sent = [
        external_api_call_async.apply(args=(f"{partner}/headers",), task_id="call-1").get()
        for _ in range(2)
    ]
    other = external_api_call_async.apply(args=(f"{partner}/headers",), task_id="call-2").get()
    keys = [result["body"]["Idempotency-Key"] for result in (*sent, other)]
    assert keys[0] == keys[1] == side_effect_identity("partner:call-1") != keys[2]
