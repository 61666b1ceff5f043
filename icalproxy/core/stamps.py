"""Stable output: an event's DTSTAMP, LAST-MODIFIED and SEQUENCE follow what its subscribers
can see, never the source's own stamps.

Sources re-stamp freely: Google stamps every DTSTAMP with the export time, and an edit of an
internal note bumps LAST-MODIFIED and SEQUENCE. Copied through, every pull would look like a
change to every subscriber (a new ETag, a full download) and tell a client *when* staff edit
internal notes. So redaction never copies a source's stamps (redact.STAMPED), and each
published event gets stamps from the history of its visible content: a hash of the event as
redaction wrote it. The same
content keeps its stamp and sequence; a change the subscriber can see gets the time it was
first seen and the next sequence number. Without a history (``icalproxy render``), new
content is stamped with a fixed moment, so the bytes depend on the visible content alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from icalproxy.core.lines import fold

FIXED_STAMP = "19700101T000000Z"
_BEGIN = b"BEGIN:VEVENT\r\n"


class Stamp(NamedTuple):
    content: str  # hash of the visible content
    stamp: str  # UTC DATE-TIME text: when this content was first published
    sequence: int


StampKey = tuple[str, str, str]  # (feed, UID, RECURRENCE-ID key or "")
Parts = tuple[bytes, ...]  # an event's bytes in pieces, for one b"".join


def content_hash(chunk: bytes) -> str:
    """A hash of an event as redaction wrote it (redact.py never copies a source's stamps):
    what a subscriber can see."""
    import hashlib  # noqa: PLC0415  (imported when first needed: start-up)

    return hashlib.blake2b(chunk, digest_size=16).hexdigest()


def stamp_event(
    chunk: bytes, key: StampKey, history: Mapping[StampKey, Stamp] | None, now: str
) -> tuple[Parts, Stamp | None]:
    """The event with stamps from its visible-content history, as parts for the feed's one
    join (no joined copy of each event), and its new history entry (None without a history:
    every event gets the fixed stamp, nothing is hashed)."""
    if history is None:
        return _with_stamps(chunk, _FIXED_LINES), None
    content = content_hash(chunk)
    previous = history.get(key)
    if previous is not None and previous.content == content:
        entry = previous
    elif previous is not None:
        entry = Stamp(content, now, previous.sequence + 1)
    else:
        entry = Stamp(content, now, 0)
    # LAST-MODIFIED: a real moment, when subscribers first saw this content.
    lines = fold(f"DTSTAMP:{entry.stamp}") + fold(f"LAST-MODIFIED:{entry.stamp}")
    if entry.sequence:
        lines += fold(f"SEQUENCE:{entry.sequence}")
    return _with_stamps(chunk, lines), entry


_FIXED_LINES = fold(f"DTSTAMP:{FIXED_STAMP}")


def _with_stamps(chunk: bytes, lines: bytes) -> Parts:
    """``lines`` after BEGIN and the UID line (folded or not): the usual place clients look."""
    if not chunk.startswith(_BEGIN):
        return (chunk,)
    uid_end = chunk.find(b"\r\n", len(_BEGIN))
    while chunk.startswith((b"\r\n ", b"\r\n\t"), uid_end):
        uid_end = chunk.find(b"\r\n", uid_end + 2)
    at = uid_end + 2
    return (chunk[:at], lines, chunk[at:])
