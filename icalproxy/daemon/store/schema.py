"""Schema versions and their forward migrations, one SQL text for both backends.

``{blob}``, ``{real}`` and ``{bigint}`` become each backend's type names. A migration runs in
one transaction together with the bump of ``meta.schema_version``, so a crash leaves the
database at the old version or the new one. Migrations are append-only: never edit a
released one, add the next.
"""

from __future__ import annotations

TYPES = {
    "sqlite": {"blob": "BLOB", "real": "REAL", "bigint": "INTEGER"},
    "postgresql": {"blob": "BYTEA", "real": "DOUBLE PRECISION", "bigint": "BIGINT"},
}

META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"

MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "tokens, sources, feed versions, shrink acceptances and the tables of this round",
        (
            """CREATE TABLE tokens (
                id TEXT PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE, feed TEXT NOT NULL,
                label TEXT NOT NULL, created TEXT NOT NULL, revoked TEXT)""",
            """CREATE TABLE subscriber_stats (
                token_id TEXT PRIMARY KEY, last_used {real} NOT NULL, agent TEXT NOT NULL)""",
            """CREATE TABLE sources (
                name TEXT PRIMARY KEY, body {blob} NOT NULL, sha256 TEXT NOT NULL,
                etag TEXT, last_modified TEXT, fetched {real}, changed {real},
                events {bigint} NOT NULL, held_pulls {bigint} NOT NULL DEFAULT 0,
                held_events {bigint})""",
            """CREATE TABLE feed_versions (
                feed TEXT NOT NULL, version {bigint} NOT NULL, body {blob} NOT NULL,
                sha256 TEXT NOT NULL, etag TEXT NOT NULL, last_modified {bigint} NOT NULL,
                events {bigint} NOT NULL, installed {real} NOT NULL,
                PRIMARY KEY (feed, version))""",
            "CREATE TABLE shrink_accepts (source TEXT PRIMARY KEY, at {real} NOT NULL)",
            """CREATE TABLE status_history (
                feed TEXT NOT NULL, source TEXT NOT NULL, uid TEXT NOT NULL,
                occurrence TEXT NOT NULL, label TEXT NOT NULL, description TEXT NOT NULL,
                since {real} NOT NULL, last_seen {real} NOT NULL,
                PRIMARY KEY (feed, source, uid, occurrence, since))""",
            """CREATE TABLE alert_state (
                conflict_id TEXT PRIMARY KEY, state TEXT NOT NULL, sent_at {real},
                attempts {bigint} NOT NULL DEFAULT 0)""",
            """CREATE TABLE push_state (
                target TEXT NOT NULL, uid TEXT NOT NULL, href TEXT NOT NULL, etag TEXT NOT NULL,
                content_hash TEXT NOT NULL, PRIMARY KEY (target, uid))""",
            """CREATE TABLE visible_history (
                feed TEXT NOT NULL, uid TEXT NOT NULL, content_hash TEXT NOT NULL,
                first_seen {real} NOT NULL, sequence {bigint} NOT NULL,
                PRIMARY KEY (feed, uid, content_hash))""",
        ),
    ),
    (
        2,
        "leases: which replica pulls a source, until when",
        ("CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires {real} NOT NULL)",),
    ),
    (
        3,
        "render_state: visible-content stamps and client-facing status history (JSON)",
        (
            """CREATE TABLE render_state (
                kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, seen {real} NOT NULL,
                PRIMARY KEY (kind, key))""",
        ),
    ),
    (
        4,
        "push and alert state shared by replicas (push_state.py, alert_state.py)",
        (
            """CREATE TABLE push_resources (
                target TEXT NOT NULL, uid TEXT NOT NULL, href TEXT NOT NULL, etag TEXT, hash TEXT,
                written {bigint} NOT NULL DEFAULT 0, PRIMARY KEY (target, uid))""",
            """CREATE TABLE push_targets (
                target TEXT PRIMARY KEY, sync_token TEXT, written {bigint} NOT NULL DEFAULT 0)""",
            """CREATE TABLE alert_known (
                feed TEXT NOT NULL, id TEXT NOT NULL, ends {real} NOT NULL, payload TEXT NOT NULL,
                PRIMARY KEY (feed, id))""",
            """CREATE TABLE alert_outbox (
                seq {bigint} PRIMARY KEY, event TEXT NOT NULL, id TEXT NOT NULL, payload TEXT NOT NULL,
                attempts {bigint} NOT NULL DEFAULT 0, due {real} NOT NULL)""",
            # Of migration 1, never written: the tables above replace them.
            "DROP TABLE push_state",
            "DROP TABLE alert_state",
        ),
    ),
)

LATEST = MIGRATIONS[-1][0]


def statements(dialect: str, migration: tuple[str, ...]) -> list[str]:
    return [sql.format(**TYPES[dialect]) for sql in migration]
