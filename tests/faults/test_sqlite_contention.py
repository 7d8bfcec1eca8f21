"""The embedded default under load from web, worker and beat at once: SQLite never answers
"database is locked", no request fails, and every task completes."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.faults.conftest import Stack
from tests.faults.harness import SmtpSink, free_port, wait_for_port
from tests.faults.test_mail_faults import assert_each_mailed_once, seed_and_mail, wait_for_mails
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(600)
DOCUMENT = {"title": "Shift log", "document": [{"heading": "Night", "paragraphs": ["Quiet."]}]}


def signed_in(base: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/admin/login/", timeout=30)
    response = session.post(
        f"{base}/admin/login/?next=/admin/",
        data={
            "username": "ops",
            "password": "drill-password",
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        timeout=30,
    )
    assert response.status_code == 200 and "/admin/login/" not in response.url
    return session


@pytest.mark.parametrize("on", ["embedded"], indirect=True)
def test_web_worker_and_beat_together_never_find_the_database_locked(
    on: Stack, sink: SmtpSink, record
) -> None:
    stack = on
    stack.driver("create-user", "ops", "drill-password")
    stack.driver("beat-every", "1")
    port = free_port()
    web = stack._process("web", ["manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"])
    wait_for_port(port, timeout=60)
    stack.worker(concurrency=2)
    stack.beat()
    tickets = seed_and_mail(stack, 200)
    base = f"http://127.0.0.1:{port}"
    statuses: list[int] = []
    jobs: list[str] = []
    lock = threading.Lock()

    def browse() -> None:
        session = signed_in(base)
        token = session.cookies["csrftoken"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            created = session.post(
                f"{base}/reports/pdf", json=DOCUMENT, headers={"X-CSRFToken": token}, timeout=60
            )
            dashboard = session.get(f"{base}/dashboard/", timeout=60)
            with lock:
                statuses.extend([created.status_code, dashboard.status_code])
                if created.status_code == 202:
                    jobs.append(created.json()["job"])

    browsers = [threading.Thread(target=browse) for _ in range(3)]
    for browser in browsers:
        browser.start()
    for browser in browsers:
        browser.join(120)

    wait_for_mails(sink, 200, timeout=240)
    wait_until(
        lambda: stack.driver("report")["pdf_jobs"].get("DONE", 0) == len(jobs),
        240,
        step=2,
        what="every PDF job done",
    )
    report = stack.driver("report")
    logs = [process.log() for process in stack.processes] + [web.log()]
    locked = sum(log.count("database is locked") for log in logs)
    record(
        requests=len(statuses),
        failed_requests=len([s for s in statuses if s not in {200, 202}]),
        pdf_jobs=len(jobs),
        heartbeats=report["heartbeat_runs"],
        database_locked=locked,
        dead_letters=len(report["dead_letters"]),
    )
    assert jobs and set(statuses) <= {200, 202}, sorted(set(statuses))
    assert report["heartbeat_runs"] >= 10
    assert report["dead_letters"] == []
    assert_each_mailed_once(sink, tickets)
    assert locked == 0
