"""One state store: embedded SQLite by default, PostgreSQL when several replicas share feeds.

``store: sqlite`` (default) keeps ``state_dir/icalproxy.db`` (WAL, ``synchronous=FULL``, a busy
timeout, so the CLI works beside a running daemon); ``store: postgresql://user:${PGPASSWORD}@host/db``
uses a psycopg 3 connection pool. Opening a store runs its forward migrations and imports a
state folder of the earlier file format once (see ``state.py``).

``SqlStore`` has the accessors, blocking and thread-safe: call them from sync code as they are.
``Store`` runs them on the store's own threads for async code: ``await store.call(store.sql.x, …)``,
or the named coroutines the daemon uses.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import structlog

from icalproxy.daemon.store.backend import Database, PostgresDatabase, SqliteDatabase, mask_dsn
from icalproxy.daemon.store.records import (
    FeedBody,
    FeedMeta,
    SourceSnapshot,
    StatusEntry,
    StoredFeed,
    TokenRecord,
    TokenUse,
    VisibleVersion,
)
from icalproxy.daemon.store.schema import LATEST
from icalproxy.daemon.store.sql import SqlStore, hash_token

log = structlog.get_logger("icalproxy.store")
T = TypeVar("T")
DB_FILE = "icalproxy.db"
LEGACY_MARKER = "imported_state_dir"


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def open_database(store: str, state_dir: Path) -> Database:
    if is_postgres(store):
        return PostgresDatabase(store)
    return SqliteDatabase(state_dir / DB_FILE)


def open_sql_store(store: str, state_dir: Path, *, migrate: bool = True, logged: bool = False) -> SqlStore:
    """Open the configured store, run its migrations and import today's files once (logged
    when ``logged``: the daemon's log, never the CLI's output)."""
    sql = SqlStore(open_database(store, state_dir))
    try:
        if migrate:
            for version in sql.migrate():
                if logged:
                    log.info("store_migrated", store=sql.db.where, version=version)
            legacy = import_legacy(sql, state_dir)
            if logged and legacy is not None:
                log.info("state_imported", **legacy)
    except BaseException:
        sql.close()
        raise
    return sql


def import_legacy(sql: SqlStore, state_dir: Path) -> dict[str, int] | None:
    """Import ``state_dir`` in the earlier file format once; what was imported, or None."""
    from icalproxy.daemon.state import read_legacy  # noqa: PLC0415

    if sql.meta(LEGACY_MARKER) is not None:
        return None
    legacy = read_legacy(state_dir)
    done = sql.import_state(legacy.tokens, legacy.sources, legacy.feeds, legacy.accepted, LEGACY_MARKER)
    if not (done and legacy):
        return None
    return {
        "tokens": len(legacy.tokens),
        "sources": len(legacy.sources),
        "feeds": len(legacy.feeds),
        "accepted": len(legacy.accepted),
    }


class Store:
    """Async access: every call runs on the store's threads, never on the event loop."""

    def __init__(self, sql: SqlStore) -> None:
        self.sql = sql
        # SQLite: one thread, one connection. PostgreSQL: as many as the pool holds.
        workers = 1 if sql.db.dialect == "sqlite" else 4
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="icalproxy-store")

    @property
    def dialect(self) -> str:
        return self.sql.db.dialect

    async def call(self, method: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(method, *args))

    async def install_feeds(
        self, feeds: Sequence[FeedBody], history: Sequence[tuple[str, str, str]] = (), keep_history: float = 0
    ) -> list[int]:
        if keep_history:
            return await self.call(self.sql.install_feeds, feeds, history, keep_history)
        return await self.call(self.sql.install_feeds, feeds, history)

    async def latest_feeds(self, names: Iterable[str] | None = None) -> dict[str, StoredFeed]:
        return await self.call(self.sql.latest_feeds, names)

    async def save_source(self, snapshot: SourceSnapshot) -> None:
        await self.call(self.sql.save_source, snapshot)

    async def load_source(self, name: str) -> SourceSnapshot | None:
        return await self.call(self.sql.load_source, name)

    async def save_shrink_guard(self, name: str, held_pulls: int, held_events: int | None) -> None:
        await self.call(self.sql.save_shrink_guard, name, held_pulls, held_events)

    async def take_shrink_acceptance(self, source: str) -> bool:
        return await self.call(self.sql.take_shrink_acceptance, source)

    async def tokens(self) -> list[TokenRecord]:
        return await self.call(self.sql.tokens)

    async def tokens_generation(self) -> int:
        return await self.call(self.sql.tokens_generation)

    async def record_token_use(self, uses: Sequence[TokenUse]) -> None:
        await self.call(self.sql.record_token_use, uses)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.sql.close()


__all__ = [
    "LATEST",
    "Database",
    "FeedBody",
    "FeedMeta",
    "SourceSnapshot",
    "SqlStore",
    "StatusEntry",
    "Store",
    "StoredFeed",
    "TokenRecord",
    "TokenUse",
    "VisibleVersion",
    "hash_token",
    "import_legacy",
    "is_postgres",
    "mask_dsn",
    "open_sql_store",
]
