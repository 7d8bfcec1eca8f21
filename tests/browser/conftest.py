"""The browser suite: Debian's headless Chromium, driven by Selenium through the system
chromedriver, against pytest-django's live server and the suite's real worker and SMTP sink.

Mailed links must open in the browser, so the worker has to write links to the live server:
its address is fixed here, before any worker starts, and SITE_URL follows it (workers take
their environment from this process). Chromium resolves no host but loopback, so a page that
reached for the internet would show it. A failing test leaves a screenshot of its page in
`$INTELLIWIZ_VAR_DIR/browser-failures/` (var/test/ under ./dev test); with
README_SCREENSHOTS=1 the suite refreshes the README's screenshots in docs/screenshots/.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.conftest import BASE_DIR, SmtpSink


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if not os.environ.get("DJANGO_LIVE_TEST_SERVER_ADDRESS"):
    os.environ["DJANGO_LIVE_TEST_SERVER_ADDRESS"] = f"127.0.0.1:{_free_port()}"
LIVE_ADDRESS = os.environ["DJANGO_LIVE_TEST_SERVER_ADDRESS"]
os.environ["SITE_URL"] = f"http://{LIVE_ADDRESS}"  # read by every worker started from here

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
DESKTOP = (1280, 900)
PHONE = (390, 844)
PASSWORD = "correct-horse-battery"
FAILURES_DIR = Path(settings.VAR_DIR) / "browser-failures"
README_SHOTS_DIR = BASE_DIR / "docs" / "screenshots"


class Page:
    """One Chromium tab on the live server, with the few gestures the tests need."""

    def __init__(self, driver, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url.rstrip("/")

    # --- getting around --------------------------------------------------------------------
    def open(self, path_or_url: str) -> None:
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url
        self.driver.get(url)

    @property
    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base_url)

    def text(self) -> str:
        return self.driver.find_element("tag name", "body").text

    def find(self, css: str):
        return self.driver.find_element("css selector", css)

    def find_all(self, css: str) -> list:
        return self.driver.find_elements("css selector", css)

    def wait_until(self, check: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = check()
            except Exception:  # an element between renders: try again
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
            time.sleep(0.1)

    def wait_for(self, css: str, timeout: float = 30):
        return self.wait_until(
            lambda: next(e for e in self.find_all(css) if e.is_displayed()), timeout, css
        )

    # --- forms -------------------------------------------------------------------------------
    def fill(self, name: str, value: str) -> None:
        field = self.find(f"[name='{name}']")
        field.clear()
        field.send_keys(value)

    def set_value(self, name: str, value: str) -> None:
        """Set an input the way its picker would (date, datetime-local, month: ISO values)."""
        field = self.find(f"[name='{name}']")
        self.driver.execute_script(
            "arguments[0].value = arguments[1];"
            "arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
            field,
            value,
        )

    def choose(self, name: str, *labels: str) -> None:
        """Pick the options whose text starts with each label (one, or several if multiple)."""
        from selenium.webdriver.support.ui import Select

        select = Select(self.find(f"select[name='{name}']"))
        for label in labels:
            option = next(o for o in select.options if o.text.strip().startswith(label))
            select.select_by_visible_text(option.text)

    def tick(self, name: str, *labels: str) -> None:
        """Tick the boxes of `name` whose label starts with each of `labels`."""
        for label in labels:
            box = next(
                b
                for b in self.find_all(f"input[type=checkbox][name='{name}']")
                if b.find_element("xpath", "./..").text.strip().startswith(label)
            )
            if not box.is_selected():
                box.click()

    def click(self, css: str) -> None:
        self.find(css).click()

    def press(self, label: str) -> None:
        """Click the visible button (or button-like link) that says `label`."""
        candidates = self.find_all("button") + self.find_all("[role=button]")
        button = next(b for b in candidates if b.is_displayed() and b.text.strip() == label)
        button.click()

    # --- what the page holds -----------------------------------------------------------------
    def fetch_bytes(self, url: str) -> bytes:
        """Fetch `url` with the page's session, as its download link would."""
        encoded = self.driver.execute_async_script(
            """
            const done = arguments[arguments.length - 1];
            fetch(arguments[0]).then(r => r.arrayBuffer()).then(buffer => {
              let text = "";
              for (const byte of new Uint8Array(buffer)) text += String.fromCharCode(byte);
              done(btoa(text));
            }).catch(error => done("ERROR " + error));
            """,
            url,
        )
        assert not encoded.startswith("ERROR"), encoded
        return base64.b64decode(encoded)

    def resize(self, size: tuple[int, int]) -> None:
        self.driver.set_window_size(*size)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))
        return path

    def readme_shot(self, name: str) -> None:
        """Refresh docs/screenshots/<name>.png when README_SCREENSHOTS=1."""
        if os.environ.get("README_SCREENSHOTS") != "1":
            return
        # The whole page, up to a readable length, at the window's width.
        size = self.driver.get_window_size()
        inner = self.driver.execute_script("return window.innerHeight")
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(size["width"], min(height, 1600) + size["height"] - inner)
        try:
            self.screenshot(README_SHOTS_DIR / f"{name}.png")
        finally:
            self.driver.set_window_size(size["width"], size["height"])

    # --- people --------------------------------------------------------------------------------
    def sign_in(self, person, password: str = PASSWORD) -> None:
        self.open("/accounts/login/")
        self.fill("username", person.loginid)
        self.fill("password", password)
        self.press("Sign in")
        # In the header (behind the Menu button on a phone).
        self.wait_until(lambda: self.find_all("[data-testid=signed-in]"), what="signed in")

    def sign_out(self) -> None:
        toggle = self.find_all(".menu-toggle")
        if toggle and toggle[0].is_displayed():  # a phone: the header's menu holds it
            toggle[0].click()
        self.press("Sign out")
        self.wait_until(lambda: self.path.startswith("/accounts/login/"), what="the sign-in page")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the suite (a fresh profile), through the system driver."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(
            "chromium and chromedriver are needed (./dev test installs Debian's chromium and "
            "chromium-driver where it may)"
        )
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="helper-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
        "--lang=en-US",
        # Offline: any host but loopback fails to resolve, so a page loading from a CDN breaks.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(chromium, live_server, request) -> Iterator[Page]:
    """The browser at desktop size, signed out, on the live server."""
    assert live_server.url.endswith(LIVE_ADDRESS), (live_server.url, LIVE_ADDRESS)
    chromium.set_window_size(*DESKTOP)
    tab = Page(chromium, live_server.url)
    tab.open("/accounts/login/")
    chromium.delete_all_cookies()
    yield tab
    if getattr(request.node, "call_failed", False):
        shot = tab.screenshot(FAILURES_DIR / f"{request.node.name}.png")
        print(f"\nbrowser screenshot of the failure: {shot}")
    chromium.delete_all_cookies()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call" and report.failed:
        item.call_failed = True  # the page fixture saves a screenshot while tearing down
    return report


def mails_to(sink: SmtpSink, address: str, count: int = 1, timeout: float = 45):
    deadline = time.monotonic() + timeout
    found: list[EmailMessage] = []
    while time.monotonic() < deadline:
        found = [message for recipients, message in sink.messages if address in recipients]
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{count} mail(s) to {address} did not arrive; got {len(found)}")


def plain_text(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def link_in(message: EmailMessage, marker: str) -> str:
    return next(
        word for word in plain_text(message).split() if marker in word and "://" in word
    ).rstrip(".")
