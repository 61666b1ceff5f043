"""What the daemon knows about conflicts across restarts: the conflicts already reported per
feed (so a restart never repeats them) and the alerts not yet delivered (so none is lost while
the receiver is down). One small class on sqlite3 in ``state_dir/alerts.db``: WAL, every
commit synced (``synchronous=FULL``), a schema-version table. Calls are short; the daemon runs
them in a worker thread, one at a time.

Replicas on a PostgreSQL store share one such state instead (``SharedAlertState``, the
store's ``alert_known`` and ``alert_outbox``): whichever replica renders a feed reports its
conflicts once, and one replica at a time (the holder of the ``alerts`` lease) delivers.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from icalproxy.errors import StateError

if TYPE_CHECKING:
    from icalproxy.daemon.store.sql import SqlStore

IMPORT_MARKER = "imported_alerts_db"  # meta key of a store that took a replica's alerts.db

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS known (
    feed TEXT NOT NULL,
    id TEXT NOT NULL,
    ends REAL NOT NULL,          -- epoch seconds when its last job ends: then it can only expire
    payload TEXT NOT NULL,       -- JSON, what a "resolved" alert repeats
    PRIMARY KEY (feed, id)
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL,         -- conflict | resolved
    id TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due REAL NOT NULL            -- epoch seconds of the next attempt
);
"""


@dataclass(frozen=True, slots=True)
class Pending:
    seq: int
    event: str
    id: str
    payload: dict[str, Any]
    attempts: int
    due: float


@dataclass(frozen=True, slots=True)
class Change:
    """One conflict appearing or going away; ``payload`` is what an alert tells about it."""

    id: str
    ends: float
    payload: dict[str, Any]


class AlertStore(Protocol):
    """What conflict watching and alert delivery read and write (blocking, thread-safe)."""

    def known(self, feed: str) -> dict[str, float]: ...
    def feeds(self) -> set[str]: ...
    def record(
        self,
        feed: str,
        new: list[Change],
        resolved: list[str],
        expired: list[str],
        *,
        alert: bool,
        now: float,
    ) -> None: ...
    def forget(self, feed: str) -> None: ...
    def head(self) -> Pending | None: ...
    def delivered(self, seq: int) -> None: ...
    def postpone(self, seq: int, due: float) -> None: ...
    def pending(self) -> int: ...
    def close(self) -> None: ...


class AlertState:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                self._db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise StateError(f"{path}: alert state schema {row[0]}, this version reads {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise StateError(f"{path}: {exc}") from exc

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> AlertState:
        return cls(state_dir / "alerts.db")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------ known conflicts

    def known(self, feed: str) -> dict[str, float]:
        """id → when its last job ends, of every conflict already reported for ``feed``."""
        with self._lock:
            rows = self._db.execute("SELECT id, ends FROM known WHERE feed = ?", (feed,)).fetchall()
        return {row[0]: row[1] for row in rows}

    def feeds(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT DISTINCT feed FROM known")}

    def record(
        self,
        feed: str,
        new: list[Change],
        resolved: list[str],
        expired: list[str],
        *,
        alert: bool,
        now: float,
    ) -> None:
        """In one transaction: remember the new conflicts, forget the resolved and expired ones,
        and (``alert``) queue an alert for each new and each resolved conflict."""
        with self._lock, self._transaction():
            db = self._db
            gone: list[tuple[str, str]] = []
            for conflict_id in resolved:
                row = db.execute(
                    "SELECT payload FROM known WHERE feed = ? AND id = ?", (feed, conflict_id)
                ).fetchone()
                if row is not None:
                    gone.append((conflict_id, row[0]))
            db.executemany(
                "DELETE FROM known WHERE feed = ? AND id = ?", [(feed, i) for i in [*resolved, *expired]]
            )
            db.executemany(
                "INSERT OR REPLACE INTO known (feed, id, ends, payload) VALUES (?, ?, ?, ?)",
                [(feed, c.id, c.ends, json.dumps(c.payload, sort_keys=True)) for c in new],
            )
            if alert:
                rows = [("conflict", c.id, json.dumps(c.payload, sort_keys=True), now) for c in new]
                rows += [("resolved", conflict_id, payload, now) for conflict_id, payload in gone]
                db.executemany("INSERT INTO outbox (event, id, payload, due) VALUES (?, ?, ?, ?)", rows)

    def forget(self, feed: str) -> None:
        """A feed no longer checked: its conflicts are dropped without alerts."""
        with self._lock, self._transaction():
            self._db.execute("DELETE FROM known WHERE feed = ?", (feed,))

    # ------------------------------------------------------------ outbox

    def head(self) -> Pending | None:
        """The oldest alert not yet delivered (alerts go out in order)."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq, event, id, payload, attempts, due FROM outbox ORDER BY seq LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        return Pending(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5])

    def delivered(self, seq: int) -> None:
        with self._lock, self._transaction():
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def postpone(self, seq: int, due: float) -> None:
        with self._lock, self._transaction():
            self._db.execute("UPDATE outbox SET attempts = attempts + 1, due = ? WHERE seq = ?", (due, seq))

    def pending(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def export(self) -> tuple[list[tuple[str, str, float, str]], list[tuple[str, str, str, int, float]]]:
        """Every known conflict (feed, id, ends, payload) and queued alert (event, id,
        payload, attempts, due), in queue order."""
        with self._lock:
            known = self._db.execute("SELECT feed, id, ends, payload FROM known").fetchall()
            outbox = self._db.execute(
                "SELECT event, id, payload, attempts, due FROM outbox ORDER BY seq"
            ).fetchall()
        return [tuple(row) for row in known], [tuple(row) for row in outbox]

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


class SharedAlertState:
    """The alert state in a store replicas share (``SqlStore`` holds the SQL)."""

    def __init__(self, sql: SqlStore) -> None:
        self.sql = sql

    @classmethod
    def importing(cls, sql: SqlStore, state_dir: Path) -> SharedAlertState:
        """The shared state, after taking in this replica's ``alerts.db`` once: what it
        reported is not reported again, what it had not delivered yet is not lost."""
        path = state_dir / "alerts.db"
        marker = f"{IMPORT_MARKER}:{state_dir.resolve()}"
        if path.exists() and sql.meta(marker) is None:  # read the file only until it is taken in
            own = AlertState(path)
            try:
                known, outbox = own.export()
            finally:
                own.close()
            sql.import_alerts(known, outbox, marker)
        return cls(sql)

    def known(self, feed: str) -> dict[str, float]:
        return self.sql.alert_known(feed)

    def feeds(self) -> set[str]:
        return self.sql.alert_feeds()

    def record(
        self,
        feed: str,
        new: list[Change],
        resolved: list[str],
        expired: list[str],
        *,
        alert: bool,
        now: float,
    ) -> None:
        rows = [(change.id, change.ends, json.dumps(change.payload, sort_keys=True)) for change in new]
        self.sql.record_alerts(feed, rows, resolved, expired, alert=alert, now=now)

    def forget(self, feed: str) -> None:
        self.sql.forget_alerts(feed)

    def head(self) -> Pending | None:
        row = self.sql.alert_head()
        if row is None:
            return None
        seq, event, conflict_id, payload, attempts, due = row
        return Pending(seq, event, conflict_id, json.loads(payload), attempts, due)

    def delivered(self, seq: int) -> None:
        self.sql.alert_delivered(seq)

    def postpone(self, seq: int, due: float) -> None:
        self.sql.postpone_alert(seq, due)

    def pending(self) -> int:
        return self.sql.alerts_pending()

    def close(self) -> None:
        pass  # the store is the daemon's; it closes it
