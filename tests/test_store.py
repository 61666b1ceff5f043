"""The state store's contract, one set of tests run against both backends (``store_url``:
SQLite in a temp state_dir, and a fresh database on a private PostgreSQL server)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from icalproxy.daemon.alert_state import AlertState, Change, SharedAlertState
from icalproxy.daemon.push_state import PushState, Row, SharedPushState
from icalproxy.daemon.store import (
    LATEST,
    FeedBody,
    SourceSnapshot,
    SqlStore,
    StatusEntry,
    TokenUse,
    open_sql_store,
)
from icalproxy.daemon.store.sql import KEEP_VERSIONS
from icalproxy.errors import StateError, TokenError
from tests import legacy_format
from tests.harness import Daemon, Upstream, http
from tests.store_worker import body_of
from tests.support import ROOT


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> SqlStore:
    opened = open_sql_store(store_url, tmp_path)
    yield opened  # type: ignore[misc]
    opened.close()


def feed(name: str, body: bytes, last_modified: int = 1000) -> FeedBody:
    return FeedBody(name, body, f'"{name}-{len(body)}"', last_modified, body.count(b"BEGIN:VEVENT"))


def test_tokens_hashed_revocable_and_counted(store: SqlStore) -> None:
    before = store.tokens_generation()
    alice, alice_token = store.create_token("acme", "Alice")
    _, bob_token = store.create_token("acme", "Bob")
    assert store.tokens_generation() > before
    assert store.lookup_token(alice_token) == ("valid", "acme")
    assert store.lookup_token("A" * 43) == ("unknown", None)
    assert alice_token not in repr(store.tokens()) and alice.sha256 in repr(store.tokens())
    generation = store.tokens_generation()
    revoked, already = store.revoke_token(alice.id)
    assert not already and revoked.revoked is not None
    assert store.tokens_generation() > generation
    assert store.lookup_token(alice_token) == ("revoked", "acme")
    assert store.lookup_token(bob_token) == ("valid", "acme")
    again, already = store.revoke_token(alice.id)
    assert already and again.revoked == revoked.revoked
    with pytest.raises(TokenError):
        store.revoke_token("nosuchid")
    assert sorted(record.label for record in store.tokens()) == ["Alice", "Bob"]


def test_feed_versions_are_monotonic_and_a_torn_newest_is_skipped(store: SqlStore) -> None:
    versions = [store.install_feeds([feed("acme", b"v%d" % n), feed("busy", b"b%d" % n)]) for n in range(5)]
    assert versions == [[n, n] for n in range(1, 6)]
    latest = store.latest_feeds()
    assert (latest["acme"].version, latest["acme"].body) == (5, b"v4")
    assert [meta.version for meta in store.feed_versions("acme")] == [5, 4, 3][:KEEP_VERSIONS]
    assert store.latest_feeds(["busy"]).keys() == {"busy"}
    with store.db.transaction() as tx:  # the newest version's bytes torn behind the store's back
        tx.run("UPDATE feed_versions SET body = ? WHERE feed = 'acme' AND version = 5", (b"v",))
    assert store.latest_feeds()["acme"].body == b"v3"  # the version before it, never the torn one
    assert store.install_feeds([feed("acme", b"v5")]) == [6]


def test_sources_shrink_guard_and_acceptance(store: SqlStore) -> None:
    assert store.load_source("jobs") is None
    snapshot = SourceSnapshot(
        "jobs", b"BEGIN:VCALENDAR", '"e1"', "Tue, 01 Dec 2026 10:00:00 GMT", 5.0, 4.0, 11
    )
    store.save_source(snapshot)
    assert store.load_source("jobs") == snapshot
    store.save_shrink_guard("jobs", 2, 1)
    loaded = store.load_source("jobs")
    assert loaded is not None and (loaded.held_pulls, loaded.held_events) == (2, 1)
    assert store.take_shrink_acceptance("jobs") is False
    store.accept_shrink("jobs")
    store.accept_shrink("jobs")
    assert store.take_shrink_acceptance("jobs") is True
    assert store.take_shrink_acceptance("jobs") is False


def test_the_tables_of_the_other_features(store: SqlStore) -> None:
    entry = StatusEntry("acme", "jobs", "uid-1", "", "Scheduled", "We will arrive.", 10.0, 10.0)
    store.record_status([entry])
    store.record_status([StatusEntry(**{**_fields(entry), "last_seen": 20.0})])
    assert store.status_history("acme") == [StatusEntry(**{**_fields(entry), "last_seen": 20.0})]
    assert store.status_history("acme", "other") == []

    store.record_token_use([TokenUse("t1", 100.0, "Google")])
    store.record_token_use([TokenUse("t1", 50.0, "Apple")])  # an older batch never wins
    assert store.token_uses()["t1"] == TokenUse("t1", 100.0, "Google")

    first = store.visible_version("acme", "uid-1", "hash-a", now=1.0)
    assert (first.sequence, first.first_seen) == (0, 1.0)
    assert store.visible_version("acme", "uid-1", "hash-a", now=9.0) == first  # seen before: same
    assert store.visible_versions("acme", [("uid-1", "hash-b"), ("uid-2", "hash-a")], now=2.0) == {
        "uid-1": store.visible_version("acme", "uid-1", "hash-b"),
        "uid-2": store.visible_version("acme", "uid-2", "hash-a"),
    }
    assert store.visible_version("acme", "uid-1", "hash-b").sequence == 1

    assert store.take_lease("pull:jobs", "replica-1", 30) is True
    assert store.take_lease("pull:jobs", "replica-2", 30) is False
    assert store.take_lease("pull:jobs", "replica-1", 30) is True  # renewed by its holder
    assert store.lease_holder("pull:jobs") == "replica-1"
    store.release_lease("pull:jobs", "replica-1")
    assert store.take_lease("pull:jobs", "replica-2", 30) is True


def _fields(entry: StatusEntry) -> dict[str, object]:
    return {name: getattr(entry, name) for name in entry.__slots__}  # type: ignore[attr-defined]


def test_forward_migrations_keep_data_and_refuse_a_newer_schema(store_url: str, tmp_path: Path) -> None:
    old = open_sql_store(store_url, tmp_path, migrate=False)
    assert old.migrate(target=1) == [1]
    assert old.schema_version() == 1
    _, token = old.create_token("acme", "before the upgrade")
    old.install_feeds([feed("acme", b"v1")])
    with pytest.raises(StateError):
        old.take_lease("pull:jobs", "replica-1", 30)  # no leases table at schema 1
    old.close()

    upgraded = open_sql_store(store_url, tmp_path)  # what a start-up does
    assert upgraded.schema_version() == LATEST
    assert upgraded.lookup_token(token) == ("valid", "acme")
    assert upgraded.latest_feeds()["acme"].body == b"v1"
    assert upgraded.take_lease("pull:jobs", "replica-1", 30) is True
    assert upgraded.migrate() == []  # idempotent
    with upgraded.db.transaction() as tx:
        tx.run("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(LATEST + 1),))
    upgraded.close()
    with pytest.raises(StateError, match="newer than this icalproxy"):
        open_sql_store(store_url, tmp_path)


def test_migrate_command(store_url: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"state_dir: state\nstore: '{store_url}'\n"
        f"sources: {{jobs: {{url: {ROOT}/fixtures/teamup-jobs.ics}}}}\n"
        "feeds: {acme: {title: Acme, from: [jobs]}}\n"
    )
    run = [sys.executable, "-m", "icalproxy.cli", "migrate", "--config", str(config)]
    first = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert f"schema 0 → {LATEST}" in first
    second = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert f"schema {LATEST} is current" in second
    if store_url != "sqlite":
        password = store_url.split(":")[2].split("@", maxsplit=1)[0]
        assert password not in first + second and "***" in first


def test_concurrent_writers_lose_nothing(store_url: str, tmp_path: Path) -> None:
    open_sql_store(store_url, tmp_path).close()
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.store_worker", "tokens", store_url, str(tmp_path), "30"], cwd=ROOT
        )
        for _ in range(4)
    ]
    assert [worker.wait(120) for worker in workers] == [0, 0, 0, 0]
    store = open_sql_store(store_url, tmp_path)
    try:
        tokens = store.tokens()
        assert len(tokens) == 120 and len({record.id for record in tokens}) == 120
        versions = [meta.version for meta in store.feed_versions("shared")]
        assert versions == [60, 59, 58][:KEEP_VERSIONS]  # 4 × 15 installs, numbered without a gap
    finally:
        store.close()


@pytest.mark.slow
def test_kill_9_mid_transaction_leaves_the_old_or_the_new_state(store_url: str, tmp_path: Path) -> None:
    """A writer installing both feeds ``a`` and ``b`` in each transaction is killed at random
    moments: every time, both feeds are at the same whole version, at least the last one the
    writer saw committed."""
    open_sql_store(store_url, tmp_path).close()
    rng = random.Random(7)
    for _ in range(8):
        writer = subprocess.Popen(
            [sys.executable, "-m", "tests.store_worker", "install", store_url, str(tmp_path), "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None
        committed = int(writer.stdout.readline())  # it is writing now
        time.sleep(rng.uniform(0.0, 0.3))
        writer.send_signal(signal.SIGKILL)
        out, _ = writer.communicate(timeout=30)
        committed = max([committed, *(int(line) for line in out.split())])
        store = open_sql_store(store_url, tmp_path)
        try:
            latest = store.latest_feeds()
            version = latest["a"].version
            assert latest["b"].version == version >= committed
            assert version <= committed + 1  # the one in flight, if its commit landed
            for name in ("a", "b"):
                assert latest[name].body == body_of(name, version)
        finally:
            store.close()


def test_state_dir_of_the_file_format_is_imported_once(store_url: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    alice, alice_token = legacy_format.new_token("acme", "Alice", "2026-11-01T10:00:00Z")
    old, old_token = legacy_format.new_token("acme", "Old", "2026-10-01T10:00:00Z", "2026-10-02T10:00:00Z")
    legacy_format.save_tokens(state, [alice, old])
    source = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    legacy_format.save_state(
        state / "sources",
        "jobs",
        source,
        {"etag": '"up1"', "last_modified": None, "fetched": 7.0, "changed": 6.0, "events": 11},
    )
    legacy_format.save_state(
        state / "feeds", "acme", b"ACME", {"etag": '"a1"', "last_modified": 1700, "events": 3}
    )
    (state / "feeds" / "torn.state").write_bytes(b'{"bytes":99}\nshort')
    legacy_format.accept_shrink(state, "jobs")

    store = open_sql_store(store_url, state)
    try:
        assert store.lookup_token(alice_token) == ("valid", "acme")
        assert store.lookup_token(old_token) == ("revoked", "acme")
        assert [(r.id, r.created, r.revoked) for r in store.tokens()] == [
            (old.id, old.created, old.revoked),
            (alice.id, alice.created, None),
        ]
        snapshot = store.load_source("jobs")
        assert snapshot is not None and (snapshot.body, snapshot.etag, snapshot.events) == (
            source,
            '"up1"',
            11,
        )
        acme = store.latest_feeds()["acme"]
        assert (acme.body, acme.etag, acme.last_modified, acme.events) == (b"ACME", '"a1"', 1700, 3)
        assert "torn" not in store.latest_feeds()
        assert store.take_shrink_acceptance("jobs") is True
        store.revoke_token(alice.id)
    finally:
        store.close()
    again = open_sql_store(store_url, state)  # the files are still there, but not imported again
    try:
        assert again.lookup_token(alice_token) == ("revoked", "acme")
        assert again.take_shrink_acceptance("jobs") is False
    finally:
        again.close()
    assert (state / "tokens.json").exists() and (state / "feeds" / "acme.state").exists()


def test_daemon_on_a_state_dir_of_the_file_format_serves_it_at_once(
    tmp_path: Path, upstream: Upstream
) -> None:
    """Upgrade in place: the old state folder's feed is served byte for byte with the upstream
    down, with its ETag and Last-Modified, and its tokens work (a revoked one stays revoked)."""
    state = tmp_path / "state"
    alice, alice_token = legacy_format.new_token("acme", "Alice", "2026-11-01T10:00:00Z")
    old, old_token = legacy_format.new_token("acme", "Old", "2026-10-01T10:00:00Z", "2026-10-02T10:00:00Z")
    legacy_format.save_tokens(state, [alice, old])
    served = (ROOT / "tests" / "golden" / "example" / "out" / "acme.ics").read_bytes()
    legacy_format.save_state(state / "feeds", "acme", served, {"etag": '"old"', "last_modified": 1764000000})
    upstream.state.mode = "500"
    config = tmp_path / "config.yaml"
    config.write_text(
        "state_dir: state\n"
        f"sources: {{jobs: {{url: '{upstream.url}', every: 1h, retries: 0}}}}\n"
        "feeds: {acme: {title: Acme, from: [jobs], where: {subcalendar: 'Client: Acme Corp'}}}\n"
    )
    daemon = Daemon(config, tmp_path).start()
    try:
        status, headers, body = http(f"{daemon.base}/feed/{alice_token}.ics")
        assert (status, body, headers["ETag"]) == (200, served, '"old"')
        assert headers["Last-Modified"] == "Mon, 24 Nov 2025 16:00:00 GMT"
        assert http(f"{daemon.base}/feed/{old_token}.ics")[0] == 410
    finally:
        daemon.stop()
    assert '"state_imported"' in daemon.log()


def test_compose_example_runs_three_replicas_on_postgresql_behind_a_proxy() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "compose.replicas.example.yaml").read_text())
    services = compose["services"]
    replicas = [name for name in services if name.startswith("icalproxy-")]
    assert len(replicas) == 3
    for name in replicas:
        environment = services[name]["environment"]
        assert environment["ICALPROXY_STORE"].startswith("postgresql://")
        assert "${PGPASSWORD}" not in environment["ICALPROXY_STORE"]  # libpq reads PGPASSWORD
    caddyfile = (ROOT / "Caddyfile.replicas.example").read_text()
    assert all(f"{name}:8080" in caddyfile for name in replicas)
    assert services["proxy"]["volumes"][0].startswith("./Caddyfile.replicas.example:")
    assert "store: ${ICALPROXY_STORE:-sqlite}" in (ROOT / "config.example.yaml").read_text()


def test_replicas_agree_on_one_shared_secret(store: SqlStore) -> None:
    assert store.shared_secret("installation_key", "aa" * 32) == "aa" * 32
    assert store.shared_secret("installation_key", "bb" * 32) == "aa" * 32  # the first one stays


def test_an_older_write_never_replaces_a_newer_one(store: SqlStore) -> None:
    """Two replicas that both pulled while the database was away write when it is back, the
    newer one first: the older render and the older snapshot are not installed over them."""
    assert store.install_feeds([feed("acme", b"newer", last_modified=2000)]) == [1]
    assert store.install_feeds([feed("acme", b"older", last_modified=1500), feed("busy", b"b")]) == [0, 1]
    assert store.latest_feeds()["acme"].body == b"newer"
    store.save_source(SourceSnapshot("jobs", b"new", fetched=20.0, events=2))
    store.save_source(SourceSnapshot("jobs", b"old", fetched=10.0, events=1))
    snapshot = store.load_source("jobs")
    assert snapshot is not None and snapshot.body == b"new"


def test_the_shared_push_state_keeps_the_semantics_of_a_replicas_own(store: SqlStore, tmp_path: Path) -> None:
    """Intents, the write sequence and listings as push_state.PushState has them (its tests
    are in test_push.py), in the store replicas share; a replica's push.db is taken in once."""
    own = PushState(tmp_path / "own" / "push.db")
    own.save("t|old", Row("u0", "/cal/u0.ics", '"e0"', "h0"))
    own.save_seen("t|old", [], "token-0", own.mark())
    own.close()
    state = SharedPushState.importing(store, tmp_path / "own")
    assert state.rows("t|old") == {"u0": Row("u0", "/cal/u0.ics", '"e0"', "h0")}
    assert state.sync_token("t|old") == "token-0"
    state.forget("t|old", "u0")
    SharedPushState.importing(store, tmp_path / "own")  # once only: a forgotten row stays gone
    assert state.rows("t|old") == {}

    state.save("t", Row("u1", "/cal/u1.ics", None, None))  # an intent, before its PUT
    assert state.rows("t")["u1"].intent
    state.save("t", Row("u1", "/cal/u1.ics", '"e1"', "h1"))
    mark = state.mark()
    state.save("t", Row("u2", "/cal/u2.ics", '"e2"', "h2"))  # written after the listing was asked for
    state.save_seen("t", [Row("u1", "/cal/u1.ics", '"e1b"', None)], "token-1", mark)
    rows = state.rows("t")
    assert rows["u1"] == Row("u1", "/cal/u1.ics", '"e1b"', None) and not rows["u1"].fresh
    assert rows["u2"].fresh, "a row written after the listing's mark must show in the next one"
    assert state.sync_token("t") == "token-1" and state.rows("other") == {}
    state.save_seen("t", [], "token-2", state.mark(), ["u2"])
    assert not state.rows("t")["u2"].fresh
    assert state.mark() > mark


def test_the_shared_alert_state_reports_each_conflict_once(store: SqlStore, tmp_path: Path) -> None:
    """alert_state.AlertState's semantics (tests in test_conflicts_daemon.py) in the store
    replicas share, where two replicas may find the same conflict; alerts.db is taken in once."""
    own = AlertState(tmp_path / "own" / "alerts.db")
    own.record("sam", [Change("c0", 50.0, {"id": "c0"})], [], [], alert=True, now=1.0)
    own.close()
    state = SharedAlertState.importing(store, tmp_path / "own")
    SharedAlertState.importing(store, tmp_path / "own")  # once only
    assert state.known("sam") == {"c0": 50.0} and state.pending() == 1
    head = state.head()
    assert head is not None and (head.event, head.id, head.payload) == ("conflict", "c0", {"id": "c0"})
    state.delivered(head.seq)

    new = [Change("c1", 100.0, {"id": "c1", "text": "Sam twice"})]
    state.record("sam", new, [], [], alert=True, now=2.0)
    state.record("sam", new, [], [], alert=True, now=3.0)  # another replica found it too
    assert state.known("sam") == {"c0": 50.0, "c1": 100.0} and state.feeds() == {"sam"}
    assert state.pending() == 1, "a conflict is queued once, whoever finds it"
    head = state.head()
    assert head is not None and head.payload == {"id": "c1", "text": "Sam twice"} and head.due == 2.0
    state.postpone(head.seq, 9.0)
    again = state.head()
    assert again is not None and (again.seq, again.attempts, again.due) == (head.seq, 1, 9.0)
    state.delivered(head.seq)

    state.record("sam", [], ["c1"], ["c0"], alert=True, now=4.0)
    state.record("sam", [], ["c1"], [], alert=True, now=5.0)  # resolved: announced once
    resolved = state.head()
    assert (
        resolved is not None and (resolved.event, resolved.id) == ("resolved", "c1") and state.pending() == 1
    )
    assert resolved.payload == {"id": "c1", "text": "Sam twice"}, "a resolved alert repeats what was reported"
    state.record(
        "sam", [Change("c2", 1.0, {})], [], [], alert=False, now=6.0
    )  # no webhook: known, not queued
    assert state.pending() == 1 and "c2" in state.known("sam")
    state.forget("sam")
    assert state.known("sam") == {} and state.feeds() == set()
