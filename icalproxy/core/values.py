"""Typed decoding of the few values that rules and recurrence safety need.

Times are compared approximately: a TZID or floating time is read as if it were UTC. Date
windows are measured in days, so an error of at most ±14 hours does not matter, and it
spares a time-zone database lookup per event.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import cache
from types import FunctionType
from typing import Any

from icalproxy.core import typed

_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})\Z")
_DATETIME = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z?\Z")
_D = r"\d{4}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
_T = r"T(?:[01]\d|2[0-3])[0-5]\d(?:[0-5]\d|60)Z?"
DATE_SYNTAX = re.compile(_D + r"\Z")
WHEN_SYNTAX = re.compile(_D + f"(?:{_T})?" + r"\Z")  # a DATE or DATE-TIME, by syntax alone


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
    return typed.parse_duration(value)


class RecurrenceBudget:
    """Steps of COUNT-rule expansion one run may spend: a step is one period dateutil looks at
    (a day or a week; a month counts 2, a year 20) or one occurrence it yields. A rule that
    never matches makes dateutil walk to the year 9999, and ``FREQ=SECONDLY;COUNT=100000000``
    yields for ever, so each rule gets ``per_rule`` steps and the run ``total``. Past either,
    the caller treats the series as open-ended and records its place in ``cut``."""

    __slots__ = ("cut", "left", "per_rule")

    def __init__(self, per_rule: int = 20_000, total: int = 1_000_000) -> None:
        self.per_rule = per_rule
        self.left = total
        self.cut: list[tuple[str, int]] = []  # (source, line) of each series cut short


class RecurrenceTooCostly(Exception):
    """A rule needed more steps than its budget allowed."""


class _Steps:
    """The steps a single rule may still take."""

    __slots__ = ("budget", "left")

    def __init__(self, budget: RecurrenceBudget) -> None:
        self.budget = budget
        self.left = min(budget.per_rule, budget.left)

    def take(self, weight: int = 1) -> None:
        self.left -= weight
        self.budget.left -= weight
        if self.left < 0:
            raise RecurrenceTooCostly


def rrule_end(rrule: str, start: datetime, limit: datetime, budget: RecurrenceBudget) -> datetime | None:
    """The last occurrence start of a rule, or its first one after ``limit`` (enough to tell
    that the series reaches past it); None when unbounded or unreadable. Raises
    RecurrenceTooCostly when ``budget`` runs out first."""
    fields = dict(part.split("=", 1) for part in rrule.upper().split(";") if "=" in part)
    if "UNTIL" in fields:
        return parse_when(fields["UNTIL"])
    if "COUNT" not in fields:
        return None
    from dateutil.rrule import rrule as Rule  # type: ignore[import-untyped]  # noqa: PLC0415
    from dateutil.rrule import rrulestr  # noqa: PLC0415  (COUNT only)

    steps = _Steps(budget)
    last: datetime | None = None
    try:
        rule = rrulestr(rrule, dtstart=start, cache=False)
        if not isinstance(rule, Rule):
            return None
        for occurrence in _counted_iteration()(rule, steps):
            steps.take()
            if occurrence > limit:
                return occurrence
            last = occurrence
    except (ValueError, TypeError, OverflowError):
        return None
    return last


def rrule_starts(rrule: str, start: datetime, until: datetime, budget: RecurrenceBudget) -> list[datetime]:
    """The rule's occurrence starts up to ``until`` (naive wall times, as ``start``), [] when the
    rule is unreadable. Counted like ``rrule_end``: raises RecurrenceTooCostly past the budget.
    The shapes calendars use most (daily, weekly by weekdays, monthly by a day or the n-th
    weekday) are stepped directly, everything else by dateutil; both give the same starts."""
    steps = _Steps(budget)
    simple = _simple_starts(rrule, start, until, steps)
    if simple is not None:
        return simple
    from dateutil.rrule import rrule as Rule  # noqa: PLC0415
    from dateutil.rrule import rrulestr  # noqa: PLC0415

    found: list[datetime] = []
    try:
        rule = rrulestr(rrule, dtstart=start, cache=False)
        if not isinstance(rule, Rule):
            return []
        for occurrence in _counted_iteration()(rule, steps):
            steps.take()
            if occurrence > until:
                break
            found.append(occurrence)
    except (ValueError, TypeError, OverflowError):
        return []
    return found


_WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
_NTH_DAY = re.compile(r"([+-]?)([1-4]?)(MO|TU|WE|TH|FR|SA|SU)\Z")
_SIMPLE_PARTS = frozenset({"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "WKST"})


def _simple_starts(rrule: str, start: datetime, until: datetime, steps: _Steps) -> list[datetime] | None:
    """Starts of a DAILY, WEEKLY (BYDAY weekdays) or MONTHLY (one BYMONTHDAY, or one n-th
    weekday) rule; None for any other shape, which dateutil then expands."""
    try:
        fields = dict(part.split("=", 1) for part in rrule.upper().strip().split(";") if part)
    except ValueError:
        return None
    if not fields.keys() <= _SIMPLE_PARTS or not all(
        value.isdigit() for key, value in fields.items() if key in ("INTERVAL", "COUNT")
    ):
        return None
    interval = int(fields.get("INTERVAL", "1"))
    count = int(fields["COUNT"]) if "COUNT" in fields else None
    stop = until
    if "UNTIL" in fields:
        end = parse_when(fields["UNTIL"].removesuffix("Z"))
        if end is None or "COUNT" in fields:
            return None
        stop = min(stop, end)
    if interval < 1 or (count is not None and count < 1):
        return None
    freq, byday, bymonthday = fields.get("FREQ"), fields.get("BYDAY"), fields.get("BYMONTHDAY")
    if freq == "DAILY" and byday is None and bymonthday is None:
        periods = _daily(start, interval)
    elif freq == "WEEKLY" and bymonthday is None and fields.get("WKST", "MO") in _WEEKDAYS:
        days = byday.split(",") if byday else [next(k for k, v in _WEEKDAYS.items() if v == start.weekday())]
        if not all(day in _WEEKDAYS for day in days):
            return None
        wkst = _WEEKDAYS[fields.get("WKST", "MO")]
        periods = _weekly(start, interval, [_WEEKDAYS[day] for day in days], wkst)
    elif freq == "MONTHLY" and (byday is None or bymonthday is None) and "WKST" not in fields:
        pick = _month_picker(start, byday, bymonthday)
        if pick is None:
            return None
        periods = _monthly(start, interval, pick)
    else:
        return None
    found: list[datetime] = []
    for first, period in periods:
        steps.take()
        if first > stop:
            break
        for moment in period:
            if moment < start:
                continue
            if moment > stop or (count is not None and len(found) >= count):
                return found
            found.append(moment)
    return found


_Periods = Iterator[tuple[datetime, list[datetime]]]  # (period start, its occurrence starts)


def _daily(start: datetime, interval: int) -> _Periods:
    moment = start
    while True:
        yield moment, [moment]
        moment += timedelta(days=interval)


def _weekly(start: datetime, interval: int, days: list[int], wkst: int) -> _Periods:
    week = start - timedelta(days=(start.weekday() - wkst) % 7)
    offsets = sorted({(day - wkst) % 7 for day in days})
    while True:
        yield week.replace(hour=0, minute=0, second=0), [week + timedelta(days=offset) for offset in offsets]
        week += timedelta(weeks=interval)


def _month_picker(
    start: datetime, byday: str | None, bymonthday: str | None
) -> Callable[[int, int], int] | None:
    """(year, month) → the day of the occurrence in that month, 0 when it has none."""
    if byday is None:
        text = bymonthday if bymonthday is not None else str(start.day)
        if not text.isdigit() or not 1 <= int(text) <= 31:
            return None
        wanted = int(text)
        return lambda year, month: wanted if wanted <= _month_days(year, month) else 0
    match = _NTH_DAY.match(byday)
    if match is None or not match[2]:
        return None
    nth = int(match[2]) * (-1 if match[1] == "-" else 1)
    weekday = _WEEKDAYS[match[3]]

    def pick(year: int, month: int) -> int:
        length = _month_days(year, month)
        if nth > 0:
            day = 1 + (weekday - datetime(year, month, 1).weekday()) % 7 + (nth - 1) * 7
        else:
            day = length - (datetime(year, month, length).weekday() - weekday) % 7 + (nth + 1) * 7
        return day if 1 <= day <= length else 0

    return pick


def _monthly(start: datetime, interval: int, pick: Callable[[int, int], int]) -> _Periods:
    year, month = start.year, start.month
    while year <= 9999:
        day = pick(year, month)
        yield datetime(year, month, 1), ([start.replace(year=year, month=month, day=day)] if day else [])
        month += interval
        year, month = year + (month - 1) // 12, (month - 1) % 12 + 1


def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


@cache
def _counted_iteration() -> Callable[[Any, _Steps], Iterator[datetime]]:
    """dateutil's own ``rrule._iter``, run with its period helper counting every period it
    looks at: the loop that walks to year 9999 for a rule that never matches then stops
    after the rule's steps. Where dateutil's internals differ, only occurrences are counted."""
    import dateutil.rrule as module  # type: ignore[import-untyped]  # noqa: PLC0415

    code = module.rrule._iter.__code__
    info = getattr(module, "_iterinfo", None)
    if info is None or "_iterinfo" not in code.co_names:
        return lambda rule, steps: iter(rule)

    class CountingInfo(info):  # type: ignore[misc,valid-type]
        def __init__(self, rule: Any) -> None:
            super().__init__(rule)
            self.steps: _Steps = rule._icalproxy_steps

        # Weighted by what a period costs: a year's day set is about 20 days' worth.
        def ydayset(self, *args: int) -> Any:
            self.steps.take(20)
            return super().ydayset(*args)

        def mdayset(self, *args: int) -> Any:
            self.steps.take(2)
            return super().mdayset(*args)

        def wdayset(self, *args: int) -> Any:
            self.steps.take()
            return super().wdayset(*args)

        def ddayset(self, *args: int) -> Any:
            self.steps.take()
            return super().ddayset(*args)

    counted = FunctionType(code, {**vars(module), "_iterinfo": CountingInfo}, "_counted_iter")

    def iterate(rule: Any, steps: _Steps) -> Iterator[datetime]:
        rule._icalproxy_steps = steps
        return counted(rule)  # type: ignore[no-any-return]

    return iterate
