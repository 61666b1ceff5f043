"""Stable output: an event's DTSTAMP, LAST-MODIFIED and SEQUENCE follow what its subscribers
can see, never the source's own stamps.

Sources re-stamp freely: Google stamps every DTSTAMP with the export time, and an edit of an
internal note bumps LAST-MODIFIED and SEQUENCE. Copied through, every pull would look like a
change to every subscriber (a new ETag, a full download) and tell a client *when* staff edit
internal notes. So the source's stamps are dropped and each published event gets stamps from
the history of its visible content: a hash of the event as published without them. The same
content keeps its stamp and sequence; a change the subscriber can see gets the time it was
first seen and the next sequence number. Without a history (``icalproxy render``), new
content is stamped with a fixed moment, so the bytes depend on the visible content alone.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import NamedTuple

from icalproxy.core.lines import fold

FIXED_STAMP = "19700101T000000Z"
_STAMP_LINES = re.compile(rb"\r\n(?:DTSTAMP|LAST-MODIFIED|SEQUENCE)[;:][^\r\n]*(?:\r\n[ \t][^\r\n]*)*")
_BEGIN = b"BEGIN:VEVENT\r\n"


class Stamp(NamedTuple):
    content: str  # hash of the visible content
    stamp: str  # UTC DATE-TIME text: when this content was first published
    sequence: int


StampKey = tuple[str, str, str]  # (feed, UID, RECURRENCE-ID key or "")


def stamp_event(
    chunk: bytes, key: StampKey, history: Mapping[StampKey, Stamp] | None, now: str
) -> tuple[bytes, Stamp]:
    """The event with stamps from its visible-content history, and its history entry."""
    body = _STAMP_LINES.sub(b"", chunk)
    content = hashlib.blake2b(body, digest_size=16).hexdigest()
    previous = history.get(key) if history is not None else None
    if previous is not None and previous.content == content:
        entry = previous
    elif previous is not None:
        entry = Stamp(content, now, previous.sequence + 1)
    else:
        entry = Stamp(content, now if history is not None else FIXED_STAMP, 0)
    lines = fold(f"DTSTAMP:{entry.stamp}")
    if history is not None:  # a real moment: when subscribers first saw this content
        lines += fold(f"LAST-MODIFIED:{entry.stamp}")
    if entry.sequence:
        lines += fold(f"SEQUENCE:{entry.sequence}")
    if body.startswith(_BEGIN):
        # After BEGIN and the UID line (folded or not): the usual place clients look.
        uid_end = body.find(b"\r\n", len(_BEGIN))
        while body.startswith((b"\r\n ", b"\r\n\t"), uid_end):
            uid_end = body.find(b"\r\n", uid_end + 2)
        at = uid_end + 2
        return body[:at] + lines + body[at:], entry
    return body, entry
