"""VTIMEZONEs from the tz database, written from the zone's current rule.

A TZif file (the tz database's binary form) ends with a POSIX TZ string that states the
rule in force today, such as ``CET-1CEST,M3.5.0,M10.5.0/3``. That rule becomes one
STANDARD and one DAYLIGHT part with a yearly RRULE from 1970, the compact form calendar
servers publish (tzurl's "outlook" zones). Zones whose rule this cannot state (Julian-day
rules, transition times outside 00:00–23:59) return None; the caller falls back.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from functools import lru_cache

from icalproxy.core.lines import fold

_NAME = r"(<[A-Za-z0-9+-]+>|[A-Za-z]{3,})"
_OFFSET = r"([+-]?\d{1,2}(?::\d{2}){0,2})"
_RULE = r"M(\d{1,2})\.([1-5])\.([0-6])(?:/(\d{1,2})(?::(\d{2}))?)?"
_POSIX = re.compile(_NAME + _OFFSET + r"(?:" + _NAME + _OFFSET + r"?,(" + _RULE + r"),(" + _RULE + r"))?")
_DAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")


@lru_cache(maxsize=256)
def tzdata_timezone(tzid: str) -> bytes | None:
    rule = _posix_rule(tzid)
    if rule is None:
        return None
    match = _POSIX.fullmatch(rule)
    if match is None:
        return None
    std_name, std_offset, dst_name = match[1], _utc_offset(match[2]), match[3]
    lines = ["BEGIN:VTIMEZONE", f"TZID:{tzid}"]
    if dst_name is None:
        lines += ["BEGIN:STANDARD", "DTSTART:19700101T000000"]
        lines += [f"TZOFFSETFROM:{std_offset}", f"TZOFFSETTO:{std_offset}"]
        lines.append(f"TZNAME:{_abbreviation(std_name)}")
        lines += ["END:STANDARD", "END:VTIMEZONE"]
        return b"".join(fold(line) for line in lines)
    dst_offset = _utc_offset(match[4]) if match[4] else _shift(std_offset, 3600)
    start, end = match.groups()[4:10], match.groups()[10:16]
    for part, (name, offset_from, offset_to, when) in (
        ("DAYLIGHT", (dst_name, std_offset, dst_offset, start)),
        ("STANDARD", (std_name, dst_offset, std_offset, end)),
    ):
        _, month, week, day, hour, minute = when
        lines += [f"BEGIN:{part}", f"DTSTART:{_first_in_1970(int(month), int(week), int(day), hour, minute)}"]
        lines += [f"TZOFFSETFROM:{offset_from}", f"TZOFFSETTO:{offset_to}", f"TZNAME:{_abbreviation(name)}"]
        byday = ("-1" if week == "5" else week) + _DAYS[int(day)]
        lines += [f"RRULE:FREQ=YEARLY;BYDAY={byday};BYMONTH={int(month)}", f"END:{part}"]
    lines.append("END:VTIMEZONE")
    return b"".join(fold(line) for line in lines)


def _posix_rule(tzid: str) -> str | None:
    data = _tzif(tzid)
    if data is None or not data.startswith(b"TZif") or data[4:5] in (b"\x00", b""):
        return None
    body = data.rstrip(b"\n")
    footer = body[body.rfind(b"\n") + 1 :]
    try:
        return footer.decode("ascii").strip() or None
    except UnicodeDecodeError:
        return None


def _tzif(tzid: str) -> bytes | None:
    """The zone's TZif bytes, from the tzdata package (a dependency: the data, not the
    machine's copy, so that every installation writes the same bytes)."""
    parts = tzid.split("/")
    if any(not part or part.startswith(".") or "\\" in part or "\x00" in part for part in parts):
        return None  # only names inside the package's zoneinfo folder
    try:
        import tzdata  # type: ignore[import-untyped]  # noqa: PLC0415  (a folder: no importlib.resources)

        folder = tzdata.__file__.replace("\\", "/").rpartition("/")[0]  # the package's own data
        with open("/".join((folder, "zoneinfo", *parts)), "rb") as handle:
            return handle.read()
    except (ImportError, OSError, ValueError):
        return None


def _utc_offset(posix: str) -> str:
    """POSIX offsets count west of Greenwich: ``-1`` is UTC+01:00."""
    sign = "+" if posix.startswith("-") else "-"
    parts = [int(part) for part in posix.lstrip("+-").split(":")] + [0, 0]
    hours, minutes, seconds = parts[:3]
    if hours == minutes == seconds == 0:
        sign = "+"
    return f"{sign}{hours:02d}{minutes:02d}" + (f"{seconds:02d}" if seconds else "")


def _shift(offset: str, seconds: int) -> str:
    sign = -1 if offset[0] == "-" else 1
    total = sign * (int(offset[1:3]) * 3600 + int(offset[3:5]) * 60 + int(offset[5:7] or 0)) + seconds
    mark = "-" if total < 0 else "+"
    total = abs(total)
    return f"{mark}{total // 3600:02d}{total % 3600 // 60:02d}"


def _abbreviation(name: str) -> str:
    return name.strip("<>")


def _first_in_1970(month: int, week: int, day: int, hour: str | None, minute: str | None) -> str:
    """The local start of rule ``Mmonth.week.day/hour:minute`` in 1970 (week 5: the last)."""
    first = date(1970, month, 1)
    # POSIX day 0 is Sunday; date.weekday() counts from Monday.
    day_of_month = 1 + (day - (first.weekday() + 1)) % 7
    days = []
    while day_of_month <= (date(1970 + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day:
        days.append(day_of_month)
        day_of_month += 7
    chosen = days[-1] if week == 5 else days[week - 1]
    return f"1970{month:02d}{chosen:02d}T{int(hour or 2):02d}{int(minute or 0):02d}00"
