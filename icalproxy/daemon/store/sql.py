"""The state store over either database: small typed accessors, each one transaction.

Every method is blocking and thread-safe; the daemon calls them through ``Store`` (async, on
the store's own thread), the CLI and other features may call them directly.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from icalproxy.daemon.store.backend import Database, Tx
from icalproxy.daemon.store.records import (
    FeedBody,
    FeedMeta,
    Lookup,
    SourceSnapshot,
    StatusEntry,
    StoredFeed,
    TokenRecord,
    TokenUse,
    VisibleVersion,
)
from icalproxy.daemon.store.schema import LATEST, META, MIGRATIONS, statements
from icalproxy.errors import StateError, TokenError

log = structlog.get_logger("icalproxy.store")

TOKEN_BYTES = 32  # 256 bits
KEEP_VERSIONS = 2  # feed versions kept per feed: the served one and the one before it
MIGRATION_LOCK = 0x1CA1_0001  # PostgreSQL advisory lock keys, each held for one transaction
INSTALL_LOCK = 0x1CA1_0002
ALERT_LOCK = 0x1CA1_0003
# meta keys of numbered writes: the latest push state write, the latest alert queued
PUSH_SEQUENCE, ALERT_SEQUENCE = "push_written", "alert_seq"
_DUMMY_HASH = hashlib.sha256(b"icalproxy-no-such-token").hexdigest()
_TOKEN_COLUMNS = "id, feed, label, sha256, created, revoked"  # noqa: S105 - column names
_FEED_COLUMNS = "feed, version, body, sha256, etag, last_modified, events, installed"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SqlStore:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    # ---------------------------------------------------------------- schema

    def schema_version(self) -> int:
        with self.db.transaction() as tx:
            tx.run(META)
            row = tx.one("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(row[0]) if row else 0

    def migrate(self, target: int = LATEST) -> list[int]:
        """Run the forward migrations up to ``target``; returns the versions applied (callers
        log them: the CLI's output stays its own)."""
        applied: list[int] = []
        for version, _title, migration in MIGRATIONS:
            if version > target:
                break
            with self.db.transaction() as tx:
                tx.run(META)
                self.db.serialize(tx, MIGRATION_LOCK)
                current = _version(tx)
                if current > LATEST:
                    raise StateError(
                        f"state database {self.db.where} has schema version {current}, newer than this "
                        f"icalproxy knows ({LATEST}): upgrade icalproxy"
                    )
                if current >= version:
                    continue
                for sql in statements(self.db.dialect, migration):
                    tx.run(sql)
                _set_meta(tx, "schema_version", str(version))
            applied.append(version)
        return applied

    def meta(self, key: str) -> str | None:
        with self.db.read() as tx:
            row = tx.one("SELECT value FROM meta WHERE key = ?", (key,))
        return str(row[0]) if row else None

    def shared_secret(self, key: str, proposed: str) -> str:
        """The secret stored under ``key``, set to ``proposed`` if there is none yet: replicas
        agree on one (e.g. the installation key that derived UIDs are keyed with)."""
        with self.db.transaction() as tx:
            tx.run(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, proposed)
            )
            row = tx.one("SELECT value FROM meta WHERE key = ?", (key,))
        assert row is not None
        return str(row[0])

    # ---------------------------------------------------------------- tokens

    def create_token(self, feed: str, label: str, now: datetime | None = None) -> tuple[TokenRecord, str]:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        record = TokenRecord(
            id=secrets.token_hex(4), feed=feed, label=label, sha256=hash_token(token), created=_iso(now)
        )
        with self.db.transaction() as tx:
            self._insert_tokens(tx, [record])
        return record, token

    def revoke_token(self, token_id: str, now: datetime | None = None) -> tuple[TokenRecord, bool]:
        """The token as revoked, and whether it was revoked already (then unchanged)."""
        with self.db.transaction() as tx:
            row = tx.one(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE id = ?", (token_id,))
            if row is None:
                raise TokenError(f"no token with id {token_id!r}")
            record = TokenRecord(*row)
            if record.revoked is not None:
                return record, True
            stamp = _iso(now)
            tx.run("UPDATE tokens SET revoked = ? WHERE id = ?", (stamp, token_id))
            _bump(tx, "tokens_generation")
            self.db.notify(tx, "tokens")
        return TokenRecord(*row[:5], revoked=stamp), False

    def tokens(self) -> list[TokenRecord]:
        with self.db.read() as tx:
            rows = tx.all(f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY feed, created, id")
        return [TokenRecord(*row) for row in rows]

    def tokens_generation(self) -> int:
        """Grows with every token change: a cheap check whether ``tokens()`` must be re-read."""
        with self.db.read() as tx:
            return _generation(tx, "tokens_generation")

    def lookup_token(self, token: str) -> tuple[Lookup, str | None]:
        """(valid|revoked|unknown, feed) straight from the database, compared in constant time."""
        digest = hash_token(token)
        with self.db.read() as tx:
            row = tx.one(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE sha256 = ?", (digest,))
        record = TokenRecord(*row) if row else None
        if not hmac.compare_digest(record.sha256 if record else _DUMMY_HASH, digest) or record is None:
            return "unknown", None
        return ("revoked" if record.revoked else "valid"), record.feed

    def _insert_tokens(self, tx: Tx, records: Sequence[TokenRecord]) -> None:
        tx.many(
            f"INSERT INTO tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(r.id, r.feed, r.label, r.sha256, r.created, r.revoked) for r in records],
        )
        _bump(tx, "tokens_generation")
        self.db.notify(tx, "tokens")

    # ---------------------------------------------------------------- subscriber stats

    def record_token_use(self, uses: Iterable[TokenUse]) -> None:
        """A batch of last uses (the daemon flushes about once a minute); never moves back."""
        rows = [(use.token_id, use.last_used, use.agent) for use in uses]
        if not rows:
            return
        with self.db.transaction(durable=False) as tx:
            tx.many(
                "INSERT INTO subscriber_stats (token_id, last_used, agent) VALUES (?, ?, ?) "
                "ON CONFLICT (token_id) DO UPDATE SET last_used = excluded.last_used, agent = excluded.agent "
                "WHERE excluded.last_used >= subscriber_stats.last_used",
                rows,
            )

    def token_uses(self) -> dict[str, TokenUse]:
        with self.db.read() as tx:
            rows = tx.all("SELECT token_id, last_used, agent FROM subscriber_stats")
        return {row[0]: TokenUse(row[0], float(row[1]), row[2]) for row in rows}

    # ---------------------------------------------------------------- sources

    def save_source(self, snapshot: SourceSnapshot) -> None:
        with self.db.transaction() as tx:
            self._upsert_sources(tx, [snapshot])

    def _upsert_sources(self, tx: Tx, snapshots: Sequence[SourceSnapshot]) -> None:
        tx.many(
            "INSERT INTO sources (name, body, sha256, etag, last_modified, fetched, changed, events, "
            "held_pulls, held_events) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
            "body = excluded.body, sha256 = excluded.sha256, etag = excluded.etag, "
            "last_modified = excluded.last_modified, fetched = excluded.fetched, "
            "changed = excluded.changed, events = excluded.events, held_pulls = excluded.held_pulls, "
            "held_events = excluded.held_events "
            # an older pull never replaces a newer one (replicas writing after an outage)
            "WHERE sources.fetched IS NULL OR excluded.fetched IS NULL "
            "OR excluded.fetched >= sources.fetched",
            [
                (
                    s.name,
                    s.body,
                    _sha256(s.body),
                    s.etag,
                    s.last_modified,
                    s.fetched,
                    s.changed,
                    s.events,
                    s.held_pulls,
                    s.held_events,
                )
                for s in snapshots
            ],
        )

    def load_source(self, name: str) -> SourceSnapshot | None:
        """The last good snapshot, or None; one whose checksum fails is logged and ignored."""
        with self.db.read() as tx:
            row = tx.one(
                "SELECT name, body, sha256, etag, last_modified, fetched, changed, events, held_pulls, "
                "held_events FROM sources WHERE name = ?",
                (name,),
            )
        if row is None:
            return None
        body = bytes(row[1])
        if _sha256(body) != row[2]:
            log.error("state_corrupt_ignored", kind="source", name=name)
            return None
        return SourceSnapshot(row[0], body, row[3], row[4], row[5], row[6], int(row[7]), int(row[8]), row[9])

    def source_digests(self) -> dict[str, str]:
        """Each stored source's SHA-256: which snapshots changed, without reading them."""
        with self.db.read() as tx:
            return {str(name): str(digest) for name, digest in tx.all("SELECT name, sha256 FROM sources")}

    def save_shrink_guard(self, name: str, held_pulls: int, held_events: int | None) -> None:
        with self.db.transaction() as tx:
            tx.run(
                "UPDATE sources SET held_pulls = ?, held_events = ? WHERE name = ?",
                (held_pulls, held_events, name),
            )

    def accept_shrink(self, source: str) -> None:
        """Ops' acceptance of a source's shrink, taken up at its next pull."""
        with self.db.transaction() as tx:
            tx.run(
                "INSERT INTO shrink_accepts (source, at) VALUES (?, ?) "
                "ON CONFLICT (source) DO UPDATE SET at = excluded.at",
                (source, self.clock()),
            )

    def take_shrink_acceptance(self, source: str) -> bool:
        with self.db.transaction() as tx:
            return tx.run("DELETE FROM shrink_accepts WHERE source = ?", (source,)) > 0

    # ---------------------------------------------------------------- feed versions

    def install_feeds(
        self,
        feeds: Sequence[FeedBody],
        history: Sequence[tuple[str, str, str]] = (),
        keep_history: float = 90 * 86400,
    ) -> list[int]:
        """Install new versions of several feeds in one transaction; returns their version
        numbers (each the feed's previous one plus one). Older versions beyond the last
        ``KEEP_VERSIONS`` are removed in the same transaction. A feed whose stored newest
        version first appeared later than this one (another replica's newer render landed
        first, e.g. both were held while the database was away) is skipped: its number is 0."""
        if not feeds and not history:
            return []
        now = self.clock()
        versions: list[int] = []
        with self.db.transaction() as tx:
            if history:  # the render's history lands with the versions it made, or not at all
                tx.many(
                    "INSERT INTO render_state (kind, key, value, seen) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, seen = excluded.seen",
                    [(kind, key, value, now) for kind, key, value in history],
                )
                tx.run("DELETE FROM render_state WHERE seen < ?", (now - keep_history,))
            self.db.serialize(tx, INSTALL_LOCK)  # versions stay monotonic with several writers
            for feed in feeds:
                row = tx.one(
                    "SELECT version, last_modified FROM feed_versions WHERE feed = ? "
                    "ORDER BY version DESC LIMIT 1",
                    (feed.feed,),
                )
                if row is not None and int(row[1]) > feed.last_modified:
                    versions.append(0)
                    continue
                version = int(row[0]) + 1 if row is not None else 1
                _insert_version(tx, feed, version, now)
                tx.run(
                    "DELETE FROM feed_versions WHERE feed = ? AND version <= ?",
                    (feed.feed, version - KEEP_VERSIONS),
                )
                versions.append(version)
            if feeds:
                _bump(tx, "feeds_generation")
                self.db.notify(tx, "feeds")
        return versions

    def render_state(self) -> list[tuple[str, str, str]]:
        """Every (kind, key, value) row of the render history."""
        with self.db.read() as tx:
            rows = tx.all("SELECT kind, key, value FROM render_state")
        return [(str(row[0]), str(row[1]), str(row[2])) for row in rows]

    def latest_feeds(self, names: Iterable[str] | None = None) -> dict[str, StoredFeed]:
        """The newest whole version of each feed; a version whose checksum fails is logged and
        skipped (the one before it is served instead)."""
        wanted = set(names) if names is not None else None
        with self.db.read() as tx:
            rows = tx.all(
                f"SELECT {_FEED_COLUMNS} FROM feed_versions f WHERE version = "
                "(SELECT MAX(version) FROM feed_versions g WHERE g.feed = f.feed)"
            )
            found: dict[str, StoredFeed] = {}
            for row in rows:
                if wanted is not None and row[0] not in wanted:
                    continue
                stored = _stored_feed(row)
                candidate: tuple[Any, ...] | None = row
                while stored is None and candidate is not None:
                    log.error("state_corrupt_ignored", kind="feed", name=candidate[0], version=candidate[1])
                    candidate = tx.one(
                        f"SELECT {_FEED_COLUMNS} FROM feed_versions WHERE feed = ? AND version < ? "
                        "ORDER BY version DESC LIMIT 1",
                        (candidate[0], candidate[1]),
                    )
                    stored = _stored_feed(candidate) if candidate is not None else None
                if stored is not None:
                    found[stored.feed] = stored
        return found

    def feed_versions(self, feed: str | None = None) -> list[FeedMeta]:
        """Every kept version's metadata (newest first per feed), without the bodies."""
        query = (
            "SELECT feed, version, etag, last_modified, events, LENGTH(body), installed FROM feed_versions"
            + (" WHERE feed = ?" if feed is not None else "")
            + " ORDER BY feed, version DESC"
        )
        with self.db.read() as tx:
            rows = tx.all(query, (feed,) if feed is not None else ())
        return [FeedMeta(r[0], int(r[1]), r[2], int(r[3]), int(r[4]), int(r[5]), float(r[6])) for r in rows]

    def feeds_generation(self) -> int:
        with self.db.read() as tx:
            return _generation(tx, "feeds_generation")

    # ---------------------------------------------------------------- status history

    def record_status(self, entries: Iterable[StatusEntry]) -> None:
        """Upsert by (feed, source, uid, occurrence, since): a label seen again moves last_seen."""
        with self.db.transaction(durable=False) as tx:
            tx.many(
                "INSERT INTO status_history (feed, source, uid, occurrence, label, description, since, "
                "last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (feed, source, uid, occurrence, "
                "since) DO UPDATE SET label = excluded.label, description = excluded.description, "
                "last_seen = excluded.last_seen",
                [
                    (e.feed, e.source, e.uid, e.occurrence, e.label, e.description, e.since, e.last_seen)
                    for e in entries
                ],
            )

    def status_history(self, feed: str, uid: str | None = None) -> list[StatusEntry]:
        query = (
            "SELECT feed, source, uid, occurrence, label, description, since, last_seen FROM status_history "
            "WHERE feed = ?"
            + (" AND uid = ?" if uid is not None else "")
            + " ORDER BY uid, occurrence, since"
        )
        with self.db.read() as tx:
            rows = tx.all(query, (feed, uid) if uid is not None else (feed,))
        return [StatusEntry(*row[:6], float(row[6]), float(row[7])) for row in rows]

    # ---------------------------------------------------------------- alerts
    # Conflicts already reported and alerts not yet delivered, when replicas share the store
    # (alert_state.SharedAlertState); the semantics are those of alert_state.AlertState.

    def alert_known(self, feed: str) -> dict[str, float]:
        with self.db.read() as tx:
            rows = tx.all("SELECT id, ends FROM alert_known WHERE feed = ?", (feed,))
        return {row[0]: float(row[1]) for row in rows}

    def alert_feeds(self) -> set[str]:
        with self.db.read() as tx:
            return {row[0] for row in tx.all("SELECT DISTINCT feed FROM alert_known")}

    def record_alerts(
        self,
        feed: str,
        new: Sequence[tuple[str, float, str]],
        resolved: Sequence[str],
        expired: Sequence[str],
        *,
        alert: bool,
        now: float,
    ) -> None:
        """``new``: (id, ends, payload JSON). One transaction, one at a time across replicas:
        a conflict another replica has just reported is not reported again, and a resolved one
        is announced once, by whoever still finds it known."""
        with self.db.transaction() as tx:
            self.db.serialize(tx, ALERT_LOCK)
            known = {
                row[0]: row[1]
                for row in tx.all("SELECT id, payload FROM alert_known WHERE feed = ?", (feed,))
            }
            gone = [(conflict_id, known[conflict_id]) for conflict_id in resolved if conflict_id in known]
            fresh = [item for item in dict((item[0], item) for item in new).values() if item[0] not in known]
            tx.many(
                "DELETE FROM alert_known WHERE feed = ? AND id = ?",
                [(feed, conflict_id) for conflict_id in [*resolved, *expired]],
            )
            tx.many(
                "INSERT INTO alert_known (feed, id, ends, payload) VALUES (?, ?, ?, ?)",
                [(feed, conflict_id, ends, payload) for conflict_id, ends, payload in fresh],
            )
            if alert:
                queued = [("conflict", conflict_id, payload) for conflict_id, _, payload in fresh]
                queued += [("resolved", conflict_id, payload) for conflict_id, payload in gone]
                tx.many(
                    "INSERT INTO alert_outbox (seq, event, id, payload, due) VALUES (?, ?, ?, ?, ?)",
                    [(_next_number(tx, ALERT_SEQUENCE), *row, now) for row in queued],
                )

    def forget_alerts(self, feed: str) -> None:
        with self.db.transaction() as tx:
            tx.run("DELETE FROM alert_known WHERE feed = ?", (feed,))

    def alert_head(self) -> tuple[int, str, str, str, int, float] | None:
        with self.db.read() as tx:
            row = tx.one(
                "SELECT seq, event, id, payload, attempts, due FROM alert_outbox ORDER BY seq LIMIT 1"
            )
        return None if row is None else (int(row[0]), row[1], row[2], row[3], int(row[4]), float(row[5]))

    def alert_delivered(self, seq: int) -> None:
        with self.db.transaction() as tx:
            tx.run("DELETE FROM alert_outbox WHERE seq = ?", (seq,))

    def postpone_alert(self, seq: int, due: float) -> None:
        with self.db.transaction() as tx:
            tx.run("UPDATE alert_outbox SET attempts = attempts + 1, due = ? WHERE seq = ?", (due, seq))

    def alerts_pending(self) -> int:
        with self.db.read() as tx:
            row = tx.one("SELECT count(*) FROM alert_outbox")
        return int(row[0]) if row else 0

    def import_alerts(
        self,
        known: Sequence[tuple[str, str, float, str]],
        outbox: Sequence[tuple[str, str, str, int, float]],
        marker: str,
    ) -> bool:
        """A replica's own alert state, once per ``marker``: (feed, id, ends, payload) rows
        not known yet, and its undelivered (event, id, payload, attempts, due) alerts."""
        with self.db.transaction() as tx:
            if tx.one("SELECT value FROM meta WHERE key = ?", (marker,)) is not None:
                return False
            self.db.serialize(tx, ALERT_LOCK)
            tx.many(
                "INSERT INTO alert_known (feed, id, ends, payload) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (feed, id) DO NOTHING",
                known,
            )
            tx.many(
                "INSERT INTO alert_outbox (seq, event, id, payload, attempts, due) VALUES (?, ?, ?, ?, ?, ?)",
                [(_next_number(tx, ALERT_SEQUENCE), *row) for row in outbox],
            )
            tx.run("INSERT INTO meta (key, value) VALUES (?, ?)", (marker, str(self.clock())))
        return True

    # ---------------------------------------------------------------- push (CalDAV)
    # The sync state of push targets when replicas share the store (push_state.SharedPushState);
    # the semantics are those of push_state.PushState: rows, intents, the write sequence.

    def push_rows(self, target: str) -> list[tuple[str, str, str | None, str | None, bool]]:
        """(uid, href, etag, hash, fresh) of every row of ``target``."""
        with self.db.read() as tx:
            rows = tx.all(
                "SELECT uid, href, etag, hash, written > coalesce("
                "(SELECT written FROM push_targets WHERE target = ?), 0) "
                "FROM push_resources WHERE target = ?",
                (target, target),
            )
        return [(row[0], row[1], row[2], row[3], bool(row[4])) for row in rows]

    def push_mark(self) -> int:
        with self.db.read() as tx:
            row = tx.one("SELECT value FROM meta WHERE key = ?", (PUSH_SEQUENCE,))
        return int(row[0]) if row else 0

    def save_push_row(self, target: str, uid: str, href: str, etag: str | None, digest: str | None) -> None:
        with self.db.transaction() as tx:
            tx.run(
                "INSERT INTO push_resources (target, uid, href, etag, hash, written) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (target, uid) DO UPDATE SET "
                "href = excluded.href, etag = excluded.etag, hash = excluded.hash, "
                "written = excluded.written",
                (target, uid, href, etag, digest, _next_number(tx, PUSH_SEQUENCE)),
            )

    def forget_push_row(self, target: str, uid: str) -> None:
        with self.db.transaction() as tx:
            tx.run("DELETE FROM push_resources WHERE target = ? AND uid = ?", (target, uid))

    def push_sync_token(self, target: str) -> str | None:
        with self.db.read() as tx:
            row = tx.one("SELECT sync_token FROM push_targets WHERE target = ?", (target,))
        return None if row is None else row[0]

    def save_push_seen(
        self,
        target: str,
        rows: Sequence[tuple[str, str, str | None, str | None]],
        token: str | None,
        mark: int,
        settled: Sequence[str] = (),
    ) -> None:
        """What a listing showed ((uid, href, etag, hash) rows) and its sync token, at once."""
        with self.db.transaction() as tx:
            tx.many(
                "UPDATE push_resources SET href = ?, etag = ?, hash = ? WHERE target = ? AND uid = ?",
                [(href, etag, digest, target, uid) for uid, href, etag, digest in rows],
            )
            tx.many(
                "UPDATE push_resources SET written = ? WHERE target = ? AND uid = ?",
                [(mark, target, uid) for uid in settled],
            )
            tx.run(
                "INSERT INTO push_targets (target, sync_token, written) VALUES (?, ?, ?) "
                "ON CONFLICT (target) DO UPDATE SET sync_token = excluded.sync_token, "
                "written = excluded.written",
                (target, token, mark),
            )

    def import_push_rows(
        self,
        resources: Sequence[tuple[str, str, str, str | None, str | None]],
        targets: Sequence[tuple[str, str | None]],
        marker: str,
    ) -> bool:
        """A replica's own push state ((target, uid, href, etag, hash) rows and (target, sync
        token) pairs), once per ``marker``, for targets the store knows nothing of yet. A
        sync token comes without its sequence mark: every imported row counts as listed."""
        with self.db.transaction() as tx:
            if tx.one("SELECT value FROM meta WHERE key = ?", (marker,)) is not None:
                return False
            known = {row[0] for row in tx.all("SELECT DISTINCT target FROM push_resources")}
            known |= {row[0] for row in tx.all("SELECT target FROM push_targets")}
            tx.many(
                "INSERT INTO push_resources (target, uid, href, etag, hash, written) "
                "VALUES (?, ?, ?, ?, ?, 0)",
                [row for row in resources if row[0] not in known],
            )
            tx.many(
                "INSERT INTO push_targets (target, sync_token, written) VALUES (?, ?, 0)",
                [row for row in targets if row[0] not in known],
            )
            tx.run("INSERT INTO meta (key, value) VALUES (?, ?)", (marker, str(self.clock())))
        return True

    # ---------------------------------------------------------------- visible-content history

    def visible_version(
        self, feed: str, uid: str, content_hash: str, now: float | None = None
    ) -> VisibleVersion:
        """The first sighting of this visible content of an event, recorded now if it is new;
        new content gets the event's highest sequence plus one."""
        with self.db.transaction() as tx:
            return self._visible(tx, feed, uid, content_hash, self.clock() if now is None else now)

    def visible_versions(
        self, feed: str, items: Sequence[tuple[str, str]], now: float | None = None
    ) -> dict[str, VisibleVersion]:
        """``visible_version`` for many (uid, content hash) pairs of one feed, in one transaction."""
        moment = self.clock() if now is None else now
        with self.db.transaction() as tx:
            return {uid: self._visible(tx, feed, uid, digest, moment) for uid, digest in items}

    def _visible(self, tx: Tx, feed: str, uid: str, content_hash: str, now: float) -> VisibleVersion:
        row = tx.one(
            "SELECT first_seen, sequence FROM visible_history "
            "WHERE feed = ? AND uid = ? AND content_hash = ?",
            (feed, uid, content_hash),
        )
        if row is not None:
            return VisibleVersion(feed, uid, content_hash, float(row[0]), int(row[1]))
        top = tx.one("SELECT MAX(sequence) FROM visible_history WHERE feed = ? AND uid = ?", (feed, uid))
        sequence = int(top[0]) + 1 if top and top[0] is not None else 0
        tx.run(
            "INSERT INTO visible_history (feed, uid, content_hash, first_seen, sequence) "
            "VALUES (?, ?, ?, ?, ?)",
            (feed, uid, content_hash, now, sequence),
        )
        return VisibleVersion(feed, uid, content_hash, now, sequence)

    # ---------------------------------------------------------------- leases (replicas)

    def take_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Hold ``name`` for ``seconds`` unless another holder's lease is still running."""
        now = self.clock()
        with self.db.transaction() as tx:
            taken = tx.run(
                "INSERT INTO leases (name, holder, expires) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET holder = excluded.holder, expires = excluded.expires "
                "WHERE leases.holder = excluded.holder OR leases.expires < ?",
                (name, holder, now + seconds, now),
            )
        return taken > 0

    def release_lease(self, name: str, holder: str) -> None:
        with self.db.transaction() as tx:
            tx.run("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    def lease_holder(self, name: str) -> str | None:
        with self.db.read() as tx:
            row = tx.one("SELECT holder, expires FROM leases WHERE name = ?", (name,))
        return str(row[0]) if row and float(row[1]) >= self.clock() else None

    # ---------------------------------------------------------------- import

    def import_state(
        self,
        tokens: Sequence[TokenRecord],
        sources: Sequence[SourceSnapshot],
        feeds: Sequence[FeedBody],
        accepted: Sequence[str],
        marker: str,
    ) -> bool:
        """Import state of today's file format once, in one transaction; False if done before."""
        with self.db.transaction() as tx:
            if tx.one("SELECT value FROM meta WHERE key = ?", (marker,)) is not None:
                return False
            self._insert_tokens(tx, tokens)
            self._upsert_sources(tx, sources)
            now = self.clock()
            for feed in feeds:
                if tx.one("SELECT 1 FROM feed_versions WHERE feed = ?", (feed.feed,)) is None:
                    _insert_version(tx, feed, 1, now)
            tx.many(
                "INSERT INTO shrink_accepts (source, at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(name, now) for name in accepted],
            )
            _set_meta(tx, marker, _iso(None))
            _bump(tx, "feeds_generation")
        return True

    def close(self) -> None:
        self.db.close()


def _insert_version(tx: Tx, feed: FeedBody, version: int, now: float) -> None:
    tx.run(
        f"INSERT INTO feed_versions ({_FEED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (feed.feed, version, feed.body, _sha256(feed.body), feed.etag, feed.last_modified, feed.events, now),
    )


def _stored_feed(row: tuple[Any, ...]) -> StoredFeed | None:
    body = bytes(row[2])
    if _sha256(body) != row[3]:
        return None
    return StoredFeed(str(row[0]), int(row[1]), body, str(row[4]), int(row[5]), int(row[6]), float(row[7]))


def _version(tx: Tx) -> int:
    row = tx.one("SELECT value FROM meta WHERE key = 'schema_version'")
    return int(row[0]) if row else 0


def _set_meta(tx: Tx, key: str, value: str) -> None:
    tx.run(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def _generation(tx: Tx, key: str) -> int:
    row = tx.one("SELECT value FROM meta WHERE key = ?", (key,))
    return int(row[0]) if row else 0


def _bump(tx: Tx, key: str) -> None:
    """One atomic increment, so concurrent writers (several replicas) never lose one."""
    tx.run(
        "INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT (key) DO UPDATE "
        "SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)",
        (key,),
    )


def _iso(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _next_number(tx: Tx, key: str) -> int:
    """The next number of the sequence kept in meta under ``key``. The UPDATE locks its row
    until the transaction ends, so concurrent writers (replicas) never take the same number."""
    tx.run("INSERT INTO meta (key, value) VALUES (?, '0') ON CONFLICT (key) DO NOTHING", (key,))
    tx.run("UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) WHERE key = ?", (key,))
    row = tx.one("SELECT value FROM meta WHERE key = ?", (key,))
    assert row is not None
    return int(row[0])
