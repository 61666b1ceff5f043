"""Conflicts in the running daemon: /readyz, /metrics, logs once per conflict, and webhook
alerts delivered once per new and once per resolved conflict, across receiver outages and
restarts. The daemon runs as a subprocess; the receiver is aiohttp on 127.0.0.1."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from icalproxy.config.model import Alerts, Webhook
from icalproxy.daemon.alert_state import AlertState, Change
from icalproxy.daemon.alerts import ConflictWatch, WebhookSender, webhook_body
from icalproxy.daemon.metrics import Metrics
from tests.harness import Daemon, free_port, http, wait_until
from tests.support import calendar

HOOK_SECRET = "SECRETHOOKTOKEN0123456789"


class Receiver:
    """A webhook receiver that answers 500 while ``failing`` is set."""

    def __init__(self) -> None:
        self.port = free_port()
        self.failing = False
        self.accepted: list[dict] = []
        self.attempts = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{HOOK_SECRET}"

    def start(self) -> Receiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/{secret}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.json()
        if self.failing or request.match_info["secret"] != HOOK_SECRET:
            return web.Response(status=500, text="down")
        self.accepted.append(body)
        return web.Response(status=204)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def _jobs(day: datetime, with_second_pair: bool) -> bytes:
    """Sam's jobs two days from now: one double booking, and (optionally) a second one."""

    def stamp(hour: int, minute: int = 0) -> str:
        return (day + timedelta(hours=hour, minutes=minute)).strftime("%Y%m%dT%H%M%SZ")

    events = [
        f"UID:D1\nDTSTAMP:20261130T070000Z\nDTSTART:{stamp(8)}\nDTEND:{stamp(10)}\nSUMMARY:Boiler\n"
        "LOCATION:Hafenstraße 12\nX-TEAMUP-WHO:Sam",
        f"UID:D2\nDTSTAMP:20261130T070000Z\nDTSTART:{stamp(9)}\nDTEND:{stamp(11)}\nSUMMARY:Pump\n"
        "LOCATION:Hafenstraße 12\nX-TEAMUP-WHO:Sam",
    ]
    if with_second_pair:
        events += [
            f"UID:D3\nDTSTAMP:20261130T070000Z\nDTSTART:{stamp(13)}\nDTEND:{stamp(14)}\nSUMMARY:Valve\n"
            "LOCATION:Bergedorf\nX-TEAMUP-WHO:Sam",
            f"UID:D4\nDTSTAMP:20261130T070000Z\nDTSTART:{stamp(13, 30)}\nDTEND:{stamp(15)}\nSUMMARY:Tap\n"
            "LOCATION:Bergedorf\nX-TEAMUP-WHO:Sam",
        ]
    return calendar(*events)


def _write_config(folder: Path, url: str) -> Path:
    config = folder / "config.yaml"
    config.write_text(
        f"""
state_dir: {folder / "state"}
sources:
  crew: {{url: {folder / "crew.ics"}, every: 1h}}
alerts:
  webhook: {{url: "{url}", format: json, first_retry: 1s, max_retry: 2s, timeout: 5}}
feeds:
  sam:
    title: Sam
    where: {{who: Sam}}
    profile: technician
    conflicts: {{window: {{past: 1d, future: 30d}}}}
"""
    )
    return config


def _ready_conflicts(daemon: Daemon) -> dict:
    return daemon.ready()[1]["feeds"]["sam"].get("conflicts") or {"count": None, "ids": []}


def test_alerts_survive_outage_and_restart_and_are_never_repeated(
    tmp_path: Path, receiver: Receiver
) -> None:
    today = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    day = today + timedelta(days=2)
    (tmp_path / "crew.ics").write_bytes(_jobs(day, with_second_pair=True))
    config = _write_config(tmp_path, receiver.url)
    receiver.failing = True

    # 1. The receiver is down: the daemon finds both conflicts, logs each once, keeps retrying.
    first = Daemon(config, tmp_path).start()
    try:
        wait_until(lambda: _ready_conflicts(first)["count"] == 2, what="two conflicts in /readyz")
        wait_until(lambda: receiver.attempts >= 3, timeout=30, what="retried deliveries")
        ids = set(_ready_conflicts(first)["ids"])
        _, _, metrics = http(first.ops + "/metrics")
        assert 'icalproxy_conflicts{feed="sam",kind="overlap"} 2' in metrics.decode()
        assert 'icalproxy_alerts_total{result="failed"}' in metrics.decode()
        readiness = first.ready()[1]
        assert readiness["alerts"]["pending"] == 2 and readiness["alerts"]["last_error"] == "HTTP 500"
    finally:
        first.stop()
    detected = [e for e in first.events() if e.get("event") == "conflict_detected"]
    assert sorted(e["id"] for e in detected) == sorted(ids)
    assert {e["kind"] for e in detected} == {"overlap"}
    assert not receiver.accepted

    # 2. Back up, after a restart: each alert arrives exactly once; nothing is logged as new again.
    receiver.failing = False
    second = Daemon(config, tmp_path).start()
    try:
        wait_until(lambda: len(receiver.accepted) >= 2, timeout=30, what="queued alerts delivered")
        time.sleep(1.5)  # room for a duplicate to show up
        assert sorted(body["id"] for body in receiver.accepted) == sorted(ids)
        assert {body["event"] for body in receiver.accepted} == {"conflict"}
        body = next(b for b in receiver.accepted if {j["uid"] for j in b["jobs"]} == {"D1", "D2"})
        assert body["kind"] == "overlap" and body["feed"] == "sam"
        assert [job["summary"] for job in body["jobs"]] == ["Boiler", "Pump"]
        assert "'Boiler'" in body["text"] and "'Pump'" in body["text"]
        wait_until(lambda: second.ready()[1]["alerts"]["pending"] == 0, what="outbox empty")

        # 3. One double booking is fixed: one "resolved" alert, for that conflict only.
        (tmp_path / "crew.ics").write_bytes(_jobs(day, with_second_pair=False))
        second.send(signal.SIGUSR1)
        wait_until(lambda: len(receiver.accepted) >= 3, timeout=30, what="resolved alert")
        resolved = receiver.accepted[2]
        assert resolved["event"] == "resolved"
        assert {job["uid"] for job in resolved["jobs"]} == {"D3", "D4"}
        assert _ready_conflicts(second)["count"] == 1
        _, _, metrics = http(second.ops + "/metrics")
        assert 'icalproxy_conflicts{feed="sam",kind="overlap"} 1' in metrics.decode()
    finally:
        second.stop()
    assert not [e for e in second.events() if e.get("event") == "conflict_detected"]
    assert [e["id"] for e in second.events() if e.get("event") == "conflict_resolved"] == [resolved["id"]]

    # 4. Another restart: no repeat storm.
    third = Daemon(config, tmp_path).start()
    try:
        wait_until(lambda: _ready_conflicts(third)["count"] == 1, what="conflict restored")
        time.sleep(2)
        assert len(receiver.accepted) == 3
    finally:
        third.stop()
    for daemon in (first, second, third):
        assert HOOK_SECRET not in daemon.log()
        assert "/hooks/" not in daemon.log()


async def test_slack_format_and_backoff_against_a_failing_receiver(
    tmp_path: Path, receiver: Receiver
) -> None:
    from icalproxy.config.load import load_config
    from icalproxy.records import replace

    (tmp_path / "crew.ics").write_bytes(_jobs(datetime(2026, 12, 3), with_second_pair=False))
    config = load_config(_write_config(tmp_path, receiver.url), env={})
    hook = Webhook(url=receiver.url, format="slack", first_retry=timedelta(seconds=1))
    config = replace(config, alerts=Alerts(hook))
    state = AlertState.in_state_dir(tmp_path / "state")
    metrics = Metrics()
    watch = ConflictWatch(state, metrics)
    change = Change("c1", 2e9, {"id": "c1", "text": "sam: overlap: A × B"})
    state.record("sam", [change], [], [], alert=True, now=0)
    receiver.failing = True
    async with aiohttp.ClientSession() as session:
        sender = WebhookSender(state, lambda: config, session, metrics, watch)
        first = await sender.step()
        second = await sender.step()  # not yet due: waits, does not post
        assert first is not None and 0.8 <= first <= 1.2
        assert second is not None and 0 < second <= first
        assert receiver.attempts == 1 and watch.alert_error == "HTTP 500"
        head = state.head()
        assert head is not None and head.attempts == 1
        receiver.failing = False
        state.postpone(head.seq, 0)  # due now (attempts 2: the next backoff would be 4 s)
        assert await sender.step() == 0.0
    assert receiver.accepted == [{"text": ":warning: Conflict: sam: overlap: A × B"}]
    assert state.pending() == 0 and metrics.alerts == {"failed": 1, "delivered": 1}
    assert webhook_body("resolved", {"id": "c1", "feed": "sam"}, "json") == {
        "event": "resolved",
        "id": "c1",
        "feed": "sam",
    }
    state.close()


def test_alert_state_is_wal_with_a_schema_version(tmp_path: Path) -> None:
    import sqlite3

    state = AlertState.in_state_dir(tmp_path)
    state.record("sam", [Change("a", 5.0, {"id": "a"})], [], [], alert=False, now=0)
    state.close()
    again = AlertState.in_state_dir(tmp_path)
    assert again.known("sam") == {"a": 5.0} and again.pending() == 0
    again.record("sam", [], ["a"], [], alert=True, now=1)
    assert again.known("sam") == {}
    item = again.head()
    assert item is not None and (item.event, item.id, item.payload) == ("resolved", "a", {"id": "a"})
    again.close()
    db = sqlite3.connect(tmp_path / "alerts.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    db.execute("UPDATE schema_version SET version = 99")
    db.commit()
    db.close()
    from icalproxy.errors import StateError

    with pytest.raises(StateError, match="schema 99"):
        AlertState.in_state_dir(tmp_path)
