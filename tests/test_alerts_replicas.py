"""Double-booking alerts from two ``icalproxy serve`` replicas on one PostgreSQL store, each
with a state folder of its own: a conflict is alerted once, not once per replica; when the
replica that renders stops, the one that takes over knows what was already reported (no
repeat) and alerts only what is new."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.harness import Daemon, Upstream, replica_config, wait_until
from tests.postgres import PgServer
from tests.test_conflicts_daemon import HOOK_SECRET, Receiver, _jobs

pytestmark = pytest.mark.slow


@pytest.fixture
def hook() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def write_config(folder: Path, upstream: Upstream, pg: PgServer, database: str, hook: str) -> Path:
    return replica_config(
        folder,
        upstream,
        pg.port,
        database,
        "crew",
        "alerts:\n"
        f'  webhook: {{url: "{hook}", format: json, first_retry: 1s, max_retry: 2s, timeout: 5}}\n'
        "feeds:\n"
        "  sam:\n"
        "    title: Sam\n"
        "    where: {who: Sam}\n"
        "    profile: technician\n"
        "    conflicts: {window: {past: 1d, future: 30d}}\n",
    )


def conflicts(receiver: Receiver) -> list[str]:
    return [body["id"] for body in receiver.accepted if body.get("event") == "conflict"]


def test_a_conflict_is_alerted_once_by_replicas_and_not_again_after_a_takeover(
    pg_server: PgServer,
    upstream: Upstream,
    hook: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database = pg_server.new_database()
    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    day = (datetime.now(UTC) + timedelta(days=2)).replace(
        hour=0, minute=0, second=0, microsecond=0, tzinfo=None
    )
    upstream.state.mode = "ok"
    upstream.state.set_body(_jobs(day, with_second_pair=False))
    configs = [write_config(tmp_path / name, upstream, pg_server, database, hook.url) for name in "ab"]
    replicas = [Daemon(config, tmp_path).start(wait_ready=False) for config in configs]
    try:
        for replica in replicas:
            wait_until(lambda r=replica: r.ready()[0] == 200, timeout=30, what="replica ready")
        wait_until(lambda: len(conflicts(hook)) >= 1, timeout=30, what="the conflict alerted")
        for replica in replicas:  # every replica renders now (each one asked to pull)
            replica.pull_now()
        time.sleep(3)
        assert len(conflicts(hook)) == 1, hook.accepted
        first = conflicts(hook)[0]

        # The replica that pulls and renders stops; the other takes over and finds a new pair.
        renderer = next(r for r in replicas if '"conflict_detected"' in r.log())
        survivor = next(r for r in replicas if r is not renderer)
        renderer.stop(signal.SIGTERM)
        upstream.state.set_body(_jobs(day, with_second_pair=True))

        def two() -> bool:
            survivor.pull_now()
            return len(conflicts(hook)) >= 2

        wait_until(two, timeout=40, what="the new conflict alerted after the takeover")
        time.sleep(3)
        ids = conflicts(hook)
        assert len(ids) == 2 and ids[0] == first and ids[1] != first, hook.accepted
        assert survivor.ready()[1]["alerts"]["pending"] == 0
    finally:
        for replica in replicas:
            if replica.process is not None and replica.process.poll() is None:
                replica.stop()
    for replica in replicas:
        log = replica.log()
        assert HOOK_SECRET not in log and pg_server.password not in log
        assert "Traceback" not in log, log[-3000:]
