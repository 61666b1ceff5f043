"""CalDAV push through the running daemon (a subprocess), against real servers on 127.0.0.1:
kill -9 in the middle of the first sync, then a restart; a wrong password in /readyz and logs."""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from icalproxy.core.split import split_feed
from tests.harness import Daemon, create_token, http, wait_until
from tests.push_servers import KINDS, PASSWORD, USER, CalDAVServer
from tests.support import generated_feed
from tests.test_push_contract import OWN_EVENT

pytestmark = pytest.mark.slow


@pytest.fixture(params=KINDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CalDAVServer]:
    caldav_server = CalDAVServer(request.param, tmp_path / request.param).start()
    yield caldav_server
    caldav_server.stop()


def write_config(folder: Path, server: CalDAVServer, events: int) -> Path:
    data, _ = generated_feed(events, seed=11)
    (folder / "jobs.ics").write_bytes(data)
    config = folder / "config.yaml"
    config.write_text(
        "state_dir: state\n"
        "sources: {jobs: {url: jobs.ics, every: 1h}}\n"
        "feeds:\n"
        "  tech:\n"
        "    title: Tech\n"
        "    profile: technician\n"
        "    push:\n"
        f'      - caldav: {{url: "{server.url}", username: {USER}, password: "${{JO_CALDAV_PASSWORD}}"}}\n'
    )
    return config


def push_status(daemon: Daemon) -> dict:
    return daemon.ready()[1].get("push", {}).get("tech#0", {})


def stored_rows(state: Path) -> int:
    try:
        with sqlite3.connect(state / "push.db", timeout=5) as db:
            return int(db.execute("SELECT count(*) FROM push_resource WHERE etag IS NOT NULL").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not created yet


def test_kill_9_mid_sync_then_restart_leaves_no_duplicates_and_no_losses(
    server: CalDAVServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JO_CALDAV_PASSWORD", PASSWORD)
    server.put("dentist.ics", OWN_EVENT)
    config = write_config(tmp_path, server, 160)
    daemon = Daemon(config, tmp_path).start(wait_ready=False)
    try:
        wait_until(lambda: stored_rows(tmp_path / "state") >= 12, timeout=60, what="some resources pushed")
        daemon.stop(signal.SIGKILL)
    finally:
        daemon.stop()
    expected = stored_rows(tmp_path / "state")
    token = create_token(config, "tech")
    restarted = Daemon(config, tmp_path).start()
    try:
        wait_until(
            lambda: (
                push_status(restarted).get("pending_changes") == 0
                and push_status(restarted).get("last_success") is not None
            ),
            timeout=240,
            what="the resumed sync",
        )
        status = push_status(restarted)
        assert status["last_error"] is None and status["url"] == server.url
        metrics = restarted.metrics()
        assert 'icalproxy_push_pending{target="tech#0"} 0' in metrics
        assert 'icalproxy_push_requests_total{target="tech#0",method="PUT",status="201"}' in metrics
        resources = split_feed(_served(restarted, token))
    finally:
        restarted.stop()
    objects = server.objects()
    uids = []
    for _, data in objects.values():
        uids.append(next(line[4:].strip() for line in data.splitlines() if line.startswith("UID:")))
    assert uids.count("my-dentist") == 1  # the technician's own event survived
    uids.remove("my-dentist")
    assert sorted(uids) == sorted(resources)  # every event once: no duplicates, no losses
    assert expected < len(resources)  # the kill really came mid-sync


def _served(daemon: Daemon, token: str) -> bytes:
    """The feed as the daemon serves it."""
    status, _, body = http(f"{daemon.base}/feed/{token}.ics")
    assert status == 200, status
    return body


def test_wrong_password_shows_in_readyz_and_logs_without_the_password(
    server: CalDAVServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "WRONG-caldav-SECRET"
    monkeypatch.setenv("JO_CALDAV_PASSWORD", wrong)
    daemon = Daemon(write_config(tmp_path, server, 20), tmp_path).start()
    try:
        wait_until(lambda: push_status(daemon).get("last_error") is not None, timeout=30, what="push error")
        status, _, raw = http(daemon.ops + "/readyz")
        assert status == 200  # feeds are served: a failing push target does not make them unready
        report = json.loads(raw)["push"]["tech#0"]
        assert "authentication failed" in report["last_error"]
        assert report["consecutive_failures"] >= 1 and report["next_attempt"] is not None
        metrics = daemon.metrics()
    finally:
        daemon.stop()
    failures = [event for event in daemon.events() if event.get("event") == "push_failed"]
    assert failures and "authentication failed" in failures[0]["reason"]
    for text in (raw.decode(), daemon.log(), metrics):
        assert wrong not in text and PASSWORD not in text


def test_a_push_target_added_by_a_reload_starts_syncing(
    server: CalDAVServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JO_CALDAV_PASSWORD", PASSWORD)
    config = write_config(tmp_path, server, 20)
    with_push = config.read_text()
    config.write_text(with_push.split("    push:\n")[0])
    token = create_token(config, "tech")
    daemon = Daemon(config, tmp_path).start()
    try:
        assert "push" not in daemon.ready()[1]
        config.write_text(with_push)
        wait_until(lambda: push_status(daemon).get("pending_changes") == 0, timeout=30, what="first push")
        resources = split_feed(_served(daemon, token))
    finally:
        daemon.stop()
    assert len(server.objects()) == len(resources)
