"""``where`` conditions → predicates over one VEVENT (master or override) at a given ``now``.

Compiled once per rules version into closures. ``required_subcalendars`` tells the
pipeline which CATEGORIES values a feed needs, so it can look candidates up in an index
instead of testing every event against every feed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from icalproxy.config.model import (
    AllOf,
    AnyOf,
    Condition,
    FieldMatch,
    Not,
    SourceMatch,
    Subcalendar,
    SummaryMatch,
    Who,
    Window,
)
from icalproxy.core.facts import EventFacts

Predicate = Callable[[EventFacts], bool]
MAX_MATCH_CHARS = 2000  # regexes never see more than this, which bounds their time


def compile_where(condition: Condition | None, now: datetime) -> Predicate:
    if condition is None:
        return lambda facts: True
    return _compile(condition, now)


def _compile(condition: Condition, now: datetime) -> Predicate:
    match condition:
        case Subcalendar(exact=exact, globs=globs):
            if not globs:
                return lambda facts: not exact.isdisjoint(facts.categories)

            def subcalendar(facts: EventFacts) -> bool:
                return any(
                    name in exact or any(glob.fullmatch(name) for glob in globs) for name in facts.categories
                )

            return subcalendar
        case Who(exact=exact, globs=globs):

            def who(facts: EventFacts) -> bool:
                names = facts.who
                return not exact.isdisjoint(names) or any(
                    glob.fullmatch(name) for glob in globs for name in names
                )

            return who
        case FieldMatch():
            return _field_predicate(condition)
        case SummaryMatch(regex=regex):
            return lambda facts: regex.search(facts.summary[:MAX_MATCH_CHARS]) is not None
        case SourceMatch(names=names):
            return lambda facts: facts.source in names
        case Window(past=past, future=future):
            low = now - past if past is not None else None
            high = now + future if future is not None else None
            def window(facts: EventFacts) -> bool:
                # Spans are shared by every feed: expanding COUNT rules up to ``now`` suffices
                # for any window, as ``low`` is never after it.
                start, end = facts.span(now)
                if high is not None and start > high:
                    return False
                return not (low is not None and end is not None and end < low)

            return window
        case AllOf(items=items):
            predicates = [_compile(item, now) for item in items]
            return lambda facts: all(predicate(facts) for predicate in predicates)
        case AnyOf(items=items):
            predicates = [_compile(item, now) for item in items]
            return lambda facts: any(predicate(facts) for predicate in predicates)
        case Not(item=item):
            inner = _compile(item, now)
            return lambda facts: not inner(facts)
    raise TypeError(f"unknown condition {condition!r}")  # pragma: no cover


def _field_predicate(condition: FieldMatch) -> Predicate:
    name = condition.name
    one_of = {value.casefold() for value in condition.one_of} if condition.one_of else None
    equals = condition.equals.casefold() if condition.equals is not None else None

    def field(facts: EventFacts) -> bool:
        value = facts.field(name)
        if condition.present is not None and (value is not None) != condition.present:
            return False
        if value is None:
            return condition.present is False or (
                equals is None and one_of is None and condition.regex is None
            )
        folded = value.casefold()
        if equals is not None and folded != equals:
            return False
        if one_of is not None and folded not in one_of:
            return False
        return condition.regex is None or condition.regex.search(value[:MAX_MATCH_CHARS]) is not None

    return field


def named_subcalendars(condition: Condition | None) -> frozenset[str]:
    """Every sub-calendar name a condition spells out exactly (under any ``not`` too)."""
    match condition:
        case Subcalendar(exact=exact):
            return exact
        case AllOf(items=items) | AnyOf(items=items):
            return frozenset().union(*(named_subcalendars(item) for item in items))
        case Not(item=item):
            return named_subcalendars(item)
    return frozenset()


def required_subcalendars(condition: Condition | None) -> frozenset[str] | None:
    """Exact CATEGORIES values of which a matching event must carry one; None if no such set."""
    match condition:
        case Subcalendar(exact=exact, globs=()):
            return exact
        case AllOf(items=items):
            for item in items:
                found = required_subcalendars(item)
                if found is not None:
                    return found
            return None
        case AnyOf(items=items) if items:
            collected: set[str] = set()
            for item in items:
                found = required_subcalendars(item)
                if found is None:
                    return None
                collected |= found
            return frozenset(collected)
    return None
