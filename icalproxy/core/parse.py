"""Source bytes → events grouped into series (master + overrides by UID) and a time-zone table.

Built for large feeds: one regex pass over the raw bytes finds component boundaries and
the few properties grouping needs (UID, RECURRENCE-ID, DTSTART, TZID). A component is a
byte range into the source; its other lines are extracted on demand, only those a stage
asks for (see ``Component.select``), and never kept. Nothing is decoded that no rule needs.

Tolerant by design: several VCALENDARs, components without a VCALENDAR, unknown
components, lowercase names, CR/LF/CRLF, BOMs, UTF-16 and broken nesting are accepted;
what cannot be used is skipped and reported with its line number.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from functools import lru_cache

from icalproxy.core import values
from icalproxy.core.lines import ContentLine, first_invalid_utf8, split_line, split_text_list, unfold
from icalproxy.core.report import Problem
from icalproxy.records import field, record

EVENT = "VEVENT"
TIMEZONE = "VTIMEZONE"
MAX_DEPTH = 8
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A rest that _content_line reads the quick way: ":" then no newline and no _CONTROL.
_PLAIN_REST = re.compile(rb":[^\x00-\x08\n\x0b\x0c\x0e-\x1f\x7f]*+")
# From the ";" or ":" after a name to the end of its line, folded lines included.
_PARAMS_AND_VALUE = rb"[;:][^\n]*(?:\n[ \t][^\n]*)*"
# The rest of a property line after its name, folds included (a fold may follow the name).
LINE_REST = rb"((?:\r?\n[ \t])*" + _PARAMS_AND_VALUE + rb")"
_SCAN_NAMES = (
    b"BEGIN",
    b"END",
    b"UID",
    b"RECURRENCE-ID",
    b"DTSTART",
    b"TZID",
    b"CATEGORIES",
    b"X-WR-TIMEZONE",
)
# Each name with its own group for the rest of its line: ``match.lastindex`` tells the name.
_SCAN_LINES = b"|".join(name + LINE_REST for name in _SCAN_NAMES)
_SCAN_FIRST = re.compile(rb"(?:" + _SCAN_LINES + rb")")
# The scan of every line after the first. Its names are followed at once by ";" or ":" (a
# fold right after a name is an odd name, below), and a last alternative finds, in the same
# pass, any line whose name has a lowercase letter or a fold right after it (either of the
# two above may then hit): such a feed has its names normalised and is scanned again.
_SCAN = re.compile(
    rb"\n(?:"
    + b"|".join(name + rb"(" + _PARAMS_AND_VALUE + rb")" for name in _SCAN_NAMES)
    + rb"|([A-Z0-9-]*+(?:[a-z]|\r?\n[ \t])))"
)
_BEGIN, _END, _UID, _RID, _DTSTART, _TZID, _CATEGORIES, _CALENDAR_TZ, _ODD = range(1, len(_SCAN_NAMES) + 2)
_ANY = re.compile(rb"\n([A-Za-z0-9-]+)" + LINE_REST)
# Possessive (*+): a whole feed is searched, and backtracking over every name costs double.
_LOWER_NAME = re.compile(rb"\n[A-Z0-9-]*+[a-z][A-Za-z0-9-]*+[;:]")
_LOWER_FIRST = re.compile(rb"(?:\xef\xbb\xbf)?[A-Z0-9-]*+[a-z][A-Za-z0-9-]*+[;:]")
# A line start, part of a name (or none), then a fold before the name has ended: a literal
# newline leads, so the search runs at memchr speed. The first line is matched on its own.
_FOLDED_NAME = re.compile(rb"(\n[A-Za-z0-9-]*+)\r?\n[ \t]")
_FOLDED_FIRST = re.compile(rb"((?:\xef\xbb\xbf)?[A-Za-z0-9-]*+)\r?\n[ \t]")
_NAMES: dict[bytes, str] = {}  # interned property names


def _name(raw: bytes) -> str:
    name = _NAMES.get(raw)
    if name is None:
        name = _NAMES[raw] = raw.decode("ascii", "replace").upper()
    return name


def name_alternation(names: frozenset[str]) -> bytes:
    """Property names as a regex alternation, longest first; no names match nothing."""
    escaped = [re.escape(name.encode()) for name in sorted(names, key=len, reverse=True)]
    return b"|".join(escaped) if escaped else rb"(?!)"


@lru_cache(maxsize=64)
def _selector(names: frozenset[str]) -> re.Pattern[bytes]:
    return re.compile(rb"\n(" + name_alternation(names) + rb")" + LINE_REST)


@lru_cache(maxsize=64)
def mention_pattern(text: str) -> re.Pattern[bytes]:
    """``text`` in any case, and with a fold (newline + space) allowed between any two bytes."""
    raw = text.encode()
    return re.compile(
        rb"(?:\r?\n[ \t])?".join(re.escape(raw[i : i + 1]) for i in range(len(raw))), re.IGNORECASE
    )


_NO_CHILDREN: list[Component] = []  # shared, never appended to (see _begin)


class Component:
    """A component as a byte range of its source; lines are read from it on demand.

    ``span_start`` is the offset of its BEGIN line (of the newline before it), ``start`` the
    newline that ends the BEGIN line and ``end`` the newline before its END line.
    """

    __slots__ = (
        "calendar_tz",
        "categories",
        "children",
        "data",
        "dtstart",
        "end",
        "line",
        "name",
        "rid",
        "span_start",
        "start",
    )

    def __init__(self, name: str, line: int, data: bytes, span_start: int, start: int) -> None:
        self.name = name
        self.line = line
        self.data = data
        self.span_start = span_start
        self.start = start
        self.end = start
        self.children: list[Component] = _NO_CHILDREN  # most have none: one shared empty list
        self.categories: tuple[str, ...] = ()  # of a VEVENT: its CATEGORIES values, unescaped
        self.dtstart: bytes | None = None  # of a VEVENT: the raw rest of its DTSTART line
        self.rid: bytes | None = None  # … and of its RECURRENCE-ID line
        # Of a VEVENT: its calendar's X-WR-TIMEZONE, the zone its floating times are meant in.
        self.calendar_tz: str | None = None

    def select(self, names: Iterable[str] | None = None) -> list[ContentLine]:
        """This component's own lines (children excluded) whose name is in ``names`` (all if
        None), in document order."""
        pattern = _ANY if names is None else _selector(frozenset(names))
        return self._lines(pattern)

    def first(self, name: str) -> ContentLine | None:
        found = self._lines(_selector(frozenset((name,))), limit=1)
        return found[0] if found else None

    def all(self, name: str) -> list[ContentLine]:
        return self._lines(_selector(frozenset((name,))))

    @property
    def props(self) -> list[ContentLine]:
        return self._lines(_ANY)

    def mentions(self, text: str) -> bool:
        """Whether ``text`` (any case) occurs in this component's bytes: a cheap pre-check."""
        return mention_pattern(text).search(self.data, self.start, self.end) is not None

    def in_child(self, position: int) -> bool:
        return any(child.span_start <= position <= child.end for child in self.children)

    def content(self, name: bytes, rest: bytes) -> ContentLine | None:
        """A raw line from ``raw_select`` as a decoded ContentLine."""
        return _content_line(_name(name), rest, self.line)

    def _lines(self, pattern: re.Pattern[bytes], limit: int = 0) -> list[ContentLine]:
        found: list[ContentLine] = []
        children = self.children
        number = self.line
        for match in pattern.finditer(self.data, self.start, self.end):
            if children and any(c.span_start <= match.start() <= c.end for c in children):
                continue
            line = _content_line(_name(match[1]), match[2], number)
            if line is not None:
                found.append(line)
                if limit and len(found) >= limit:
                    break
        return found


def _content_line(name: str, rest: bytes, number: int) -> ContentLine | None:
    if rest[:1] == b":" and b"\n" not in rest and not _CONTROL.search(rest):
        return ContentLine(name, "", rest[1:].rstrip(b"\r").decode("utf-8", "replace"), number)
    if b"\n" in rest:
        rest = unfold(rest)
    rest = rest.rstrip(b"\r")
    if _CONTROL.search(rest):
        rest = _CONTROL.sub(b"", rest)
    text = rest.decode("utf-8", "replace")
    if text[0] == ":":
        return ContentLine(name, "", text[1:], number)
    colon = text.find(":")
    if colon > 0 and '"' not in text[:colon]:
        return ContentLine(name, text[:colon], text[colon + 1 :], number)
    parsed = split_line(name + text, number)
    return parsed._replace(name=name) if parsed is not None else None


_NO_OVERRIDES: dict[str, Component] = {}  # shared by series without overrides; never written to


@record(eq=False)
class Series:
    """All VEVENTs of one UID within one source: the master and its overrides."""

    uid: str
    source: str
    master: Component | None = None
    overrides: dict[str, Component] = field(default=_NO_OVERRIDES)  # most series have none

    def components(self) -> list[Component]:
        head = [self.master] if self.master is not None else []
        return head + [self.overrides[key] for key in sorted(self.overrides)]


@record
class ParsedSource:
    source: str
    series: dict[str, Series]
    timezones: dict[str, Component]
    problems: list[Problem]
    vevents: int = 0
    uid_key: bytes = b""


@record
class _Open:
    """A component being scanned, with the grouping properties seen so far (raw)."""

    component: Component
    uid: bytes | None = None
    rid: bytes | None = None
    dtstart: bytes | None = None
    dtstart_at: int = 0
    rid_at: int = 0
    tzid: bytes | None = None
    categories: list[bytes] | None = None
    calendar_tz: bytes | None = None  # of a container: its X-WR-TIMEZONE
    events: list[Component] | None = None  # of a container: the VEVENTs closed inside it


_COMPONENT_NAMES: dict[bytes, str] = {}


def _component_name(rest: bytes) -> str:
    """The value of a BEGIN/END line, as RFC 5545 readers see it: unfolded, after any
    parameters, upper case."""
    name = _COMPONENT_NAMES.get(rest)
    if name is None:
        line = _content_line("BEGIN", rest, 0)
        name = line.value.strip().upper() if line is not None else ""
        raw = unfold(rest) if b"\n" in rest else rest
        if name and _CONTROL.search(raw):
            # A control character in a component's name makes it no component we know (other
            # readers see "\x00VEVENT", not VEVENT): its lines are kept out, never published.
            colon = raw.find(b":")
            value = raw[colon + 1 :] if colon >= 0 and b'"' not in raw[:colon] else raw.rpartition(b":")[2]
            name = value.rstrip(b"\r").decode("utf-8", "replace").strip().upper() or name
        if len(_COMPONENT_NAMES) < 1024:
            _COMPONENT_NAMES[rest] = name
    return name


def parse(data: bytes, source: str, uid_key: bytes = b"", *, valid_utf8: bool = False) -> ParsedSource:
    """Parse one source's bytes. Never raises on malformed input. ``uid_key``: the
    installation's secret for UIDs derived for events that have none. ``valid_utf8``: the
    caller has checked the bytes already (fetch.check_calendar refuses any other), so the
    invalid-UTF-8 check is not run twice; undecodable bytes read as U+FFFD either way."""
    data = _normalise_encoding(data)
    names_normalised = _LOWER_FIRST.match(data) is not None
    if names_normalised:
        data = _normalise_names(data)
    parsed = _scan(data, source, uid_key, stop_at_odd_name=not names_normalised)
    if parsed is None:  # a lowercase or folded name (rare): normalise them, scan again
        data = _normalise_names(data)
        parsed = _scan(data, source, uid_key, stop_at_odd_name=False)
        assert parsed is not None  # only a scan told to stop at an odd name stops
    bad = -1 if valid_utf8 else first_invalid_utf8(data)
    if bad >= 0:
        line = data.count(b"\n", 0, bad) + 1
        parsed.problems.insert(0, Problem(source, line, "invalid UTF-8 (replaced by U+FFFD where it occurs)"))
    return parsed


def _scan(data: bytes, source: str, uid_key: bytes, *, stop_at_odd_name: bool) -> ParsedSource | None:
    """One pass over the lines: components, their grouping properties, series. None: a
    line with an odd name was met (and ``stop_at_odd_name``)."""
    problems: list[Problem] = []
    parsed = ParsedSource(source, {}, {}, problems, uid_key=uid_key)
    stack: list[_Open] = []
    components = 0
    line, counted = 1, 0  # the physical line of offset ``counted``: matches come in order
    count = data.count
    first = _SCAN_FIRST.match(data, 3 if data[:3] == b"\xef\xbb\xbf" else 0)
    for match in itertools.chain([first] if first is not None else [], _SCAN.finditer(data)):
        kind = match.lastindex
        if kind == _BEGIN:
            at, body = match.span()  # the rest of a line ends at its newline (or the data's end)
            line += count(b"\n", counted, at + 1)
            counted = at + 1
            name = _component_name(match[_BEGIN])
            if not name:
                problems.append(Problem(source, line, "BEGIN without a component name"))
                continue
            component = Component(name, line, data, at, body)
            if stack:  # a child's lines, at any depth, are never read as its parent's
                if len(stack) == MAX_DEPTH:
                    problems.append(Problem(source, line, f"{name} nested too deep; skipped"))
                parent = stack[-1].component
                if parent.children is _NO_CHILDREN:
                    parent.children = []
                parent.children.append(component)
            stack.append(_Open(component))
            components += 1
        elif kind == _END:
            at = match.start()
            name = _component_name(match[_END])
            if not _end(name, at, stack, parsed):
                line += count(b"\n", counted, at + 1)
                counted = at + 1
                problems.append(Problem(source, line, f"END:{name} without BEGIN"))
        elif kind == _ODD:
            if stop_at_odd_name:
                return None
        elif stack:
            top = stack[-1]
            if kind == _DTSTART:
                if top.dtstart is None:
                    top.dtstart, top.dtstart_at = match[_DTSTART], match.start()
            elif kind == _UID:
                if top.uid is None:
                    top.uid = match[_UID]
            elif kind == _CATEGORIES:
                if top.categories is None:
                    top.categories = []
                top.categories.append(match[_CATEGORIES])
            elif kind == _RID:
                if top.rid is None:
                    top.rid, top.rid_at = match[_RID], match.start()
            elif kind == _TZID:
                if top.tzid is None:
                    top.tzid = match[_TZID]
            elif top.calendar_tz is None:
                top.calendar_tz = match[_CALENDAR_TZ]
    while stack:
        item = stack.pop()
        _close_container(item, stack)
        unclosed = item.component
        unclosed.end = len(data)
        problems.append(Problem(source, unclosed.line, f"{unclosed.name} not closed at end of data"))
    if not components and data.strip():
        problems.append(Problem(source, 1, "no iCalendar components found"))
    return parsed


def _normalise_encoding(data: bytes) -> bytes:
    """UTF-16 → UTF-8, bare CR → LF, a fold inside the first line's name removed (all rare)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(data) > 3 and data[1:4:2] == b"\x00\x00"):
        encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-16-le"
        data = data.decode(encoding, errors="replace").encode("utf-8")
    if b"\r" in data and b"\n" not in data:
        data = data.replace(b"\r", b"\n")
    # A fold inside a name ("BEG\r\n IN:VALARM") is legal: unfold those names first, so that
    # boundaries and names are read exactly as RFC 5545 readers read them.
    while _FOLDED_FIRST.match(data):
        data = _FOLDED_FIRST.sub(rb"\1", data, count=1)
    return data


def _normalise_names(data: bytes) -> bytes:
    """Folds inside or right after names removed, lowercase names → upper case."""
    while _FOLDED_NAME.search(data):
        data = _FOLDED_NAME.sub(rb"\1", data)
    if _LOWER_FIRST.match(data) or _LOWER_NAME.search(data):
        data = re.sub(
            rb"(?m)^((?:\xef\xbb\xbf)?)([A-Za-z0-9-]+)(?=[;:])",
            lambda match: match[1] + match[2].upper(),
            data,
        )
    return data


def _end(name: str, position: int, stack: list[_Open], parsed: ParsedSource) -> bool:
    """Close the component that ``END:name`` ends; False when none is open."""
    if not stack or (
        stack[-1].component.name != name and not any(item.component.name == name for item in stack)
    ):
        return False
    _close(name, position, stack, parsed)
    return True


def _close(name: str, position: int, stack: list[_Open], parsed: ParsedSource) -> None:
    source, problems = parsed.source, parsed.problems
    while stack[-1].component.name != name:
        unclosed = stack.pop().component
        if len(stack) < MAX_DEPTH:
            problems.append(Problem(source, unclosed.line, f"{unclosed.name} not closed before END:{name}"))
        unclosed.end = position  # it ends at its parent's END and takes its lines with it
    closed = stack.pop()
    component = closed.component
    component.end = position
    if len(stack) >= MAX_DEPTH:
        return
    # VEVENTs nested in unknown containers count too; those inside VTODO, VALARM… do not.
    for item in stack:
        if item.component.name in _LEAVES:
            return
    if component.name == EVENT:
        parsed.vevents += 1
        _add_event(closed, parsed)
        if stack:  # its calendar's X-WR-TIMEZONE is certain once the calendar closes
            parent = stack[-1]
            if parent.events is None:
                parent.events = []
            parent.events.append(component)
    elif component.name not in _LEAVES:
        _close_container(closed, stack)
    elif component.name == TIMEZONE:
        tzid = _content_line("TZID", closed.tzid, component.line) if closed.tzid else None
        if tzid is None or not tzid.value.strip():
            problems.append(Problem(source, component.line, "VTIMEZONE without TZID; skipped"))
        else:
            parsed.timezones.setdefault(tzid.value.strip(), component)


def _close_container(closed: _Open, stack: list[_Open]) -> None:
    """Give the events of a closing VCALENDAR (or unknown container) its X-WR-TIMEZONE; an
    outer container may still name one for events whose own calendar did not."""
    events = closed.events
    if not events:
        return
    tz = _calendar_tz(closed.calendar_tz) if closed.calendar_tz is not None else None
    if tz is not None:
        for event in events:
            if event.calendar_tz is None:
                event.calendar_tz = tz
    if stack:
        outer = stack[-1]
        if outer.events is None:
            outer.events = []
        outer.events.extend(events)


def _calendar_tz(raw: bytes) -> str | None:
    line = _content_line("X-WR-TIMEZONE", raw, 0)
    name = line.value.strip() if line is not None else ""
    return name if 0 < len(name) <= 100 and '"' not in name else None


# Components that never hold events (VCALENDAR and unknown ones may).
_LEAVES = frozenset(
    {
        EVENT,
        TIMEZONE,
        "VTODO",
        "VJOURNAL",
        "VALARM",
        "VFREEBUSY",
        "STANDARD",
        "DAYLIGHT",
        "VAVAILABILITY",
        "AVAILABLE",
    }
)


DATE_PROPS = frozenset({"DTSTART", "DTEND", "EXDATE", "RDATE", "RECURRENCE-ID"})


def repair_date(prop: ContentLine) -> ContentLine:
    """``VALUE=DATE`` with a date-time value (a common producer bug): keep the date part."""
    if "T" in prop.value and prop.params and "DATE" in prop.params.upper():
        value_type = prop.param("VALUE")
        if value_type is not None and value_type.upper() == "DATE":
            return prop._replace(value=",".join(part.strip()[:8] for part in prop.value.split(",")))
    return prop


def _add_event(item: _Open, parsed: ParsedSource) -> None:
    source, problems, component = parsed.source, parsed.problems, item.component
    plain = item.dtstart is not None and _plain_start(item.dtstart)
    if not plain and not _check_start(item, parsed):
        return
    component.dtstart, component.rid = item.dtstart, item.rid
    if item.categories:
        component.categories = _categories(item.categories)
    raw_uid = item.uid
    if raw_uid is not None and _PLAIN_REST.fullmatch(raw_uid):  # as _content_line reads it
        uid = raw_uid[1:].rstrip(b"\r").decode("utf-8", "replace").strip()
    else:
        uid_line = _content_line("UID", raw_uid, component.line) if raw_uid is not None else None
        uid = uid_line.value.strip() if uid_line is not None else ""
    if not uid:
        uid = derived_uid(component, parsed.uid_key)
        problems.append(Problem(source, component.line, f"VEVENT without UID; derived {uid}"))
    entry = parsed.series.get(uid)
    if entry is None:
        entry = parsed.series[uid] = Series(uid, source)
    key = _plain_recurrence_key(item.rid) if item.rid is not None else None
    if key is None:
        rid = _content_line("RECURRENCE-ID", item.rid, 0) if item.rid is not None else None
        if rid is None:
            if entry.master is not None:
                problems.append(
                    Problem(source, component.line, f"duplicate VEVENT for UID {uid}; kept the newer")
                )
                entry.master = newer(entry.master, component)
            else:
                entry.master = component
            return
        key = values.recurrence_key(repair_date(rid).value)
        if not key:
            line = _line_of(component, item.rid_at)
            problems.append(Problem(source, line, "unreadable RECURRENCE-ID; override skipped"))
            return
    if entry.overrides is _NO_OVERRIDES:
        entry.overrides = {}
    previous = entry.overrides.get(key)
    entry.overrides[key] = component if previous is None else newer(previous, component)


# ":20261201T080000Z", ";TZID=Europe/Berlin:20261201T080000", ";VALUE=DATE:20261201": a
# DTSTART that is readable as it stands (the usual case), as _check_start would find it: a
# TZID made of these characters leaves nothing for parameter parsing or repair to change.
_WHEN_RAW = values.WHEN_SYNTAX.pattern.removesuffix(r"\Z").encode()
_DATE_RAW = values.DATE_SYNTAX.pattern.removesuffix(r"\Z").encode()
_PLAIN_START = re.compile(
    rb"(?:;TZID=[A-Za-z][A-Za-z0-9_+/.-]*+)?:(" + _WHEN_RAW + rb")\r?|;VALUE=DATE:(" + _DATE_RAW + rb")\r?"
)
# Month-days that may not exist (Feb 29 exists in leap years): only these need a full date check.
_DOUBTFUL_DAYS = ("0229", "0230", "0231", "0431", "0631", "0931", "1131")
_DOUBTFUL_DAYS_RAW = tuple(day.encode() for day in _DOUBTFUL_DAYS)


def _plain_start(raw: bytes) -> bool:
    """True: the DTSTART is readable and needs no repair nor report. False: let _check_start
    look (it may still accept it)."""
    match = _PLAIN_START.fullmatch(raw)
    if match is None:
        return False
    when = match[1]
    if when is not None:
        return when[4:8] not in _DOUBTFUL_DAYS_RAW or values.parse_when(when.decode()) is not None
    date = match[2]  # VALUE=DATE: always read by parse_when, which also refuses the year 0
    doubtful = date[:4] == b"0000" or date[4:8] in _DOUBTFUL_DAYS_RAW
    return not doubtful or values.parse_when(date.decode()) is not None


def _plain_recurrence_key(raw: bytes) -> str | None:
    """The override key of a plain RECURRENCE-ID (``:20261201T080000Z``, a plain TZID), as
    values.recurrence_key gives it; None: let the full path read it."""
    match = _PLAIN_START.fullmatch(raw)
    when = match[1] if match is not None else None
    if when is None or when[:4] == b"0000" or when[4:8] in _DOUBTFUL_DAYS_RAW:
        return None
    return when.decode()


def _check_start(item: _Open, parsed: ParsedSource) -> bool:
    """Any other DTSTART: repaired if it can be, reported either way; False: skip the event."""
    source, problems, component = parsed.source, parsed.problems, item.component
    start = _content_line("DTSTART", item.dtstart, 0) if item.dtstart is not None else None
    if start is None:
        problems.append(Problem(source, component.line, "VEVENT without DTSTART; skipped"))
        return False
    repaired = repair_date(start)
    if repaired is not start:
        line = _line_of(component, item.dtstart_at)
        problems.append(Problem(source, line, "DTSTART is VALUE=DATE with a time; time dropped"))
    if not _readable_start(repaired):
        line = _line_of(component, item.dtstart_at)
        problems.append(
            Problem(source, line, f"VEVENT with unreadable DTSTART {start.value[:40]!r}; skipped")
        )
        return False
    return True


def _readable_start(start: ContentLine) -> bool:
    """A DTSTART a calendar can place: a valid DATE or DATE-TIME (checked by syntax first)."""
    value = start.value.strip()
    value_type = start.param("VALUE") if start.params else None
    if value_type is not None and value_type.upper() == "DATE":
        return values.DATE_SYNTAX.match(value) is not None and values.parse_when(value) is not None
    return values.WHEN_SYNTAX.match(value) is not None and (
        value[4:8] not in _DOUBTFUL_DAYS or values.parse_when(value) is not None
    )


_CATEGORY_SETS: dict[bytes, tuple[str, ...]] = {}


def _categories(raw_lines: list[bytes]) -> tuple[str, ...]:
    """CATEGORIES lines → names; the same lines recur across events, so results are shared."""
    key = b"\n".join(raw_lines)
    found = _CATEGORY_SETS.get(key)
    if found is None:
        names: list[str] = []
        for raw in raw_lines:
            line = _content_line("CATEGORIES", raw, 0)
            if line is not None:
                names.extend(split_text_list(line.value))
        found = tuple(names)
        if len(_CATEGORY_SETS) < 10_000:
            _CATEGORY_SETS[key] = found
    return found


def _line_of(component: Component, position: int) -> int:
    """Physical line of a byte offset inside a component (for problems only)."""
    return component.line + component.data.count(b"\n", component.start, position + 1)


def derived_uid(component: Component, key: bytes = b"") -> str:
    """A stable UID for a VEVENT that has none: a keyed hash (HMAC-SHA-256 with the
    installation's secret) of its time and summary lines, so that a subscriber cannot
    confirm a guessed internal title by hashing it."""
    import hashlib  # noqa: PLC0415  (imported when first needed: start-up)
    import hmac  # noqa: PLC0415  (imported when first needed: start-up)

    digest = hmac.new(key or b"icalproxy-no-installation-key", digestmod=hashlib.sha256)
    for prop in component.select(("DTSTART", "DTEND", "SUMMARY", "RRULE")):
        digest.update(f"{prop.name}{prop.params}:{prop.value}\n".encode())
    return f"icalproxy-{digest.hexdigest()[:32]}"


def raw_is_date(rest: bytes | None) -> bool:
    """Whether the raw rest of a time line holds a DATE (``;VALUE=DATE:20261201``): a cheap
    look that needs no decoding; only a mismatch with DTSTART's calls for the typed path."""
    if rest is None:
        return False
    colon = rest.rfind(b":")
    if rest.find(b"T", colon) < 0 and rest.find(b"t", colon) < 0:
        return True
    if colon <= 0:
        return False
    params = rest[:colon].upper()
    return b"VALUE=DATE" in params and b"VALUE=DATE" in params.replace(b"VALUE=DATE-TIME", b"")


def version_key(component: Component) -> tuple[int, str]:
    """(SEQUENCE, LAST-MODIFIED as UTC text): the larger is the newer version."""
    found = {prop.name: prop.value.strip() for prop in component.select(("SEQUENCE", "LAST-MODIFIED"))}
    sequence = found.get("SEQUENCE", "0")
    return int(sequence) if sequence.isdigit() else 0, found.get("LAST-MODIFIED", "")


def newer(first: Component, second: Component) -> Component:
    """The newer of two versions of the same event; the later one on a tie."""
    return first if version_key(first) > version_key(second) else second
