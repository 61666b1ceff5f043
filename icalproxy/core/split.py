"""A rendered feed → one calendar object resource per UID, for pushing over CalDAV. Pure.

RFC 4791 §4.1: a calendar object resource holds the components of one UID (the master and
its overrides) and the VTIMEZONEs they reference, and no METHOD property (§5.3.2). Each
resource carries a content hash that ignores DTSTAMP: Teamup and Google stamp every event
with the time of the export, so an unchanged event would otherwise look changed at every
pull and be pushed again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# Calendar properties a resource keeps from the feed header; NAME, X-WR-CALNAME, METHOD and
# the refresh hints describe the subscribed feed, not one object in someone's calendar.
_HEADER_KEEP = re.compile(rb"^(?:VERSION|PRODID|CALSCALE):(?:[^\r\n]|\r?\n[ \t])*\r?\n", re.M)
_UID = re.compile(rb"^UID(?:;[^:\r\n]*)?:([^\r\n]*)", re.M)
_TZID_LINE = re.compile(rb"^TZID(?:;[^:\r\n]*)?:([^\r\n]*)", re.M)
_TZID_PARAM = re.compile(rb';TZID=("[^"]*"|[^;:,\r\n]*)', re.IGNORECASE)
# Property names come from render.py in upper case; a literal "\n" start keeps the search fast.
_DTSTAMP = re.compile(rb"\nDTSTAMP[;:][^\n]*(?:\n[ \t][^\n]*)*")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,79}\Z")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class Resource:
    uid: str
    name: str  # the resource name derived from the UID (the server may store it elsewhere)
    body: bytes
    hash: str  # content hash of ``body`` without DTSTAMP lines


def resource_name(uid: str) -> str:
    """A path segment for ``uid``: the UID itself when it is plain and short, else a readable
    part of it plus a hash of the whole UID (so two UIDs never share a name)."""
    if _SAFE_NAME.match(uid):
        return f"{uid}.ics"
    readable = _UNSAFE.sub("-", uid).strip("-.")[:40]
    digest = hashlib.sha256(uid.encode()).hexdigest()[:20]
    return f"{readable}-{digest}.ics" if readable else f"{digest}.ics"


def content_hash(body: bytes) -> str:
    """SHA-256 of the resource without its DTSTAMP lines (see the module docstring)."""
    return hashlib.sha256(_DTSTAMP.sub(b"", body)).hexdigest()[:32]


def split_feed(feed: bytes) -> dict[str, Resource]:
    """One resource per UID, in the feed's order; components keep their rendered bytes."""
    first = feed.find(b"BEGIN:V", feed.find(b"BEGIN:VCALENDAR") + 1)
    header = b"".join(_HEADER_KEEP.findall(feed[: first if first > 0 else len(feed)]))
    timezones: dict[str, bytes] = {}
    events: dict[str, list[bytes]] = {}
    for block in _blocks(feed, b"VTIMEZONE"):
        tzid = _first(_TZID_LINE, block)
        if tzid is not None:
            timezones.setdefault(tzid, block)
    for block in _blocks(feed, b"VEVENT"):
        uid = _first(_UID, block)
        if uid is not None:
            events.setdefault(uid, []).append(block)
    head = b"BEGIN:VCALENDAR\r\n" + header
    resources: dict[str, Resource] = {}
    for uid, blocks in events.items():
        needed: dict[str, None] = {}
        for block in blocks:
            for found in _TZID_PARAM.findall(_unfold(block)):
                needed[found.strip(b'"').decode("utf-8", "replace")] = None
        zones = [timezones[tzid] for tzid in needed if tzid in timezones]
        body = head + b"".join(zones) + b"".join(blocks) + b"END:VCALENDAR\r\n"
        resources[uid] = Resource(uid, resource_name(uid), body, content_hash(body))
    return resources


def _blocks(feed: bytes, name: bytes) -> list[bytes]:
    """Every ``name`` component, BEGIN to END line. A VEVENT never holds a VEVENT, nor a
    VTIMEZONE a VTIMEZONE: the first END of the same name closes it (a VALARM or STANDARD
    inside ends with its own name)."""
    begin, end = b"\nBEGIN:" + name + b"\r\n", b"\nEND:" + name + b"\r\n"
    found = []
    position = feed.find(begin)
    while position >= 0:
        stop = feed.find(end, position + len(begin))
        if stop < 0:
            break
        found.append(feed[position + 1 : stop + len(end)])
        position = feed.find(begin, stop + len(end) - 1)
    return found


def _first(pattern: re.Pattern[bytes], block: bytes) -> str | None:
    """The value of a block's first line matching ``pattern``, folds undone."""
    match = pattern.search(_unfold(block))
    return match[1].decode("utf-8", "replace").strip() if match else None


def _unfold(block: bytes) -> bytes:
    return block.replace(b"\r\n ", b"").replace(b"\r\n\t", b"").replace(b"\n ", b"").replace(b"\n\t", b"")
