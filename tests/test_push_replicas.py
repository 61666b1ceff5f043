"""CalDAV push from two ``icalproxy serve`` replicas on one PostgreSQL store, each with a state
folder of its own, into a real Radicale on 127.0.0.1: one replica pushes (it holds the
target's push lease), the other stands by and writes nothing. A replica holding the push
lease but not the pull lease pushes the versions it follows from the store. When the pushing
replica dies (kill -9), the other takes over from the shared rows once the lease has run out
and pushes the next change in place: no duplicate, no orphan, no name "taken" by ourselves."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from icalproxy.core.split import split_feed
from tests.harness import Daemon, Upstream, create_token, http, replica_config, wait_until
from tests.postgres import PgServer
from tests.push_servers import PASSWORD, USER, CalDAVServer
from tests.support import ROOT
from tests.test_push_contract import OWN_EVENT
from tests.test_replicas import served_variant, variant

pytestmark = pytest.mark.slow


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[CalDAVServer]:
    server = CalDAVServer("radicale", tmp_path / "radicale").start()
    yield server
    server.stop()


def write_config(folder: Path, upstream: Upstream, pg: PgServer, database: str, caldav: CalDAVServer) -> Path:
    return replica_config(
        folder,
        upstream,
        pg.port,
        database,
        "jobs",
        "feeds:\n"
        "  jo:\n"
        "    title: Jo\n"
        "    profile: technician\n"
        "    where: {subcalendar: 'Client: Acme Corp'}\n"
        "    push:\n"
        f'      - caldav: {{url: "{caldav.url}", username: {USER}, password: "${{JO_CALDAV_PASSWORD}}"}}\n',
    )


def push_status(daemon: Daemon) -> dict:
    return daemon.ready()[1].get("push", {}).get("jo#0", {})


def synced(daemon: Daemon) -> bool:
    status = push_status(daemon)
    settled = status.get("pending_changes") == 0 and bool(status.get("last_success"))
    return status.get("standby") is False and settled


def ours(server: CalDAVServer) -> dict[str, str]:
    """href → calendar data of the resources icalproxy wrote (the user's own event aside)."""
    return {href: data for href, (_, data) in server.objects().items() if "dentist" not in href}


def test_one_replica_pushes_and_another_takes_over_from_the_shared_rows(
    pg_server: PgServer,
    upstream: Upstream,
    radicale: CalDAVServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database = pg_server.new_database()
    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    monkeypatch.setenv("JO_CALDAV_PASSWORD", PASSWORD)
    radicale.put("dentist.ics", OWN_EVENT)
    upstream.state.mode = "ok"
    upstream.state.set_body(variant(0))
    configs = [write_config(tmp_path / name, upstream, pg_server, database, radicale) for name in ("a", "b")]
    token = create_token(configs[0], "jo")
    replicas = [Daemon(config, tmp_path).start(wait_ready=False) for config in configs]
    try:
        for replica in replicas:
            wait_until(lambda r=replica: r.ready()[0] == 200, timeout=30, what="replica ready")
        wait_until(lambda: any(synced(r) for r in replicas), timeout=60, what="one replica pushed")
        pusher = next(r for r in replicas if synced(r))
        other = next(r for r in replicas if r is not pusher)
        wait_until(lambda: push_status(other).get("standby") is True, timeout=20, what="a standby")
        assert push_status(other).get("last_sync") is None, "a standby replica must not sync"
        first = ours(radicale)
        marked = sorted(href for href, data in first.items() if served_variant(data.encode()) == 0)
        assert marked, "the resource the changes will reach is there"

        def shows(n: int, puller: Daemon) -> bool:
            puller.pull_now()  # only the holder of the pull lease pulls
            now = ours(radicale)
            return all(served_variant(now.get(href, "").encode()) == n for href in marked)

        # A one-off `push --once` leaves a target that a running replica pushes to it.
        once = subprocess.run(
            [sys.executable, "-m", "icalproxy.cli", "push", "--once", "--config", str(configs[0])],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert once.returncode == 1 and "a running replica pushes it" in once.stderr, once.stderr
        assert sorted(ours(radicale)) == sorted(first)

        # The push lease moves to the replica that does not pull: it pushes what it follows.
        renderer = next(r for r in replicas if holder_of(r) == lease(pg_server, database, "pull:jobs"))
        follower = next(r for r in replicas if r is not renderer)
        set_push_lease(pg_server, database, holder_of(follower))
        wait_until(lambda: synced(follower), timeout=30, what="the follower took the push lease")
        wait_until(lambda: push_status(renderer).get("standby") is True, timeout=30, what="standby")
        upstream.state.set_body(variant(1))
        wait_until(lambda: shows(1, renderer), timeout=30, what="a change pushed by a replica that follows")

        # kill -9 of the pushing replica: its lease runs out (30 s), and the other takes over.
        follower.stop(signal.SIGKILL)
        upstream.state.set_body(variant(2))
        wait_until(lambda: shows(2, renderer), timeout=60, what="the change pushed after the takeover")
        wait_until(lambda: synced(renderer), timeout=30, what="the new pusher settled")
        after = ours(radicale)
        assert sorted(after) == sorted(first), "updated in place: no duplicate, no orphan"
        assert "dentist.ics" in "".join(radicale.objects()), "the user's own event is left alone"
        status, _, served = http(f"{renderer.base}/feed/{token}.ics")
        assert status == 200 and served_variant(served) == 2
        assert len(after) == len(split_feed(served)), "one resource per event of the feed"
    finally:
        for replica in replicas:
            if replica.process is not None and replica.process.poll() is None:
                replica.stop()
    assert "push_lease_taken" in renderer.log()
    for replica in replicas:
        log = replica.log()
        assert "push_name_taken" not in log, "a replica took its own resource for someone else's"
        assert "Traceback" not in log, log[-3000:]
        assert PASSWORD not in log and pg_server.password not in log and token not in log


def holder_of(replica: Daemon) -> str:
    assert replica.process is not None
    return f"{socket.gethostname()}:{replica.process.pid}"


def lease(pg: PgServer, database: str, name: str) -> str | None:
    with psycopg.connect(pg.url(database), connect_timeout=3) as conn:
        row = conn.execute("SELECT holder FROM leases WHERE name = %s", (name,)).fetchone()
    return str(row[0]) if row else None


def set_push_lease(pg: PgServer, database: str, holder: str) -> None:
    """Hand every push lease to ``holder`` (as if the replica holding them had lost them)."""
    with psycopg.connect(pg.url(database), connect_timeout=3) as conn:
        conn.execute("UPDATE leases SET holder = %s WHERE name LIKE 'push:%%'", (holder,))
