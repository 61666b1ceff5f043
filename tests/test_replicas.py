"""Three ``icalproxy serve`` replicas on one PostgreSQL store, behind no proxy: each is asked
directly. Under load while the upstream changes, every answer is a whole known version; a new
version reaches all three within a second of each other; a revocation is 410 on all three
within a second; kill -9 of the replica holding the pull lease → another pulls; PostgreSQL
stopped → they keep serving (no 5xx), /readyz says degraded, pulls go on in memory, and after
the restart everything is written without help."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from tests.harness import Daemon, Upstream, create_token, http, run_cli, wait_until
from tests.postgres import PgServer
from tests.support import FIXTURES

pytestmark = pytest.mark.slow
JOBS = (FIXTURES / "teamup-jobs.ics").read_bytes()
MARK = b"Building B"


def variant(n: int) -> bytes:
    return JOBS.replace(MARK, b"Building B%d" % n)


def served_variant(body: bytes) -> int | None:
    for n in range(100):
        if b"Building B%d" % n in body:
            return n
    return None


def write_config(folder: Path, upstream: Upstream, port: int, database: str) -> Path:
    config = folder / "config.yaml"
    config.write_text(
        "state_dir: state\n"
        f"store: 'postgresql://icalproxy:${{PGPASSWORD}}@127.0.0.1:{port}/{database}'\n"
        "sources:\n"
        f"  jobs: {{url: '{upstream.url}', every: 10s, timeout: 2, connect_timeout: 1, retries: 0}}\n"
        "feeds:\n"
        "  acme: {title: Acme, from: [jobs], where: {subcalendar: 'Client: Acme Corp'}}\n"
    )
    return config


def changed(upstream: Upstream, body: bytes, replicas: list[Daemon]) -> None:
    """The upstream changes and every replica is asked to pull now (only the lease holder does)."""
    upstream.state.set_body(body)
    for replica in replicas:
        replica.pull_now()


def serving(urls: list[str], n: int, replicas: list[Daemon]) -> bool:
    if all(served_variant(http(url)[2]) == n for url in urls):
        return True
    for replica in replicas:  # until the lease has moved, the pull is retried
        replica.pull_now()
    time.sleep(0.5)
    return False


def lease_holder(server: PgServer, database: str) -> str | None:
    with psycopg.connect(server.url(database), connect_timeout=3) as conn:
        row = conn.execute("SELECT holder FROM leases WHERE name = 'pull:jobs'").fetchone()
    return str(row[0]) if row else None


class Load:
    """Threads asking every replica in turn, counting statuses and the versions served."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.statuses: Counter[int] = Counter()
        self.variants: Counter[int | None] = Counter()
        self.torn = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(3)]

    def _run(self, offset: int) -> None:
        n = offset
        while not self._stop.is_set():
            url = self.urls[n % len(self.urls)]
            n += 1
            try:
                status, _, body = http(url, timeout=10)
            except OSError:
                self.statuses[-1] += 1
                continue
            self.statuses[status] += 1
            if status == 200:
                if not (body.startswith(b"BEGIN:VCALENDAR\r\n") and body.endswith(b"END:VCALENDAR\r\n")):
                    self.torn += 1
                self.variants[served_variant(body)] += 1

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)


def test_three_replicas_on_postgresql(
    pg_server: PgServer, upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = pg_server.new_database()
    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    upstream.state.mode = "ok"
    upstream.state.set_body(variant(0))
    config = write_config(tmp_path, upstream, pg_server.port, database)
    token = create_token(config, "acme")
    replicas = [Daemon(config, tmp_path).start(wait_ready=False) for _ in range(3)]
    urls = [f"{replica.base}/feed/{token}.ics" for replica in replicas]
    try:
        for replica in replicas:
            wait_until(lambda r=replica: r.ready()[0] == 200, timeout=30, what="replica ready")

        # Under load while the upstream changes: whole known versions only, never an error.
        with Load(urls) as load:
            for n in range(1, 4):
                changed(upstream, variant(n), replicas)
                wait_until(lambda n=n: all(served_variant(http(u)[2]) == n for u in urls), timeout=20)
        assert load.torn == 0 and set(load.statuses) == {200}, load.statuses
        assert set(load.variants) <= {0, 1, 2, 3}, load.variants

        # A new version reaches every replica within a second of the first.
        changed(upstream, variant(4), replicas)
        first_seen: dict[str, float] = {}
        deadline = time.monotonic() + 20
        while len(first_seen) < 3 and time.monotonic() < deadline:
            for url in urls:
                if url not in first_seen and served_variant(http(url)[2]) == 4:
                    first_seen[url] = time.monotonic()
            time.sleep(0.02)
        assert len(first_seen) == 3
        spread = max(first_seen.values()) - min(first_seen.values())
        assert spread < 1.0, spread

        # kill -9 of the lease holder: another replica takes the lease and pulls on.
        holder = lease_holder(pg_server, database)
        victim = next(r for r in replicas if r.process is not None and holder == _holder_of(r, holder))
        victim.stop(signal.SIGKILL)
        alive = [r for r in replicas if r is not victim]
        upstream.state.set_body(variant(5))
        alive_urls = [f"{replica.base}/feed/{token}.ics" for replica in alive]
        wait_until(
            lambda: all(served_variant(http(u)[2]) == 5 for u in alive_urls), timeout=40, what="takeover"
        )
        assert lease_holder(pg_server, database) != holder

        # PostgreSQL stopped: serving goes on, /readyz says degraded, pulls go on in memory.
        with Load(alive_urls) as load:
            pg_server.stop()
            wait_until(lambda: all(r.ready()[1]["degraded"] for r in alive), timeout=20, what="degraded")
            changed(upstream, variant(6), alive)
            wait_until(lambda: serving(alive_urls, 6, alive), timeout=30, what="pulls with the store away")
            pg_server.start()
            wait_until(lambda: not any(r.ready()[1]["degraded"] for r in alive), timeout=30, what="recovery")
        assert load.torn == 0 and set(load.statuses) == {200}, load.statuses
        assert all(r.ready()[0] == 200 for r in alive)
        with psycopg.connect(pg_server.url(database), connect_timeout=3) as conn:
            rows = conn.execute(
                "SELECT version, body, last_modified FROM feed_versions WHERE feed = 'acme' ORDER BY version"
            ).fetchall()
        assert served_variant(bytes(rows[-1][1])) == 6, "the pull made while the database was away is stored"
        assert [row[2] for row in rows] == sorted(row[2] for row in rows)  # versions never go back

        # A token revoked on one replica's store is 410 on all of them within a second.
        token_id = run_cli(config, "token", "list").splitlines()[1].split()[0]
        run_cli(config, "token", "revoke", token_id)
        revoked = time.monotonic()
        wait_until(lambda: all(http(u)[0] == 410 for u in alive_urls), timeout=1.0, what="410 on all")
        assert time.monotonic() - revoked < 1.0
    finally:
        for replica in replicas:
            if replica.process is not None and replica.process.poll() is None:
                replica.stop()
        if pg_server.process is None:
            pg_server.start()
    for replica in replicas:
        log = replica.log()
        assert token not in log and pg_server.password not in log
        assert "Traceback" not in log, log[-3000:]


def _holder_of(replica: Daemon, holder: str | None) -> str | None:
    assert replica.process is not None
    return holder if holder is not None and holder.endswith(f":{replica.process.pid}") else None
