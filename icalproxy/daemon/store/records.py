"""The rows of the state store, as frozen types. Times are epoch seconds (float) unless named
otherwise; token times stay the ISO strings ``token list`` has always shown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Lookup = Literal["valid", "revoked", "unknown"]
AGENT_FAMILIES = ("Google", "Outlook", "Apple", "Thunderbird", "Nextcloud", "other")


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    feed: str
    label: str
    sha256: str
    created: str
    revoked: str | None = None


@dataclass(frozen=True, slots=True)
class TokenUse:
    """Subscriber stats of one token: when it was last used and by which calendar app."""

    token_id: str
    last_used: float
    agent: str  # one of AGENT_FAMILIES


@dataclass(frozen=True, slots=True)
class SourceSnapshot:
    """A source's last good raw bytes with its validators and shrink-guard state."""

    name: str
    body: bytes
    etag: str | None = None
    last_modified: str | None = None
    fetched: float | None = None
    changed: float | None = None
    events: int = 0
    held_pulls: int = 0
    held_events: int | None = None


@dataclass(frozen=True, slots=True)
class FeedBody:
    """A rendered feed to install; the store gives it the next version number."""

    feed: str
    body: bytes
    etag: str
    last_modified: int  # when these bytes first appeared (epoch seconds)
    events: int


@dataclass(frozen=True, slots=True)
class StoredFeed:
    feed: str
    version: int  # monotonic per feed
    body: bytes
    etag: str
    last_modified: int
    events: int
    installed: float


@dataclass(frozen=True, slots=True)
class FeedMeta:
    """A feed version without its body."""

    feed: str
    version: int
    etag: str
    last_modified: int
    events: int
    bytes: int
    installed: float


@dataclass(frozen=True, slots=True)
class StatusEntry:
    """Client-facing status history: which label an occurrence showed, since when."""

    feed: str
    source: str
    uid: str
    occurrence: str  # RECURRENCE-ID value, "" for a master
    label: str
    description: str
    since: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class VisibleVersion:
    """Visible-content history of one event in one feed, for a stable DTSTAMP and SEQUENCE."""

    feed: str
    uid: str
    content_hash: str
    first_seen: float
    sequence: int
