"""The two databases behind the store, reduced to what it needs: a transaction, a read, a close.

SQL is written once with ``?`` placeholders and the common subset of SQLite and PostgreSQL
(``INSERT … ON CONFLICT … DO UPDATE`` works on both). Driver errors become ``StateError`` here,
at the boundary, so callers see one exception tree.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from icalproxy.errors import StateError

Row = tuple[Any, ...]
BUSY_TIMEOUT_SECONDS = 10.0


class Tx:
    """One cursor inside a transaction (or a read)."""

    def __init__(self, cursor: Any, placeholder: str) -> None:
        self._cursor = cursor
        self._placeholder = placeholder

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cursor.execute(self._sql(sql), tuple(params))
        return int(self._cursor.rowcount or 0)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), [tuple(row) for row in rows])

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._cursor.execute(self._sql(sql), tuple(params))
        return [tuple(row) for row in self._cursor.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self._cursor.execute(self._sql(sql), tuple(params))
        row = self._cursor.fetchone()
        return tuple(row) if row is not None else None

    def _sql(self, sql: str) -> str:
        return sql if self._placeholder == "?" else sql.replace("?", self._placeholder)


class Database(Protocol):
    dialect: str
    where: str  # for messages and logs: a path, or a DSN without its password

    def transaction(self, *, durable: bool = True) -> contextlib.AbstractContextManager[Tx]: ...
    def read(self) -> contextlib.AbstractContextManager[Tx]: ...
    def serialize(self, tx: Tx, key: int) -> None:
        """Hold ``key`` until the transaction ends, so such transactions run one at a time."""

    def notify(self, tx: Tx, what: str) -> None:
        """Tell other processes following the store that ``what`` changed, at commit."""

    def close(self) -> None: ...


class SqliteDatabase:
    """One connection in WAL mode, used by one thread at a time (the store's executor)."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.where = path.name
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created 600 before SQLite opens it: it holds token hashes. SQLite gives the -wal and
        # -shm files the database file's mode.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_SECONDS
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            raise StateError(f"state database {self.where} cannot be opened: {exc}") from exc

    @contextlib.contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[Tx]:
        """BEGIN IMMEDIATE: the write lock is taken up front, so two writers queue on the busy
        timeout instead of failing halfway. ``durable=False`` (stats) commits without the
        extra fsync: a crash may lose the last such write, never corrupt anything."""
        with self._lock, _mapped(self.where):
            cursor = self._conn.cursor()
            if not durable:
                cursor.execute("PRAGMA synchronous = NORMAL")
            try:
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    yield Tx(cursor, "?")
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
                cursor.execute("COMMIT")
            finally:
                if not durable:
                    cursor.execute("PRAGMA synchronous = FULL")
                cursor.close()

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        with self._lock, _mapped(self.where):
            cursor = self._conn.cursor()
            cursor.execute("BEGIN")  # one snapshot for every statement of the read
            try:
                yield Tx(cursor, "?")
            finally:
                cursor.execute("COMMIT")
                cursor.close()

    def serialize(self, tx: Tx, key: int) -> None:
        pass  # BEGIN IMMEDIATE already excludes every other writer

    def notify(self, tx: Tx, what: str) -> None:
        pass  # one daemon per SQLite file: nobody to tell (the CLI's token changes are polled)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresDatabase:
    """A psycopg 3 connection pool. Imported only when a ``postgresql://`` store is configured."""

    dialect = "postgresql"

    def __init__(self, dsn: str, *, max_size: int = 4, timeout: float = 5.0) -> None:
        try:
            import psycopg  # noqa: PLC0415
            from psycopg_pool import ConnectionPool  # noqa: PLC0415
        except ImportError as exc:
            raise StateError("a postgresql:// store needs psycopg and psycopg_pool installed") from exc
        self.where = mask_dsn(dsn)
        self._dsn = dsn
        self._errors: tuple[type[BaseException], ...] = (psycopg.Error, _pool_error())
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout))},
            open=False,
            name="icalproxy-store",
            check=ConnectionPool.check_connection,  # after a server restart, never a dead one
        )
        self._pool.open(wait=False)

    @contextlib.contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[Tx]:
        with self._mapped(), self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            if not durable:
                cursor.execute("SET LOCAL synchronous_commit = off")
            yield Tx(cursor, "%s")

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        with self._mapped(), self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield Tx(cursor, "%s")

    def serialize(self, tx: Tx, key: int) -> None:
        tx.run("SELECT pg_advisory_xact_lock(?)", (key,))

    def notify(self, tx: Tx, what: str) -> None:
        tx.run("SELECT pg_notify(?, ?)", (CHANNEL, what))

    def listen(self, on_notify: Callable[[str], None], stop: threading.Event) -> None:
        """Blocking (run it in a thread): call ``on_notify(payload)`` for every notification
        until ``stop`` is set; reconnects after the server goes away, and reports ``"lost"``
        when it had to, so the caller re-reads what it may have missed."""
        import psycopg  # noqa: PLC0415

        while not stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=3) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    on_notify("connected")
                    while not stop.is_set():
                        for notice in conn.notifies(timeout=0.5):
                            on_notify(notice.payload)
            except psycopg.Error:
                on_notify("lost")
                stop.wait(1.0)

    def close(self) -> None:
        self._pool.close()

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise StateError(
                f"state database {self.where}: {type(exc).__name__}: {_first_line(exc)}"
            ) from exc


CHANNEL = "icalproxy"  # LISTEN/NOTIFY channel: payload "feeds" or "tokens"


def _pool_error() -> type[BaseException]:
    from psycopg_pool import PoolTimeout  # noqa: PLC0415

    return PoolTimeout


@contextlib.contextmanager
def _mapped(where: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise StateError(f"state database {where}: {type(exc).__name__}: {exc}") from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


def mask_dsn(dsn: str) -> str:
    """``postgresql://user:***@host:port/db``: never a password in a message or a log line."""
    scheme, sep, rest = dsn.partition("://")
    if not sep:
        return "postgresql"
    credentials, at, location = rest.rpartition("@")
    if not at:
        return f"{scheme}://{location.split('?', 1)[0]}"
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{location.split('?', 1)[0]}"
