"""Feed bytes: calendar header, VTIMEZONEs, events. Deterministic, so the ETag is stable."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from icalproxy import __version__
from icalproxy.core.lines import escape_text, fold

PRODID = f"-//icalproxy//icalproxy {__version__}//EN"


def duration_text(delta: timedelta) -> str:
    """timedelta → RFC 5545 DURATION (``PT15M``, ``P1D``, ``PT1H30M``)."""
    seconds = max(int(delta.total_seconds()), 60)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(
        f"{number}{unit}" for number, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if number
    )
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")


def render_calendar(title: str, refresh: timedelta, timezones: list[bytes], events: Sequence[bytes]) -> bytes:
    """``events``: their bytes, whole or in pieces (joined as they are)."""
    name = escape_text(title)
    interval = duration_text(refresh)
    header = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"NAME:{name}",
        f"X-WR-CALNAME:{name}",
        f"REFRESH-INTERVAL;VALUE=DURATION:{interval}",
        f"X-PUBLISHED-TTL:{interval}",
    ]
    parts: list[bytes] = [fold(line) for line in header]
    parts.extend(timezones)
    parts.extend(events)
    parts.append(b"END:VCALENDAR\r\n")
    return b"".join(parts)


def etag_of(body: bytes) -> str:
    """A strong ETag: a hash of the exact bytes served."""
    import hashlib  # noqa: PLC0415  (imported when first needed: start-up)

    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
