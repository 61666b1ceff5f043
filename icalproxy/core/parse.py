"""Source bytes → events grouped into series (master + overrides by UID) and a time-zone table.

Tolerant by design: several VCALENDARs, components without a VCALENDAR, unknown components,
lowercase names and broken nesting are accepted; what cannot be used is skipped and
reported with its line number. Values are kept as raw text; typed decoding happens only
where a rule needs it (see ``values.py``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from icalproxy.core import values
from icalproxy.core.lines import ContentLine, decode, split_line
from icalproxy.core.report import Problem

# Components whose content we route as events. VTODO/VJOURNAL never reach a client.
EVENT = "VEVENT"
TIMEZONE = "VTIMEZONE"
MAX_DEPTH = 8


@dataclass(slots=True, eq=False)
class Component:
    name: str
    line: int
    props: list[ContentLine] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)

    def first(self, name: str) -> ContentLine | None:
        for prop in self.props:
            if prop.name == name:
                return prop
        return None

    def all(self, name: str) -> list[ContentLine]:
        return [prop for prop in self.props if prop.name == name]


@dataclass(slots=True, eq=False)
class Series:
    """All VEVENTs of one UID within one source: the master and its overrides."""

    uid: str
    source: str
    master: Component | None = None
    overrides: dict[str, Component] = field(default_factory=dict)

    def components(self) -> list[Component]:
        head = [self.master] if self.master is not None else []
        return head + [self.overrides[key] for key in sorted(self.overrides)]


@dataclass(slots=True)
class ParsedSource:
    source: str
    series: dict[str, Series]
    timezones: dict[str, Component]
    calendar_props: list[ContentLine]
    problems: list[Problem]
    vevents: int = 0


def parse(data: bytes, source: str) -> ParsedSource:
    """Parse one source's bytes. Never raises on malformed input."""
    decoded = decode(data)
    problems = [Problem(source, number, message) for number, message in decoded.problems]
    roots, calendar_props = _build_tree(decoded.lines, source, problems)
    if not roots and data.strip():
        problems.append(Problem(source, 1, "no iCalendar components found"))
    timezones: dict[str, Component] = {}
    series: dict[str, Series] = {}
    parsed = ParsedSource(source, series, timezones, calendar_props, problems)
    for component in _walk(roots):
        if component.name == TIMEZONE:
            _add_timezone(component, timezones, source, problems)
        elif component.name == EVENT:
            parsed.vevents += 1
            _add_event(component, series, source, problems)
    return parsed


_CONTAINERS_SKIPPED = frozenset({EVENT, TIMEZONE, "VTODO", "VJOURNAL", "VALARM", "VFREEBUSY"})


def _walk(roots: list[Component]) -> list[Component]:
    """Every component in document order; VEVENTs nested in unknown containers count too."""
    found: list[Component] = []
    pending = list(reversed(roots))
    while pending:
        component = pending.pop()
        found.append(component)
        if component.name not in _CONTAINERS_SKIPPED:
            pending.extend(reversed(component.children))
    return found


def _build_tree(
    lines: list[tuple[int, str]], source: str, problems: list[Problem]
) -> tuple[list[Component], list[ContentLine]]:
    roots: list[Component] = []
    calendar_props: list[ContentLine] = []
    stack: list[Component] = []
    for number, text in lines:
        head = text[:6].upper()
        if head == "BEGIN:":
            name = text[6:].strip().upper()
            if not name:
                problems.append(Problem(source, number, "BEGIN without a component name"))
                continue
            if len(stack) >= MAX_DEPTH:
                problems.append(Problem(source, number, f"{name} nested too deep; skipped"))
                stack.append(Component(name, number))  # swallows the block, attached nowhere
                continue
            component = Component(name, number)
            if stack:
                stack[-1].children.append(component)
            else:
                roots.append(component)
            stack.append(component)
            continue
        if head[:4] == "END:":
            name = text[4:].strip().upper()
            if stack and stack[-1].name == name:
                stack.pop()
            elif any(open_.name == name for open_ in stack):
                while stack and stack[-1].name != name:
                    unclosed = stack.pop()
                    problems.append(
                        Problem(
                            source, unclosed.line, f"{unclosed.name} not closed before END:{name}"
                        )
                    )
                    _discard(unclosed, stack, roots)
                stack.pop()
            else:
                problems.append(Problem(source, number, f"END:{name} without BEGIN"))
            continue
        prop = split_line(text, number)
        if prop is None:
            problems.append(Problem(source, number, "not a content line; skipped"))
            continue
        if not stack:
            problems.append(Problem(source, number, f"{prop.name} outside any component; skipped"))
            continue
        top = stack[-1]
        if top.name == "VCALENDAR":
            calendar_props.append(prop)
        top.props.append(prop)
    while stack:
        unclosed = stack.pop()
        problems.append(
            Problem(source, unclosed.line, f"{unclosed.name} not closed at end of data")
        )
        if unclosed.name != "VCALENDAR":
            _discard(unclosed, stack, roots)
    return roots, calendar_props


def _discard(component: Component, stack: list[Component], roots: list[Component]) -> None:
    """An unclosed component is malformed: remove it from its parent."""
    siblings = stack[-1].children if stack else roots
    if siblings and siblings[-1] is component:
        siblings.pop()


def _add_timezone(
    component: Component, timezones: dict[str, Component], source: str, problems: list[Problem]
) -> None:
    tzid = component.first("TZID")
    if tzid is None or not tzid.value.strip():
        problems.append(Problem(source, component.line, "VTIMEZONE without TZID; skipped"))
        return
    timezones.setdefault(tzid.value.strip(), component)


_DATE_PROPS = frozenset({"DTSTART", "DTEND", "EXDATE", "RDATE", "RECURRENCE-ID"})


def _repair_dates(component: Component, source: str, problems: list[Problem]) -> None:
    """``VALUE=DATE`` with a date-time value (a common producer bug): keep the date part."""
    for index, prop in enumerate(component.props):
        if prop.name in _DATE_PROPS and "DATE" in prop.params.upper() and "T" in prop.value:
            value_type = prop.param("VALUE")
            if value_type is not None and value_type.upper() == "DATE":
                repaired = ",".join(part.strip()[:8] for part in prop.value.split(","))
                component.props[index] = prop._replace(value=repaired)
                problems.append(
                    Problem(
                        source, prop.line, f"{prop.name} is VALUE=DATE with a time; time dropped"
                    )
                )


def _add_event(
    component: Component, series: dict[str, Series], source: str, problems: list[Problem]
) -> None:
    _repair_dates(component, source, problems)
    start = component.first("DTSTART")
    if start is None:
        problems.append(Problem(source, component.line, "VEVENT without DTSTART; skipped"))
        return
    if values.parse_when(start.value, start.param("VALUE")) is None:
        problems.append(
            Problem(
                source, start.line, f"VEVENT with unreadable DTSTART {start.value[:40]!r}; skipped"
            )
        )
        return
    uid_prop = component.first("UID")
    uid = uid_prop.value.strip() if uid_prop is not None else ""
    if not uid:
        uid = derived_uid(component)
        problems.append(Problem(source, component.line, f"VEVENT without UID; derived {uid}"))
        component.props.append(ContentLine("UID", "", uid, component.line))
    entry = series.get(uid)
    if entry is None:
        entry = series[uid] = Series(uid, source)
    rid = component.first("RECURRENCE-ID")
    if rid is None:
        if entry.master is not None:
            kept = newer(entry.master, component)
            problems.append(
                Problem(source, component.line, f"duplicate VEVENT for UID {uid}; kept the newer")
            )
            entry.master = kept
        else:
            entry.master = component
        return
    key = values.recurrence_key(rid.value)
    if not key:
        problems.append(Problem(source, rid.line, "unreadable RECURRENCE-ID; override skipped"))
        return
    previous = entry.overrides.get(key)
    entry.overrides[key] = component if previous is None else newer(previous, component)


def derived_uid(component: Component) -> str:
    """A stable UID for a VEVENT that has none: a hash of its time and summary lines."""
    digest = hashlib.sha256()
    for prop in component.props:
        if prop.name in ("DTSTART", "DTEND", "SUMMARY", "RRULE"):
            digest.update(f"{prop.name}{prop.params}:{prop.value}\n".encode())
    return f"icalproxy-{digest.hexdigest()[:32]}"


def version_key(component: Component) -> tuple[int, str]:
    """(SEQUENCE, LAST-MODIFIED as UTC text): the larger is the newer version."""
    sequence = component.first("SEQUENCE")
    try:
        number = int(sequence.value.strip()) if sequence is not None else 0
    except ValueError:
        number = 0
    modified = component.first("LAST-MODIFIED")
    return number, modified.value.strip() if modified is not None else ""


def newer(first: Component, second: Component) -> Component:
    """The newer of two versions of the same event; the later one on a tie."""
    return first if version_key(first) > version_key(second) else second
