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
_HEADER_KEEP = (b"VERSION:", b"PRODID:", b"CALSCALE:")
_TZID_PARAM = re.compile(rb';TZID=("[^"]*"|[^;:,]*)', re.IGNORECASE)
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,79}\Z")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class Resource:
    uid: str
    name: str  # the resource name derived from the UID (the server may store it elsewhere)
    body: bytes
    hash: str  # content hash of ``body`` without DTSTAMP lines


@dataclass(slots=True)
class _Block:
    name: str  # VEVENT or VTIMEZONE
    lines: list[bytes]  # unfolded lines of the block (BEGIN … END)
    raw: bytes  # the block as rendered (folded, CRLF)


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
    digest = hashlib.sha256()
    for line in _unfolded_lines(body):
        if not line.upper().startswith(b"DTSTAMP"):
            digest.update(line)
            digest.update(b"\n")
    return digest.hexdigest()[:32]


def split_feed(feed: bytes) -> dict[str, Resource]:
    """One resource per UID, in the feed's order; components keep their rendered bytes."""
    header: list[bytes] = []
    timezones: dict[str, bytes] = {}
    events: dict[str, list[_Block]] = {}
    for block in _blocks(feed, header):
        if block.name == "VTIMEZONE":
            tzid = _value(block.lines, b"TZID")
            if tzid is not None:
                timezones.setdefault(tzid, block.raw)
        elif block.name == "VEVENT":
            uid = _value(block.lines, b"UID")
            if uid is not None:
                events.setdefault(uid, []).append(block)
    head = b"BEGIN:VCALENDAR\r\n" + b"".join(header)
    resources: dict[str, Resource] = {}
    for uid, blocks in events.items():
        needed: dict[str, None] = {}
        for block in blocks:
            for line in block.lines:
                for match in _TZID_PARAM.finditer(line.split(b":", 1)[0]):
                    needed[match[1].strip(b'"').decode("utf-8", "replace")] = None
        zones = [timezones[tzid] for tzid in needed if tzid in timezones]
        body = head + b"".join(zones) + b"".join(block.raw for block in blocks) + b"END:VCALENDAR\r\n"
        resources[uid] = Resource(uid, resource_name(uid), body, content_hash(body))
    return resources


def _unfolded_lines(data: bytes) -> list[bytes]:
    return re.sub(rb"\r?\n[ \t]", b"", data).replace(b"\r\n", b"\n").split(b"\n")


def _value(lines: list[bytes], name: bytes) -> str | None:
    for line in lines:
        key, sep, value = line.partition(b":")
        if sep and key.split(b";", 1)[0].upper() == name:
            return value.decode("utf-8", "replace").strip()
    return None


def _blocks(feed: bytes, header: list[bytes]) -> list[_Block]:
    """Top-level components of the calendar; kept header lines go into ``header``."""
    found: list[_Block] = []
    raw_lines = feed.replace(b"\r\n", b"\n").split(b"\n")
    depth = 0
    current: _Block | None = None
    raw: list[bytes] = []
    for raw_line in raw_lines:
        if raw_line[:1] in (b" ", b"\t"):  # a fold continues the previous line
            if current is not None:
                current.lines[-1] += raw_line[1:]
                raw.append(raw_line)
            continue
        upper = raw_line.upper()
        if upper.startswith(b"BEGIN:"):
            depth += 1
            if depth == 2:
                current, raw = _Block(upper[6:].decode("ascii", "replace").strip(), [], b""), []
        if current is not None:
            current.lines.append(raw_line)
            raw.append(raw_line)
        elif depth == 1 and upper.startswith(_HEADER_KEEP):
            header.append(raw_line + b"\r\n")
        if upper.startswith(b"END:"):
            depth -= 1
            if depth == 1 and current is not None:
                current.raw = b"".join(line + b"\r\n" for line in raw)
                found.append(current)
                current = None
    return found
