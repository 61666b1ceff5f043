"""Typed decoding of the few values that rules and recurrence safety need.

Times are compared approximately: a TZID or floating time is read as if it were UTC. Date
windows are measured in days, so an error of at most ±14 hours does not matter, and it
spares a time-zone database lookup per event.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})\Z")
_DATETIME = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z?\Z")
_D = r"\d{4}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
_T = r"T(?:[01]\d|2[0-3])[0-5]\d(?:[0-5]\d|60)Z?"
DATE_SYNTAX = re.compile(_D + r"\Z")
WHEN_SYNTAX = re.compile(_D + f"(?:{_T})?" + r"\Z")  # a DATE or DATE-TIME, by syntax alone
_DURATION = re.compile(r"([+-])?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?\Z")
_RRULE_PART = re.compile(r"[A-Z]+=[A-Z0-9,+\-:TZ]+\Z")
_FREQS = {"SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"}


def parse_when(value: str, value_type: str | None = None) -> datetime | None:
    """DATE or DATE-TIME text → naive datetime (approximately UTC), None when unreadable."""
    text = value.strip()
    match = _DATETIME.match(text)
    try:
        if match:
            if value_type is not None and value_type.upper() == "DATE":
                return None
            year, month, day, hour, minute, second = (int(part) for part in match.groups())
            return datetime(year, month, day, hour, minute, min(second, 59))
        match = _DATE.match(text)
        if match:
            year, month, day = (int(part) for part in match.groups())
            return datetime(year, month, day)
    except ValueError:
        return None
    return None


def is_date(value: str) -> bool:
    return _DATE.match(value.strip()) is not None


def recurrence_key(value: str) -> str:
    """Normalised RECURRENCE-ID / EXDATE text used to match overrides with instances."""
    text = value.strip().upper()
    return text if parse_when(text) is not None else ""


def parse_duration(value: str) -> timedelta | None:
    match = _DURATION.match(value.strip().upper())
    if not match or value.strip().upper() in ("P", "PT"):
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


def valid_date_list(value: str, value_type: str | None) -> bool:
    """EXDATE/RDATE/RECURRENCE-ID value: comma-separated dates, date-times or periods."""
    items = value.split(",")
    if not items or not value.strip():
        return False
    for item in items:
        if value_type is not None and value_type.upper() == "PERIOD":
            start, _, end = item.partition("/")
            if parse_when(start) is None or (parse_when(end) is None and parse_duration(end) is None):
                return False
        elif parse_when(item, value_type) is None:
            return False
    return True


def valid_rrule(value: str) -> bool:
    """A syntactic check that keeps client parsers from choking on a broken RRULE."""
    parts = value.strip().upper().split(";")
    names = set()
    for part in parts:
        if not _RRULE_PART.match(part):
            return False
        names.add(part.split("=", 1)[0])
    freq = [part for part in parts if part.startswith("FREQ=")]
    return len(freq) == 1 and freq[0][5:] in _FREQS and not ("UNTIL" in names and "COUNT" in names)


def rrule_end(rrule: str, start: datetime, limit: datetime) -> datetime | None:
    """Last occurrence start of a rule (None: unbounded); COUNT expanded up to ``limit``."""
    fields = dict(part.split("=", 1) for part in rrule.upper().split(";") if "=" in part)
    if "UNTIL" in fields:
        return parse_when(fields["UNTIL"])
    if "COUNT" not in fields:
        return None
    from dateutil.rrule import rrulestr  # type: ignore[import-untyped]  # noqa: PLC0415  (COUNT only)

    try:
        rule = rrulestr(rrule, dtstart=start, cache=False)
        last: datetime | None = None
        for occurrence in rule.xafter(start - timedelta(seconds=1), count=int(fields["COUNT"])):
            if occurrence > limit:
                return occurrence  # type: ignore[no-any-return]
            last = occurrence
    except (ValueError, TypeError, OverflowError):
        return None
    return last
