"""Sync state of CalDAV push targets: one small class over SQLite (``state_dir/push.db``).

Every row is written as soon as the request it records has succeeded, so a sync that dies
half-way resumes where it stopped. A row with no ETag and no hash is an *intent*: icalproxy
was about to create that resource (or must re-create it) and owns its href whether or not
the server already has it. Only resources with a row here are ever touched.

Two classes with one interface (``PushStore``): ``PushState``, a replica's own file, and
``SharedPushState``, the tables of a PostgreSQL store that replicas share (a target is then
synced by the replica holding its push lease, from the rows every replica sees).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from icalproxy.errors import StateError

if TYPE_CHECKING:
    from icalproxy.daemon.store.sql import SqlStore

IMPORT_MARKER = "imported_push_db"  # meta key of a store that took a replica's push.db

# Forward migrations; the schema version is the number of scripts applied.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE push_resource (
        target TEXT NOT NULL,
        uid TEXT NOT NULL,
        href TEXT NOT NULL,
        etag TEXT,
        hash TEXT,
        PRIMARY KEY (target, uid)
    );
    CREATE TABLE push_target (
        target TEXT PRIMARY KEY,
        sync_token TEXT
    );
    """,
    # Every write gets the next number of a sequence; a stored sync token remembers the
    # number reached when its listing was asked for. A row written after that is *fresh*: an
    # incremental listing must show it, so one that leaves it out means it was deleted on
    # the server (RFC 6578 reports changes against the token's state: a resource created
    # and deleted since is simply absent).
    """
    ALTER TABLE push_resource ADD COLUMN written INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE push_target ADD COLUMN written INTEGER NOT NULL DEFAULT 0;
    """,
)


@dataclass(frozen=True, slots=True)
class Row:
    uid: str
    href: str
    etag: str | None  # the server's ETag as last seen; None: not known to exist
    hash: str | None  # content hash of what icalproxy last stored there; None: must be written
    fresh: bool = field(default=False, compare=False)  # written after the stored token's listing

    @property
    def intent(self) -> bool:
        return self.etag is None and self.hash is None


class PushStore(Protocol):
    """What a sync reads and writes; every method is blocking and thread-safe."""

    def rows(self, target: str) -> dict[str, Row]: ...
    def mark(self) -> int: ...
    def save(self, target: str, row: Row) -> None: ...
    def forget(self, target: str, uid: str) -> None: ...
    def sync_token(self, target: str) -> str | None: ...
    def save_seen(
        self,
        target: str,
        rows: list[Row],
        token: str | None,
        mark: int,
        settled: tuple[str, ...] | list[str] = (),
    ) -> None: ...
    def close(self) -> None: ...


class PushState:
    """Thread-safe: syncs run in worker threads and share one connection behind a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"push state {path}: {exc}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
            found = self._db.execute(
                "SELECT max(coalesce((SELECT max(written) FROM push_resource), 0),"
                " coalesce((SELECT max(written) FROM push_target), 0))"
            ).fetchone()
            self._sequence = int(found[0] or 0)
        except (StateError, sqlite3.Error) as exc:
            self._db.close()
            if isinstance(exc, StateError):
                raise
            raise StateError(f"push state {path}: {exc}") from exc

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> PushState:
        return cls(state_dir / "push.db")

    def _migrate(self) -> None:
        self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        found = self._db.execute("SELECT version FROM schema_version").fetchone()
        version = int(found[0]) if found else 0
        if found is None:
            self._db.execute("INSERT INTO schema_version (version) VALUES (0)")
        if version > len(MIGRATIONS):
            raise StateError(f"push state {self.path}: schema {version} is newer than this icalproxy")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            # S608: the scripts are constants of this module and the number is an int.
            self._db.executescript(
                f"BEGIN; {script}; UPDATE schema_version SET version = {number}; COMMIT;"  # noqa: S608
            )

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT version FROM schema_version").fetchone()[0])

    def rows(self, target: str) -> dict[str, Row]:
        with self._lock:
            found = self._db.execute(
                "SELECT uid, href, etag, hash, written > coalesce("
                "(SELECT written FROM push_target WHERE target = ?), 0) "
                "FROM push_resource WHERE target = ?",
                (target, target),
            ).fetchall()
        return {uid: Row(uid, href, etag, digest, bool(fresh)) for uid, href, etag, digest, fresh in found}

    def mark(self) -> int:
        """The write sequence now: take it just before asking the server for a listing."""
        with self._lock:
            return self._sequence

    def save(self, target: str, row: Row) -> None:
        with self._lock:
            self._sequence += 1
            try:
                self._db.execute(
                    "INSERT INTO push_resource (target, uid, href, etag, hash, written) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (target, uid) DO UPDATE SET "
                    "href = excluded.href, etag = excluded.etag, hash = excluded.hash, "
                    "written = excluded.written",
                    (target, row.uid, row.href, row.etag, row.hash, self._sequence),
                )
            except sqlite3.Error as exc:
                raise StateError(f"push state {self.path}: {exc}") from exc

    def forget(self, target: str, uid: str) -> None:
        self._write("DELETE FROM push_resource WHERE target = ? AND uid = ?", (target, uid))

    def sync_token(self, target: str) -> str | None:
        with self._lock:
            found = self._db.execute(
                "SELECT sync_token FROM push_target WHERE target = ?", (target,)
            ).fetchone()
        return None if found is None else found[0]

    def save_seen(
        self,
        target: str,
        rows: list[Row],
        token: str | None,
        mark: int,
        settled: tuple[str, ...] | list[str] = (),
    ) -> None:
        """What a listing showed (drift marked on rows) and the sync token it came with, in one
        transaction: a token is never stored without the changes it stands for. ``mark`` is
        ``mark()`` from just before the listing was asked for; ``settled`` are rows written
        since that the listing already showed as written (so they are not fresh)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "UPDATE push_resource SET href = ?, etag = ?, hash = ? WHERE target = ? AND uid = ?",
                    [(row.href, row.etag, row.hash, target, row.uid) for row in rows],
                )
                self._db.executemany(
                    "UPDATE push_resource SET written = ? WHERE target = ? AND uid = ?",
                    [(mark, target, uid) for uid in settled],
                )
                self._db.execute(
                    "INSERT INTO push_target (target, sync_token, written) VALUES (?, ?, ?) "
                    "ON CONFLICT (target) DO UPDATE SET sync_token = excluded.sync_token, "
                    "written = excluded.written",
                    (target, token, mark),
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise StateError(f"push state {self.path}: {exc}") from exc

    def export(
        self,
    ) -> tuple[list[tuple[str, str, str, str | None, str | None]], list[tuple[str, str | None]]]:
        """Every row, (target, uid, href, etag, hash), and every (target, sync token)."""
        with self._lock:
            resources = self._db.execute("SELECT target, uid, href, etag, hash FROM push_resource").fetchall()
            targets = self._db.execute("SELECT target, sync_token FROM push_target").fetchall()
        return [tuple(row) for row in resources], [tuple(row) for row in targets]

    def _write(self, sql: str, args: tuple[object, ...]) -> None:
        with self._lock:
            try:
                self._db.execute(sql, args)
            except sqlite3.Error as exc:
                raise StateError(f"push state {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()


class SharedPushState:
    """The push state in a store replicas share; the rows and sequence of ``PushState``, kept
    in the store's ``push_resources`` and ``push_targets`` tables (``SqlStore`` holds the SQL)."""

    def __init__(self, sql: SqlStore) -> None:
        self.sql = sql

    @classmethod
    def importing(cls, sql: SqlStore, state_dir: Path) -> SharedPushState:
        """The shared state, after taking in this replica's ``push.db`` once (a single daemon
        that moves to a shared store keeps what it pushed: no duplicate, no orphan)."""
        path = state_dir / "push.db"
        marker = f"{IMPORT_MARKER}:{state_dir.resolve()}"
        if path.exists() and sql.meta(marker) is None:  # read the file only until it is taken in
            own = PushState(path)
            try:
                resources, targets = own.export()
            finally:
                own.close()
            sql.import_push_rows(resources, targets, marker)
        return cls(sql)

    def rows(self, target: str) -> dict[str, Row]:
        return {
            uid: Row(uid, href, etag, digest, fresh)
            for uid, href, etag, digest, fresh in self.sql.push_rows(target)
        }

    def mark(self) -> int:
        return self.sql.push_mark()

    def save(self, target: str, row: Row) -> None:
        self.sql.save_push_row(target, row.uid, row.href, row.etag, row.hash)

    def forget(self, target: str, uid: str) -> None:
        self.sql.forget_push_row(target, uid)

    def sync_token(self, target: str) -> str | None:
        return self.sql.push_sync_token(target)

    def save_seen(
        self,
        target: str,
        rows: list[Row],
        token: str | None,
        mark: int,
        settled: tuple[str, ...] | list[str] = (),
    ) -> None:
        seen = [(row.uid, row.href, row.etag, row.hash) for row in rows]
        self.sql.save_push_seen(target, seen, token, mark, settled)

    def close(self) -> None:
        pass  # the store is the daemon's; it closes it
