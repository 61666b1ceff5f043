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
    rule is unreadable. Counted like ``rrule_end``: raises RecurrenceTooCostly past the budget."""
    from dateutil.rrule import rrule as Rule  # noqa: PLC0415
    from dateutil.rrule import rrulestr  # noqa: PLC0415

    steps = _Steps(budget)
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
