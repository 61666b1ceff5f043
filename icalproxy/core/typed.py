"""The value layer: every value a feed can emit, parsed into its typed form and written again.

Nothing a subscriber sees is copied as text from a source: a date is read as year, month,
day… and printed from those numbers; a recurrence rule keeps only RFC 5545 parts, in their
canonical order; a parameter keeps only the values its grammar allows; TEXT loses every
control character. Whatever does not parse is dropped (the caller reports it), so a source
cannot smuggle free text through a kept property, and adding a property to a profile's
``keep`` cannot re-open that hole.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

# ------------------------------------------------------------------ TEXT

# C0 and C1 controls, DEL, NEL, line and paragraph separators: TEXT output never carries them
# (a bare CR or U+2028 makes some readers start a new line, that is, a new property).
_UNSAFE_TEXT = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x85\u2028\u2029]")


def clean_text(text: str) -> str:
    """Plain text without controls: line breaks of any kind become ``\\n``, tabs a space,
    every other control character goes."""
    if _UNSAFE_TEXT.search(text) is None:
        return text
    text = _LINE_BREAKS.sub("\n", text).replace("\t", " ")
    return _UNSAFE_TEXT.sub("", text)


# ------------------------------------------------------------------ DATE, DATE-TIME, PERIOD

_DATE_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z)?)?")


class When(str):
    """A DATE or DATE-TIME in canonical text: ``20261201``, ``20261201T080000`` or with Z.
    A str itself (cheap to make: one is made per event), ``text`` the plain str."""

    __slots__ = ()

    @property
    def text(self) -> str:
        return str.__str__(self)

    @property
    def is_date(self) -> bool:
        return len(self.text) == 8

    @property
    def is_utc(self) -> bool:
        return self.text.endswith("Z")

    def as_date(self) -> When:
        return When(self.text[:8])

    def with_time_of(self, other: When) -> When:
        """This date at ``other``'s time of day (and its UTC flag)."""
        return When(self.text[:8] + other.text[8:]) if not other.is_date else self.as_date()

    def floating(self) -> When:
        return When(self.text.rstrip("Z"))

    def utc(self) -> When:
        if self.is_date:
            return When(self.text + "T000000Z")
        return self if self.is_utc else When(self.text + "Z")

    def moment(self) -> datetime:
        """Naive datetime of the digits (zone ignored)."""
        text = self.text
        if len(text) == 8:
            return datetime(int(text[:4]), int(text[4:6]), int(text[6:8]))
        return datetime(
            int(text[:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]), int(text[11:13]), int(text[13:15])
        )


def parse_when(text: str) -> When | None:
    """DATE or DATE-TIME text → canonical When, None when it is not one (a leap second reads
    as :59, which every client can place)."""
    match = _DATE_TIME.fullmatch(text.strip().upper())
    if match is None:
        return None
    year, month, day, hour, minute, second, zulu = match.groups()
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return None
    if year == "0000":
        return None
    if hour is None:
        return When(f"{year}{month}{day}")
    if int(hour) > 23 or int(minute) > 59 or int(second) > 60:
        return None
    second = "59" if second == "60" else second
    return When(f"{year}{month}{day}T{hour}{minute}{second}{zulu or ''}")


_DURATION = re.compile(
    r"([+-])?P(?:(\d{1,6})W)?(?:(\d{1,6})D)?(?:T(?:(\d{1,6})H)?(?:(\d{1,6})M)?(?:(\d{1,6})S)?)?"
)


def parse_duration(text: str) -> timedelta | None:
    value = text.strip().upper()
    match = _DURATION.fullmatch(value)
    if match is None or value.rstrip("T").endswith("P") or value.endswith("T"):
        return None
    sign, weeks, days, hours, minutes, seconds = match.groups()
    try:
        delta = timedelta(
            weeks=int(weeks or 0),
            days=int(days or 0),
            hours=int(hours or 0),
            minutes=int(minutes or 0),
            seconds=int(seconds or 0),
        )
    except OverflowError:
        return None
    return -delta if sign == "-" else delta


def format_duration(delta: timedelta) -> str:
    """timedelta → canonical DURATION text (``PT1H30M``, ``P1D``, ``P2W``, ``-PT15M``)."""
    sign = "-" if delta < timedelta() else ""
    seconds = abs(int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if not rest and not hours and days and days % 7 == 0:
        return f"{sign}P{days // 7}W"
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    if not days and not time:
        time = "0S"
    return f"{sign}P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")


class Period(NamedTuple):
    start: When
    end: When | None
    duration: timedelta | None

    @property
    def text(self) -> str:
        tail = self.end.text if self.end is not None else format_duration(self.duration or timedelta())
        return f"{self.start.text}/{tail}"

    def length(self) -> timedelta:
        if self.end is not None:
            return self.end.moment() - self.start.moment()
        return self.duration or timedelta()


def parse_period(text: str) -> Period | None:
    start_text, slash, end_text = text.strip().partition("/")
    start = parse_when(start_text)
    if not slash or start is None or start.is_date:
        return None
    end = parse_when(end_text)
    if end is not None:
        if end.is_date or end.is_utc != start.is_utc or end.moment() < start.moment():
            return None
        return Period(start, end, None)
    duration = parse_duration(end_text)
    if duration is None or duration < timedelta():
        return None
    return Period(start, None, duration)


# ------------------------------------------------------------------ UTC-OFFSET, TZNAME

_OFFSET = re.compile(r"([+-])([01]\d|2[0-3])([0-5]\d)([0-5]\d)?")


def parse_utc_offset(text: str) -> str | None:
    """``+0100``, ``-053000`` → canonical text; ``+5328`` (53 hours) is None. ``-0000`` is
    not allowed by RFC 5545 and reads as ``+0000``."""
    match = _OFFSET.fullmatch(text.strip())
    if match is None:
        return None
    sign, hours, minutes, seconds = match.groups()
    if hours == "00" and minutes == "00" and not int(seconds or 0):
        sign = "+"
    return f"{sign}{hours}{minutes}{seconds if seconds and seconds != '00' else ''}"


_TZNAME = re.compile(r"[A-Za-z0-9+-]{1,12}")


def parse_tzname(text: str) -> str | None:
    """An abbreviation such as ``CET``, ``GMT+1`` or ``-03``; free text is not one."""
    value = text.strip()
    return value if _TZNAME.fullmatch(value) else None


# ------------------------------------------------------------------ RECUR

_WEEKDAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")
_FREQS = frozenset({"SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
_BYDAY = re.compile(r"([+-]?)(\d{1,2})?(SU|MO|TU|WE|TH|FR|SA)")
_INT = re.compile(r"([+-]?)(\d{1,3})")
# Numeric BY parts: (lowest, highest, may be negative)
_NUMERIC_PARTS = {
    "BYSECOND": (0, 60, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}
RECUR_ORDER = (
    "FREQ",
    "UNTIL",
    "COUNT",
    "INTERVAL",
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYDAY",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
)


class Recur(NamedTuple):
    parts: dict[str, str]  # canonical values, keys from RECUR_ORDER
    dropped: tuple[str, ...]  # names of parts that were not RFC 5545 parts (never values)
    text: str  # the canonical RRULE value

    def with_until(self, until: str) -> Recur:
        return _recur({**self.parts, "UNTIL": until}, self.dropped)


def _recur(parts: dict[str, str], dropped: tuple[str, ...]) -> Recur:
    text = ";".join(f"{name}={parts[name]}" for name in RECUR_ORDER if name in parts)
    return Recur(parts, dropped, text)


def parse_recur(text: str) -> Recur | None:
    """RRULE value → its RFC 5545 parts in canonical form; None when FREQ is missing, a known
    part is malformed or repeated, or COUNT and UNTIL are both given. Unknown parts
    (``X-NAME=…``, ``NOTE=…``, RFC 7529's RSCALE) are dropped and named in ``dropped``."""
    parts: dict[str, str] = {}
    dropped: list[str] = []
    for piece in text.strip().split(";"):
        if not piece:
            continue
        name, equals, raw = piece.partition("=")
        name = name.strip().upper()
        if not equals:
            return None
        if name not in RECUR_ORDER:
            dropped.append(name[:20] if re.fullmatch(r"[A-Z0-9-]{1,20}", name) else "?")
            continue
        if name in parts:
            return None
        value = _recur_part(name, raw.strip().upper())
        if value is None:
            return None
        parts[name] = value
    if "FREQ" not in parts or ("COUNT" in parts and "UNTIL" in parts):
        return None
    return _recur(parts, tuple(dropped))


@lru_cache(maxsize=8192)
def _recur_part(name: str, raw: str) -> str | None:
    if name == "FREQ":
        return raw if raw in _FREQS else None
    if name == "UNTIL":
        when = parse_when(raw)
        return when.text if when is not None else None
    if name in ("COUNT", "INTERVAL"):
        return str(int(raw)) if raw.isdigit() and 0 < int(raw) < 10**9 else None
    if name == "WKST":
        return raw if raw in _WEEKDAYS else None
    items = raw.split(",")
    out = []
    if name == "BYDAY":
        for item in items:
            match = _BYDAY.fullmatch(item)
            if match is None:
                return None
            sign, number, day = match.groups()
            if number is not None and not 1 <= int(number) <= 53:
                return None
            out.append((sign if number else "") + (str(int(number)) if number else "") + day)
        return ",".join(out)
    low, high, signed = _NUMERIC_PARTS[name]
    for item in items:
        match = _INT.fullmatch(item)
        if match is None or (match[1] == "-" and not signed):
            return None
        number = int(match[2])
        if not low <= number <= high:
            return None
        out.append(("-" if match[1] == "-" else "") + str(number))
    return ",".join(out)


def until_like(until: When, start: When, start_zoned: bool) -> When:
    """UNTIL of the type RFC 5545 asks for, given DTSTART: a date for a date; UTC for a zoned
    or UTC start; floating for a floating start. A date UNTIL of a timed series keeps the
    whole last day."""
    if start.is_date:
        return until.as_date()
    if until.is_date:
        until = When(until.text + "T235959")
    if start_zoned or start.is_utc:
        return until.utc()
    return until.floating()


# ------------------------------------------------------------------ time zones

_ZONE_SYNTAX = re.compile(r"[A-Za-z][A-Za-z0-9_+-]{0,30}(?:/[A-Za-z0-9][A-Za-z0-9_+-]{0,30}){0,2}")


@lru_cache(maxsize=4096)
def iana_zone(name: str) -> str | None:
    """The IANA name a TZID means, or None: ``Europe/Berlin`` as it is, a vendor path such as
    ``/mozilla.org/20050126_1/Europe/Berlin`` by its IANA tail (as icalendar reads it), a
    Windows name (``W. Europe Standard Time``) by the CLDR mapping."""
    text = name.strip()
    if not text or len(text) > 200:
        return None
    if _known_zone(text):
        return text
    pieces = [piece for piece in text.split("/") if piece]
    for size in (3, 2, 1):
        if len(pieces) > size:
            candidate = "/".join(pieces[-size:])
            if "/" in candidate and _known_zone(candidate):
                return candidate
    windows = _windows_zones().get(text)
    if windows is not None and _known_zone(windows):
        return windows
    return None


@lru_cache(maxsize=4096)
def _known_zone(name: str) -> bool:
    if _ZONE_SYNTAX.fullmatch(name) is None:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@lru_cache(maxsize=1)
def _windows_zones() -> dict[str, str]:
    """Windows time-zone names → IANA names (the CLDR table that icalendar ships)."""
    try:
        from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON  # noqa: PLC0415  (rare path)
    except ImportError:  # pragma: no cover - icalendar is a dependency
        return {}
    return {str(key): str(value) for key, value in WINDOWS_TO_OLSON.items()}
