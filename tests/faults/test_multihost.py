"""The guarantees across hosts: the database, the broker, the cache and the mail server each on a
host of their own, two workers and two beats on theirs, configured only by environment
variables as docker-compose.yml does (tests/faults/hosts.py builds the hosts).

Faults between hosts: partitions (shorter and longer than the broker's visibility timeout,
with mails in their SMTP session), a worker cut off from the database only, the leading beat
cut off, clocks five minutes ahead and behind, a solo pool running a task longer than the
broker lease, the broker Redis restarted (with and without its append-only file), the cache
cut off. Each row counts mails as a mail client does: by Message-ID.

Times are compressed: a 12 s broker lease, 20 s task time limits (35 s claim leases), dead
peers noticed within 6 s, retries scaled by 0.05.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BASE_DIR, CELERY, worker_argv
from tests.faults.conftest import _STACK_VARIABLES
from tests.faults.harness import PostgresCluster, RedisInstance
from tests.faults.hosts import (
    Network,
    SmtpOnHost,
    can_build_hosts,
    on_shifted_clock,
    remove_leftovers,
)
from tests.support.processes import ManagedProcess
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.multihost, pytest.mark.timeout(600)]

ROLES = ["db", "broker", "cache", "smtp", "ctl", "w1", "w2", "b1", "b2"]
VISIBILITY_TIMEOUT = 12
TASK_TIME_LIMIT = 20  # a claim's lease: this plus 15 s
CLOCK_SKEW = 300  # five minutes


@dataclass
class Deployment:
    network: Network
    folder: Path
    postgres: PostgresCluster
    broker: RedisInstance
    cache: RedisInstance
    smtp: SmtpOnHost
    env: dict[str, str]
    processes: list[ManagedProcess] = field(default_factory=list)

    def driver(self, *args: str, **env: str) -> Any:
        completed = self.network.hosts["ctl"].run(
            [sys.executable, "-m", "tests.faults.driver", *args],
            cwd=BASE_DIR,
            env=self.env | env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if completed.returncode:
            raise AssertionError(f"driver {args} failed:\n{completed.stderr[-4000:]}")
        return json.loads(completed.stdout.strip().splitlines()[-1])

    def _process(
        self, host: str, name: str, argv: list[str], env: dict[str, str], clock_offset: int = 0
    ) -> ManagedProcess:
        process = ManagedProcess(
            argv,
            on_shifted_clock(self.env | env, clock_offset),
            self.folder / f"{name}-{len(self.processes)}.log",
            run_on=self.network.hosts[host].argv,
        )
        self.processes.append(process)
        return process

    def worker(
        self, host: str, *, pool: str = "prefork", clock_offset: int = 0, **env: str
    ) -> ManagedProcess:
        argv = worker_argv(f"{host}-{uuid.uuid4().hex[:4]}@{host}", 2)
        argv[argv.index("prefork")] = pool
        process = self._process(host, host, argv, env, clock_offset)
        process.wait_for_log("ready.", timeout=120)
        return process

    def beat(self, host: str) -> ManagedProcess:
        pidfile = self.folder / f"{host}-{uuid.uuid4().hex[:4]}.pid"
        return self._process(
            host, host, [*CELERY, "beat", "-l", "INFO", "--pidfile", str(pidfile)], {}
        )

    def mails(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.smtp.received.read_text().splitlines()]

    def seed_and_mail(self, count: int, *, copies: int = 1) -> list[int]:
        tickets = self.driver("seed", str(count))["tickets"]
        for _ in range(copies):
            self.driver(
                "enqueue-ticket-mails", *map(str, tickets), "--time-limit", str(TASK_TIME_LIMIT)
            )
        return tickets

    def outcome(self, tickets: list[int]) -> dict[str, int]:
        """Counted as a mail client counts: copies under one Message-ID are one mail."""
        expected = {f"Ticket #{pk} is created" for pk in tickets}
        ids_by_ticket: dict[str, set[str]] = {}
        received = self.mails()
        for mail in received:
            ids_by_ticket.setdefault(mail["subject"].split(" at site")[0], set()).add(
                mail["message_id"]
            )
        distinct = sum(len(ids) for ids in ids_by_ticket.values())
        return {
            "enqueued": len(tickets),
            "mailed": len(expected & set(ids_by_ticket)),
            "duplicates": distinct - len(ids_by_ticket),
            "copies": len(received) - distinct,
            "lost": len(expected - set(ids_by_ticket)),
        }

    def wait_for_tickets(self, tickets: list[int], timeout: float) -> None:
        wait_until(
            lambda: self.outcome(tickets)["lost"] == 0,
            timeout,
            step=0.5,
            what=f"mails of {len(tickets)} tickets",
        )

    def reset(self) -> None:
        self.stop_all()
        self.network.heal()
        self.smtp.answer_data_after(0)
        self.smtp.received.write_text("")
        self.driver("reset")

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()
        self.processes.clear()


@pytest.fixture(scope="session")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    why_not = can_build_hosts()
    if why_not:
        if os.environ.get("INTELLIWIZ_REQUIRE_SERVICES") == "1":
            pytest.fail(why_not)
        pytest.skip(why_not)
    remove_leftovers()
    folder = tmp_path_factory.mktemp("hosts")
    folder.chmod(0o755)
    network = Network()
    network.create(ROLES)
    base = {k: v for k, v in os.environ.items() if k not in _STACK_VARIABLES}
    postgres = broker = cache = smtp = None
    try:
        postgres = PostgresCluster(
            host=network.hosts["db"], trusted_subnet=f"{network.subnet}.0/24"
        )
        postgres.start()
        broker = RedisInstance(folder / "broker", host=network.hosts["broker"])
        broker.start()
        cache = RedisInstance(folder / "cache", host=network.hosts["cache"])
        cache.start()
        smtp = SmtpOnHost(network.hosts["smtp"], folder / "smtp", base, BASE_DIR)
        env = base | {
            "DJANGO_SETTINGS_MODULE": "intelliwiz_config.settings",
            "INTELLIWIZ_VAR_DIR": str(folder / "var"),
            "DATABASE_URL": postgres.create_database("intelliwiz"),
            "CELERY_BROKER_URL": broker.url(0),
            "CACHE_URL": cache.url(0),
            "EMAIL_HOST": network.hosts["smtp"].address,
            "EMAIL_PORT": "2525",
            "EMAIL_TIMEOUT": "10",
            "DEFAULT_FROM_EMAIL": "intelliwiz@facility.test",
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "BEAT_LOCK_LEASE_SECONDS": "5",
            "RESULT_STORE_PATIENCE_SECONDS": "5",
            "LEDGER_RECORD_PATIENCE_SECONDS": "10",
            "NETWORK_DEAD_PEER_SECONDS": "6",
            "NETWORK_CONNECT_SECONDS": "2",
            "RETRY_TIME_SCALE": "0.05",
            "PYTHONUNBUFFERED": "1",
        }
        deployment = Deployment(network, folder, postgres, broker, cache, smtp, env)
        migrated = network.hosts["ctl"].run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert migrated.returncode == 0, migrated.stderr[-4000:]
        yield deployment
        deployment.stop_all()
    finally:
        for service in (smtp, cache, broker):
            if service is not None:
                service.stop() if isinstance(service, SmtpOnHost) else service.kill()
        if postgres is not None:
            postgres.remove()
        network.destroy()


@pytest.fixture
def hosts(deployment: Deployment) -> Iterator[Deployment]:
    deployment.reset()
    yield deployment
    deployment.stop_all()
    deployment.network.heal()


def _logged_at(line: str) -> float:
    """When a log line was written (2026-12-03 07:12:34,626 INFO ...)."""
    seconds, _, milliseconds = line[:23].partition(",")
    return time.mktime(time.strptime(seconds, "%Y-%m-%d %H:%M:%S")) + int(milliseconds) / 1000


def _resumed_after(worker: ManagedProcess, healed_at_wall: float) -> float | None:
    """Seconds from the heal to the worker's first task run that ended after it."""
    for line in worker.log().splitlines():
        if "task_run " in line and "outcome=success" in line:
            stamp = _logged_at(line)
            if stamp >= healed_at_wall:
                return round(stamp - healed_at_wall, 1)
    return None


def _assert_once(
    hosts: Deployment, tickets: list[int], record, **figures: object
) -> dict[str, int]:
    time.sleep(3)  # a late copy would arrive now
    report = hosts.driver("report")
    outcome = hosts.outcome(tickets)
    record(**outcome, dead_letters=len(report["dead_letters"]), **figures)
    assert (outcome["duplicates"], outcome["lost"]) == (0, 0), outcome
    assert report["dead_letters"] == [], report["dead_letters"]
    return outcome


@pytest.mark.parametrize("seconds", [8, 30], ids=["shorter-than-the-lease", "past-the-lease"])
def test_a_worker_cut_off_from_database_and_broker_with_mails_in_flight(
    hosts: Deployment, seconds: int, record
) -> None:
    hosts.smtp.answer_data_after(1.0)  # every mail is a second in its SMTP session
    cut_off = hosts.worker("w1")
    other = hosts.worker("w2")
    tickets = hosts.seed_and_mail(40)
    wait_until(lambda: len(hosts.mails()) >= 6, 120, what="the first mails")
    hosts.network.cut("w1", "db", "broker")
    time.sleep(seconds)
    hosts.network.heal()
    healed_at, healed_at_wall = time.monotonic(), time.time()
    hosts.wait_for_tickets(tickets, timeout=240)
    recovery = round(time.monotonic() - healed_at, 1)
    # Whether the cut-off worker takes work again: the only worker left. A worker whose main
    # process gave up meanwhile (billiard's "Unrecoverable error" when a time limit, late
    # because its event loop waited on the broker, strikes a child mid-write) is started again,
    # as the deployment's supervisor does (compose: restart: unless-stopped).
    other.stop()
    restarted = cut_off.proc.poll() is not None
    if restarted:
        cut_off = hosts.worker("w1")
    more = hosts.seed_and_mail(6)
    hosts.wait_for_tickets(more, timeout=120)
    wait_until(lambda: _resumed_after(cut_off, healed_at_wall) is not None, 60, what="resumed")
    _assert_once(
        hosts,
        tickets + more,
        record,
        recovery_s=recovery,
        resumed_after_s=_resumed_after(cut_off, healed_at_wall),
        worker_restarted=restarted,
    )


def test_a_worker_cut_off_from_the_database_only_pauses(hosts: Deployment, record) -> None:
    hosts.smtp.answer_data_after(0.2)
    cut_off = hosts.worker("w1")
    hosts.worker("w2")
    tickets = hosts.seed_and_mail(60)
    wait_until(lambda: len(hosts.mails()) >= 6, 120, what="the first mails")
    hosts.network.cut("w1", "db")
    cut_at = time.monotonic()
    cut_off.wait_for_log("worker_paused reason=database_unreachable", timeout=30)
    paused_after = round(time.monotonic() - cut_at, 1)
    retries_before = cut_off.log().count("outcome=retry")
    time.sleep(20)
    retries_while_paused = cut_off.log().count("outcome=retry") - retries_before
    hosts.network.heal()
    healed_at = time.monotonic()
    cut_off.wait_for_log("worker_resumed reason=database_back", timeout=60)
    hosts.wait_for_tickets(tickets, timeout=240)
    _assert_once(
        hosts,
        tickets,
        record,
        paused_after_s=paused_after,
        retries_while_paused=retries_while_paused,
        resumed_after_s=round(time.monotonic() - healed_at, 1),
    )
    assert retries_while_paused <= 4, retries_while_paused  # what it held when it paused


PERIOD = 2  # seconds between heartbeats (production's minute, compressed)


def _sends(*beats: ManagedProcess) -> list[float]:
    return sorted(
        _logged_at(line)
        for beat in beats
        for line in beat.log().splitlines()
        if "Sending due task worker-heartbeat-every-minute" in line
    )


def test_the_leading_beat_cut_off_sends_no_period_twice_when_it_returns(
    hosts: Deployment, record
) -> None:
    hosts.driver("beat-every", str(PERIOD))
    leader = hosts.beat("b1")
    leader.wait_for_log("beat_lock_acquired", timeout=90)
    standby = hosts.beat("b2")
    time.sleep(4 * PERIOD)
    started = time.time()
    hosts.network.cut("b1", "db", "broker")
    cut_at = time.monotonic()
    standby.wait_for_log("beat_lock_acquired", timeout=60)
    takeover = round(time.monotonic() - cut_at, 1)
    time.sleep(20)
    hosts.network.heal()
    time.sleep(8 * PERIOD)  # the old leader is back, and must stand by
    ended = time.time()
    sends = [stamp for stamp in _sends(leader, standby) if started <= stamp <= ended]
    gaps = [later - earlier for earlier, later in itertools.pairwise(sends)]
    record(
        periods=round((ended - started) / PERIOD, 1),
        sends=len(sends),
        closest_sends_s=round(min(gaps), 2),
        recovery_s=takeover,
    )
    assert min(gaps) > PERIOD / 2, gaps  # never two sends for one period
    assert "beat_lock_lost" in leader.log() or "beat_lock_unavailable" in leader.log()


@pytest.mark.parametrize("offset", [CLOCK_SKEW, -CLOCK_SKEW], ids=["ahead", "behind"])
def test_a_worker_with_its_clock_five_minutes_off(hosts: Deployment, offset: int, record) -> None:
    hosts.smtp.answer_data_after(1.0)  # claims stay live while the skewed worker looks at them
    skewed = hosts.worker("w2", clock_offset=offset)
    wait_until(
        lambda: any(w.startswith("w2-") for w in hosts.driver("report")["workers"]),
        60,
        what="the skewed worker's heartbeat",
    )
    hosts.worker("w1")
    # Every mail is enqueued twice: two runs race for each ledger key, one on each clock.
    tickets = hosts.seed_and_mail(30, copies=2)
    hosts.wait_for_tickets(tickets, timeout=300)
    health = hosts.driver("health")
    outcome = _assert_once(hosts, tickets, record, clock_offset_s=offset)
    assert outcome["copies"] == 0, outcome
    assert "clock_skew" in skewed.log()
    # /healthz names it (no beat runs here, so the report is unhealthy on that count anyway).
    assert any("w2-" in warning and "clock" in warning for warning in health["degraded"])


def test_a_solo_worker_running_past_the_broker_lease_keeps_its_message(
    hosts: Deployment, record
) -> None:
    hosts.smtp.answer_data_after(2.5 * VISIBILITY_TIMEOUT)
    solo = hosts.worker("w1", pool="solo", EMAIL_TIMEOUT="60")
    (ticket,) = hosts.driver("seed", "1")["tickets"]
    task_id = hosts.driver("enqueue-ticket-mails", str(ticket))["task_ids"][0]
    wait_until(lambda: task_id in solo.log(), 60, what="the solo worker taking the mail")
    other = hosts.worker("w2")  # a live worker that would take an expired message
    hosts.wait_for_tickets([ticket], timeout=120)
    wait_until(lambda: f"id={task_id} outcome=success" in solo.log(), 60, what="success")
    outcome = _assert_once(hosts, [ticket], record, held_s=2.5 * VISIBILITY_TIMEOUT)
    assert outcome["copies"] == 0, outcome
    assert task_id not in other.log(), "the held message was delivered to the other worker"


def test_the_broker_restarted_keeps_its_backlog_with_its_append_only_file(
    hosts: Deployment, record
) -> None:
    tickets = hosts.seed_and_mail(50)  # waiting: no worker yet
    hosts.broker.kill()
    hosts.broker.start(appendonly=True)
    restarted_at = time.monotonic()
    hosts.worker("w1")
    hosts.wait_for_tickets(tickets, timeout=180)
    _assert_once(hosts, tickets, record, recovery_s=round(time.monotonic() - restarted_at, 1))


def test_a_broker_without_persistence_is_refused_in_production_and_its_loss_reported(
    hosts: Deployment, record
) -> None:
    try:
        hosts.broker.kill()
        hosts.broker.start(appendonly=False)
        # A production worker will not run on it.
        production = {
            "INTELLIWIZ_ENV": "production",
            "DJANGO_SECRET_KEY": "k3y-" + "".join(chr(97 + (i * 7) % 26) for i in range(60)),
            "DJANGO_ALLOWED_HOSTS": "intelliwiz.example",
            "SITE_URL": "https://intelliwiz.example",
            "DJANGO_DEBUG": "false",
        }
        refused = hosts._process(
            "w1", "w1-production", worker_argv("w1-production@w1", 1), env=production
        )
        assert refused.proc.wait(120) != 0
        assert "unsafe broker" in refused.log() and "appendonly yes" in refused.log()
        # Where it runs anyway, a restart empties it: nothing can bring the messages back,
        # and /healthz says they are gone.
        hosts.driver("health")  # the marker is set
        tickets = hosts.seed_and_mail(20)
        hosts.broker.kill()
        hosts.broker.start(appendonly=False)
        health = hosts.driver("health")
        outcome = hosts.outcome(tickets)
        record(**outcome, reported=health["status"], lost_reported=True)
        assert health["checks"]["broker"].get("data_lost_at")
        assert any("lost its data" in warning for warning in health["degraded"])
    finally:
        hosts.broker.kill()
        hosts.broker.start(appendonly=True)


def test_a_worker_cut_off_from_the_cache_retries_and_loses_nothing(
    hosts: Deployment, record
) -> None:
    hosts.smtp.answer_data_after(0.2)
    cut_off = hosts.worker("w1")
    hosts.worker("w2")
    tickets = hosts.seed_and_mail(40)
    wait_until(lambda: len(hosts.mails()) >= 6, 120, what="the first mails")
    hosts.network.cut("w1", "cache")
    warming = hosts.driver("enqueue-cache-warming", "4")["task_ids"]
    time.sleep(20)
    hosts.network.heal()
    healed_at = time.monotonic()
    hosts.wait_for_tickets(tickets, timeout=240)
    wait_until(
        lambda: hosts.driver("task-states", *warming)["states"] == ["SUCCESS"] * len(warming),
        120,
        what="cache warming done",
    )
    _assert_once(
        hosts,
        tickets,
        record,
        cache_warming_retries=cut_off.log().count("cache_warming_scheduled") - len(warming),
        recovery_s=round(time.monotonic() - healed_at, 1),
    )
