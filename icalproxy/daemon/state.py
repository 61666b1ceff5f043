"""Reading the state folder of earlier releases, once, so the store can import it.

Layout under ``state_dir`` before the state store::

    sources/<name>.state   last good raw bytes of a source, with validators and counts
    feeds/<name>.state     a rendered feed, with its ETag and Last-Modified
    tokens.json            token hashes
    accept-shrink/<name>   ops' acceptance of a source's shrink, taken at its next pull

A ``.state`` file is one JSON line of metadata (naming the data's SHA-256 and length), then
the data. A corrupt, partial or foreign file is logged and skipped, never imported. The files
are left in place (nothing is lost); the store records that it imported them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from icalproxy.daemon.store.records import FeedBody, SourceSnapshot, TokenRecord
from icalproxy.errors import StateError

log = structlog.get_logger("icalproxy.state")
SUFFIX = ".state"


@dataclass(frozen=True, slots=True)
class Stored:
    data: bytes
    meta: dict[str, Any]


@dataclass(slots=True)
class LegacyState:
    tokens: list[TokenRecord] = field(default_factory=list)
    sources: list[SourceSnapshot] = field(default_factory=list)
    feeds: list[FeedBody] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.tokens or self.sources or self.feeds or self.accepted)


def read_legacy(state_dir: Path) -> LegacyState:
    state = LegacyState()
    tokens_file = state_dir / "tokens.json"
    if tokens_file.exists():
        try:
            raw = json.loads(tokens_file.read_text(encoding="utf-8"))
            state.tokens = [TokenRecord(**item) for item in raw["tokens"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateError(f"token file {tokens_file.name} is unreadable: {type(exc).__name__}") from exc
    for name, stored in _folder(state_dir / "sources"):
        meta = stored.meta
        state.sources.append(
            SourceSnapshot(
                name,
                stored.data,
                etag=meta.get("etag"),
                last_modified=meta.get("last_modified"),
                fetched=meta.get("fetched"),
                changed=meta.get("changed"),
                events=int(meta.get("events", 0)),
            )
        )
    for name, stored in _folder(state_dir / "feeds"):
        meta = stored.meta
        state.feeds.append(
            FeedBody(
                name, stored.data, str(meta["etag"]), int(meta["last_modified"]), int(meta.get("events", 0))
            )
        )
    accept = state_dir / "accept-shrink"
    if accept.is_dir():
        state.accepted = sorted(path.name for path in accept.iterdir() if not path.name.startswith("."))
    return state


def _folder(folder: Path) -> list[tuple[str, Stored]]:
    found = []
    for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
        try:
            stored = decode_state(path.read_bytes())
        except OSError as exc:
            log.error("state_unreadable", kind=folder.name, name=path.stem, error=type(exc).__name__)
            continue
        if stored is None or (folder.name == "feeds" and not {"etag", "last_modified"} <= set(stored.meta)):
            log.error("state_corrupt_ignored", kind=folder.name, name=path.stem)
            continue
        found.append((path.stem, stored))
    return found


def decode_state(raw: bytes) -> Stored | None:
    """A ``.state`` file's content, or None unless it is whole and its checksum matches."""
    header, newline, data = raw.partition(b"\n")
    if not newline:
        return None
    try:
        meta = json.loads(header)
    except ValueError:
        return None
    if (
        not isinstance(meta, dict)
        or meta.get("bytes") != len(data)
        or meta.get("sha256") != hashlib.sha256(data).hexdigest()
    ):
        return None
    return Stored(data, meta)
