"""Allowlist redaction: one VEVENT + a profile → the lines a subscriber may see.

Deny by default: a property, parameter or sub-component reaches the output only when it
is named below (with the reason) or in the profile's ``keep`` list; SUMMARY, DESCRIPTION
and LOCATION are rebuilt from the profile's templates out of scrubbed text, so a link,
an e-mail address or an internal note cannot ride along inside them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from functools import lru_cache
from typing import NamedTuple

from icalproxy.config.model import CustomFields, Profile, StatusCatalogue
from icalproxy.core.facts import EventFacts, description_field, field_property
from icalproxy.core.lines import (
    MAX_OCTETS,
    ContentLine,
    escape_text,
    fold,
    parse_params,
    unescape_text,
)
from icalproxy.core.parse import (
    DATE_PROPS,
    LINE_REST,
    Component,
    mention_pattern,
    raw_is_date,
    repair_date,
)
from icalproxy.core.report import Problem
from icalproxy.core.scrub import Scrubber
from icalproxy.core.status import ShownStatus, StatusDecision, StatusKey, StatusRecord, decide
from icalproxy.core.template import Template, compile_template
from icalproxy.core.timezones import ZoneTable
from icalproxy.core.typed import (
    Period,
    Recur,
    When,
    clean_text,
    format_duration,
    parse_duration,
    parse_period,
    parse_recur,
    parse_when,
    until_like,
)

# Kept for every profile, with why:
BASE_KEEP = {
    "UID": "identity: clients update instead of duplicating",
    "DTSTART": "the booked time",
    "DTEND": "the booked time",
    "DURATION": "the booked time",
    "RRULE": "recurrence",
    "RDATE": "recurrence",
    "EXDATE": "cancelled occurrences",
    "RECURRENCE-ID": "ties a moved occurrence to its series",
    "STATUS": "CANCELLED/TENTATIVE are shown by clients",
    "TRANSP": "busy or free",
}
# Never copied from the source: stamps.py writes them from the visible content's history
# (DTSTAMP is required by RFC 5545; LAST-MODIFIED and SEQUENCE tell clients of a change).
STAMPED = frozenset({"DTSTAMP", "LAST-MODIFIED", "SEQUENCE"})
# Rebuilt from templates, never copied: SUMMARY, DESCRIPTION, LOCATION, CATEGORIES.
TEMPLATED = frozenset({"SUMMARY", "DESCRIPTION", "LOCATION", "CATEGORIES"})
# Parameters kept, per property; every other parameter (ALTREP, CN, X-…) is dropped.
_TIME_PARAMS = frozenset({"TZID", "VALUE"})
KEPT_PARAMS = {
    "DTSTART": _TIME_PARAMS,
    "DTEND": _TIME_PARAMS,
    "RDATE": _TIME_PARAMS,
    "EXDATE": _TIME_PARAMS,
    "RECURRENCE-ID": _TIME_PARAMS | {"RANGE"},
}
# Never kept, whatever a profile says: they are links or people by nature.
NEVER_KEEP = frozenset(
    {"URL", "ATTACH", "ATTENDEE", "ORGANIZER", "CONTACT", "X-ALT-DESC", "IMAGE", "CONFERENCE"}
)
# At most one of each (the first valid one wins); DTEND and DURATION exclude each other.
SINGLE = frozenset(BASE_KEEP) - {"RDATE", "EXDATE"}
# The slot a single-valued property takes; DURATION shares DTEND's (they exclude each other).
_SLOT = {name: name for name in SINGLE} | {"DURATION": "DTEND"}
STANDALONE_DROP = frozenset({"RECURRENCE-ID", "RRULE", "RDATE", "EXDATE"})

# Valid by syntax alone: a real month-day (Feb 29 and year 0000 take the typed path), no
# leap second. DATE-TIME lines carry no VALUE; DATE lines carry VALUE=DATE.
_D_B = (
    rb"(?!0000)\d{4}(?:(?:0[1-9]|1[0-2])(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])(?:29|30)"
    rb"|(?:0[13578]|1[02])31)"
)
_T_B = rb"T(?:[01]\d|2[0-3])[0-5]\d[0-5]\d"
_WHEN_B = _D_B + _T_B + rb"Z?"
_DATE_B = _D_B
_TZID_B = rb";TZID=[A-Za-z][A-Za-z0-9_+/-]{0,60}"
# The rest of a plain DTSTART line: group 1 its TZID, group 2 set for VALUE=DATE, 3 the value.
_PLAIN_START = re.compile(
    rb"(?:;TZID=([A-Za-z][A-Za-z0-9_+/-]{0,60})|(;VALUE=DATE))?:(" + _WHEN_B + rb"|" + _D_B + rb")\r?"
)
# Lines that are valid as they stand, matched whole: [name][;TZID=…|;VALUE=DATE]:value, not
# folded. The rest of such a line after its name, per name:
_TIME_REST = rb"(?:" + _TZID_B + rb")?:" + _WHEN_B + rb"|;VALUE=DATE:" + _DATE_B
_LIST_REST = (
    rb"(?:" + _TZID_B + rb")?:" + _WHEN_B + rb"(?:," + _WHEN_B + rb")*"
    rb"|;VALUE=DATE:" + _DATE_B + rb"(?:," + _DATE_B + rb")*"
)
_SIMPLE_RESTS = {
    b"DTSTART": _TIME_REST,
    b"DTEND": _TIME_REST,
    b"RECURRENCE-ID": _TIME_REST,
    b"EXDATE": _LIST_REST,
    b"RDATE": _LIST_REST,
    b"TRANSP": rb":(?:OPAQUE|TRANSPARENT)",
    b"STATUS": rb":(?:TENTATIVE|CONFIRMED|CANCELLED)",
}
_LINE_END = rb"(?=\r?(?:\n(?![ \t])|\Z))"  # the value ends its line, and no fold follows


# CLASS matters only when it makes an event private; the common public line is not even matched.
_PUBLIC_CLASS = rb"(?!:PUBLIC\r?\n(?![ \t]))"
SIMPLE_LINE, INPUT_LINE, OTHER_LINE = 1, 3, 5  # the kinds of line a pass over an event finds
_SEMICOLON = ord(";")


# What a capture group of a line pattern stands for, the rest of a line of one name: (kind
# of line, raw name, name, the single-value slot a simple line takes, a simple line of
# DATE_PROPS). A plain tuple: unpacked once per line.
_LineKind = tuple[int, bytes, str, str | None, bool]


class _LinePattern(NamedTuple):
    pattern: re.Pattern[bytes]
    kinds: tuple[_LineKind, ...]  # per group number (match.lastindex); group 0 stands for none


@lru_cache(maxsize=32)
def _combined_pattern(
    inputs: frozenset[str], others: frozenset[str], skip_public_class: bool
) -> _LinePattern:
    """One pass over an event, one capture group per alternative (the rest of the line after
    its name): a simple valid line, copied as it is; a line only read by the templates; any
    other wanted line. At a line the first alternative that matches wins, in that order.

    Alternatives are grouped under the first byte of their name: the regex engine skips a
    group whose first byte differs without entering it, so an unwanted line costs a few
    byte comparisons. Two alternatives of different first bytes never match the same line,
    so the grouping finds what one flat alternation in the order above would."""
    alternatives: list[tuple[bytes, bytes, _LineKind]] = []  # raw name, after it, its kind
    for raw, rest in _SIMPLE_RESTS.items():
        name = raw.decode()
        kind = (SIMPLE_LINE, raw, name, _SLOT.get(name), name in DATE_PROPS)
        alternatives.append((raw, b"(" + rest + b")" + _LINE_END, kind))
    # Longest names first (a name may be a prefix of another), as parse.name_alternation orders them.
    for name in sorted(inputs, key=len, reverse=True):
        alternatives.append((name.encode(), LINE_REST, (INPUT_LINE, name.encode(), name, None, False)))
    for name in sorted(others - {"CLASS"}, key=len, reverse=True):
        alternatives.append((name.encode(), LINE_REST, (OTHER_LINE, name.encode(), name, None, False)))
    if "CLASS" in others:
        after = (_PUBLIC_CLASS if skip_public_class else b"") + LINE_REST
        alternatives.append((b"CLASS", after, (OTHER_LINE, b"CLASS", "CLASS", None, False)))
    kinds: list[_LineKind] = [(0, b"", "", None, False)]
    if all(raw for raw, _, _ in alternatives):
        grouped: dict[bytes, list[tuple[bytes, bytes, _LineKind]]] = {}
        for raw, after, kind in alternatives:
            grouped.setdefault(raw[:1], []).append((raw[1:], after, kind))
        branches = []
        for first, members in grouped.items():
            inner = b"|".join(re.escape(tail) + after for tail, after, _ in members)
            branches.append(re.escape(first) + b"(?:" + inner + b")")
            kinds.extend(kind for _, _, kind in members)
    else:  # an empty name (a rules file may say anything) matches at any line: keep the order
        branches = [re.escape(raw) + after for raw, after, _ in alternatives]
        kinds.extend(kind for _, _, kind in alternatives)
    pattern = re.compile(rb"\n(?:" + b"|".join(branches) + b")")
    assert pattern.groups == len(kinds) - 1  # each alternative holds exactly one group
    return _LinePattern(pattern, tuple(kinds))


_NAME_OF = {name.encode(): name for name in (*BASE_KEEP, "CLASS", "SUMMARY", "DESCRIPTION", "LOCATION")}
_REMARKS = re.compile(r"\s*(?:\([^()]*\)|\[[^\[\]]*\]|\{[^{}]*\})")
_PLAIN_CATEGORY = re.compile(r"[^\x00-\x1f\x7f-\x9f\u2028\u2029\\]{1,100}")


class RedactedEvent(NamedTuple):
    chunk: bytes  # folded CRLF lines, BEGIN:VEVENT … END:VEVENT
    tzids: frozenset[str]
    # Events split off this one: period RDATEs whose length differs from the event's own
    # become events of their own, (UID, chunk) each.
    extra: tuple[tuple[str, bytes], ...] = ()


class _Event:
    """An event being redacted: output so far and what it has used up."""

    __slots__ = (
        "busy",
        "calendar_tz",
        "component",
        "end",
        "inputs",
        "job",
        "line",
        "master",
        "out",
        "periods",
        "private",
        "problems",
        "seen",
        "series_start",
        "series_zone",
        "simple_end",
        "simple_start",
        "source",
        "start",
        "start_known",
        "start_zone",
        "tzids",
    )

    def __init__(self, out: list[bytes], source: str, component: Component, master: Component | None) -> None:
        self.out = out
        self.source = source
        self.component = component
        self.master = master  # of an override: its series' master (RECURRENCE-ID's type)
        self.line = component.line
        self.job: StatusKey | None = None
        self.tzids: set[str] = set()
        self.seen: set[str] = set()
        self.inputs: dict[bytes, bytes] = {}  # raw name → raw rest, first seen
        self.busy = False
        self.private: bool | None = None  # None: the event's own CLASS did not say
        self.calendar_tz: str | None = None  # X-WR-TIMEZONE, resolved: the zone of floating times
        # DTSTART as published and its zone, and the master's: read when a line needs them.
        self.start_known = False
        self.start: When | None = None
        self.start_zone: str | None = None
        self.series_start: When | None = None
        self.series_zone: str | None = None
        # Copied simple lines: DTSTART (value, TZID) and DTEND (out index, value, TZID), raw.
        self.simple_start: tuple[bytes, bytes | None] | None = None
        self.simple_end: tuple[int, bytes, bytes | None] | None = None
        self.end: tuple[int, When | None, str | None, timedelta | None] | None = None  # typed path
        self.periods: list[tuple[Period, str | None]] = []
        self.problems: list[str] = []


class Redactor:
    """A profile compiled once: templates parsed, scrubbers chosen."""

    def __init__(
        self,
        profile: Profile,
        catalogue: StatusCatalogue,
        custom: CustomFields | None = None,
        zones: ZoneTable | None = None,
        named_categories: frozenset[str] = frozenset(),
        status_history: dict[StatusKey, StatusRecord] | None = None,
        now: str = "19700101T000000Z",
    ) -> None:
        custom = custom or CustomFields()
        self.profile = profile
        # Sub-calendar names the rules spell out: only these may hold a comma or semicolon.
        self.named_categories = named_categories
        # What each job's client saw before (None: no history kept), and what they see now.
        self.status_history = status_history
        self.status_records: dict[StatusKey, StatusRecord] = {}
        self.now = now
        self._status_values: dict[bytes, str] = {}
        self.catalogue = catalogue
        self.zones = zones if zones is not None else ZoneTable({})
        self.summary: Template = compile_template(profile.summary)
        self.busy_summary: Template = compile_template(profile.busy_summary)
        self.description = compile_template(profile.description) if profile.description else None
        self.location = compile_template(profile.location) if profile.location else None
        self.keep = frozenset(profile.keep) - NEVER_KEEP - TEMPLATED - STAMPED
        self.uses_description = self.description is not None and "description" in self.description.names
        templates = [t for t in (self.summary, self.description, self.location) if t is not None]
        self.details = profile.details if any("details" in t.names for t in templates) else ()
        # Catalogue values that set the event's STATUS (a cancelled job shows struck through).
        self.calendar_statuses = {
            key: entry.calendar_status for key, entry in catalogue.entries.items() if entry.calendar_status
        }
        # The status is a custom field: its own property, or else a "Status: …" DESCRIPTION line.
        self.status_in_description = profile.show_status and custom.description_lines
        # Read in one pass per event: what is kept, and what the templates are made of.
        inputs = {"SUMMARY"}
        if profile.show_status:
            inputs.add(field_property(custom, catalogue.field))
        if self.uses_description or self.status_in_description:
            inputs.add("DESCRIPTION")
        if self.location is not None:
            inputs.add("LOCATION")
        self.template_inputs = frozenset(inputs)
        self.inputs_only = self.template_inputs - set(BASE_KEEP) - self.keep
        self.status_name = field_property(custom, catalogue.field).encode()
        wanted = (frozenset(BASE_KEEP) | self.keep | {"CLASS"} | self.template_inputs) - {
            "UID"
        }  # the UID comes from the series
        self._other_names = wanted - self.inputs_only  # wanted lines that are not only inputs
        self.pattern = _combined_pattern(
            self.inputs_only, self._other_names, skip_public_class="CLASS" not in self.keep
        )
        self._rendered: dict[tuple[object, ...], bytes] = {}
        # Each templated line, on the raw inputs of the placeholders it names.
        self._templates = [
            (label, template)
            for label, template in (
                ("SUMMARY", self.summary),
                ("DESCRIPTION", self.description),
                ("LOCATION", self.location),
            )
            if template is not None
        ]
        self._template_names = {label: sorted(template.names) for label, template in self._templates}
        self._lines: dict[tuple[object, ...], bytes] = {}
        self._decisions: dict[tuple[object, ...], StatusDecision] = {}
        self._category_infos: dict[tuple[str, ...], tuple[tuple[str, ...], bytes]] = {}
        self._plain_categories: dict[str, bool] = {}
        self._status_mention = mention_pattern(catalogue.field)
        self._status_needle = catalogue.field.encode().lower()
        self._same_zone: dict[str, dict[bytes, str]] = {}
        self._cleaned: dict[str, str] = {}
        self._summaries: dict[bytes | None, str] = {}
        self.scrubber = Scrubber.of(profile.scrub)
        self._scrub_key = (profile.scrub.links, profile.scrub.emails, profile.scrub.phones)
        busy_summary = self._clean(self.busy_summary.render({}))
        self._busy_lines = fold("SUMMARY:" + escape_text(busy_summary)) if busy_summary else b""

    def pattern_all_classes(self) -> _LinePattern:
        """For an override of a private series, where an explicit CLASS:PUBLIC must be seen;
        compiled when first needed (a large regex: most feeds never need it)."""
        return _combined_pattern(self.inputs_only, self._other_names, skip_public_class=False)

    def scrub(self, text: str) -> str:
        """Remove links, e-mails (and phones) per profile; a line left as a bare label goes too."""
        return self.scrubber.scrub(text)

    def redact(
        self,
        facts: EventFacts,
        uid: str,
        *,
        standalone: bool = False,
        extra_exdates: Iterable[ContentLine] = (),
        inherit_private: bool = False,
        problems: list[Problem] | None = None,
        master: Component | None = None,
    ) -> RedactedEvent | None:
        """None when the profile drops the event altogether (a private event, say).

        ``uid`` is the series' UID (derived for a source event without one); ``standalone``
        publishes an override as an event of its own. ``inherit_private``: the event is an
        override of a private series, private unless its own CLASS says otherwise. What had
        to be repaired or dropped is added to ``problems``. ``master``: of an override, its
        series' master, whose DTSTART fixes the type of RECURRENCE-ID.
        """
        component = facts.component
        event = _Event([b"BEGIN:VEVENT\r\n", fold("UID:" + escape_uid(uid))], facts.source, component, master)
        if self.status_history is not None:
            rid = component.rid
            event.job = (facts.source, uid, rid[rid.rfind(b":") + 1 :].strip().decode() if rid else "")
        zones = self.zones
        if component.calendar_tz is not None:
            event.calendar_tz = zones.resolve(facts.source, component.calendar_tz)
        calendar_tz = event.calendar_tz
        raw_start = component.dtstart
        start_is_date = raw_start is not None and raw_is_date(raw_start)
        drop = STANDALONE_DROP if standalone else frozenset()
        children = component.children
        inputs, seen, out = event.inputs, event.seen, event.out
        # Raw TZIDs of this source published as they are written (canonical IANA names).
        same_zone = self._same_zone.setdefault(facts.source, {})
        pattern, kinds = self.pattern_all_classes() if inherit_private else self.pattern
        for match in pattern.finditer(component.data, component.start, component.end):
            if children and component.in_child(match.start()):
                continue
            group = match.lastindex or 0  # always set: every alternative holds a group
            kind, raw_name, name, slot, is_time = kinds[group]
            rest = match[group]
            if kind == INPUT_LINE:  # decoded only if the template cache misses
                if raw_name not in inputs:
                    inputs[raw_name] = rest
                continue
            if kind == OTHER_LINE:
                if not self._other_line(component, raw_name, rest, event, drop):
                    return None
                continue
            # An already valid line (see _SIMPLE_RESTS): copied through as it is, unless it needs
            # the typed path (a zone to resolve or make explicit, a type to match DTSTART's).
            if slot in seen or name in drop:
                continue
            if is_time:
                colon = rest.find(b":")
                params = rest[0] == _SEMICOLON  # ;TZID=… or ;VALUE=DATE
                typed_path = calendar_tz is not None and not params and _floating_time(rest, colon)
                is_date = params and rest.startswith(b";VALUE")
                if name != "DTSTART" and start_is_date != is_date:
                    typed_path = True  # of another type than DTSTART: converted or dropped
                tzid = None
                if params and rest.startswith(b";TZID="):
                    raw_tzid = rest[6:colon]
                    tzid = same_zone.get(raw_tzid)
                    if tzid is None:
                        tzid = raw_tzid.decode()
                        if zones.resolve(facts.source, tzid) == tzid:
                            same_zone[raw_tzid] = tzid
                    if same_zone.get(raw_tzid) is None:
                        typed_path = True  # a zone published under another name, or none
                if typed_path:
                    self._other_line(component, raw_name, rest, event, drop)
                    continue
                if tzid is not None:
                    event.tzids.add(tzid)
                if name == "DTEND":
                    event.simple_end = (len(out), rest[colon + 1 :], raw_tzid if tzid is not None else None)
                elif name == "DTSTART":
                    event.simple_start = (rest[colon + 1 :], raw_tzid if tzid is not None else None)
            if slot is not None:
                seen.add(slot)
            simple = raw_name + rest
            out.append(simple + b"\r\n" if len(simple) <= MAX_OCTETS else fold(simple.decode()))
        for exdate in extra_exdates:
            self._ensure_start(event)
            line = self._time_line(repair_date(exdate), event)
            if line is not None:
                event.out.append(fold(line))
        if "DTSTART" not in event.seen:
            self._problems(event, problems)
            return None  # never publish an event without its time
        if event.private is None and inherit_private:
            if self.profile.private_events == "drop":
                return None
            event.busy = self.profile.private_events == "busy"
        self._check_end(event)
        templated = self._templated(facts, event)
        if self.calendar_statuses and b"\r\nSTATUS:" in b"\r\n" + templated:
            out[:] = [line for line in out if not line.startswith(b"STATUS:")]  # the catalogue's wins
        extra = self._split_periods(event, uid, templated) if event.periods else ()
        out.append(templated)
        out.append(b"END:VEVENT\r\n")
        if event.problems:
            self._problems(event, problems)
        return RedactedEvent(b"".join(out), _shared_tzids(event.tzids), extra)

    @staticmethod
    def _problems(event: _Event, problems: list[Problem] | None) -> None:
        if problems is not None and event.problems:
            problems.extend(Problem(event.source, event.line, message) for message in event.problems)

    def _ensure_start(self, event: _Event) -> None:
        if not event.start_known:
            event.start_known = True
            event.start, event.start_zone = self._start_of(event.component, event)
            if event.master is not None:
                event.series_start, event.series_zone = self._start_of(event.master, event)

    def _start_of(self, component: Component, event: _Event) -> tuple[When | None, str | None]:
        """A DTSTART as it will be published, read before any line that must match its type."""
        raw = component.dtstart
        if raw is None:
            return None, None
        plain = _PLAIN_START.fullmatch(raw)
        if plain is not None:  # the usual case, valid by its syntax: no decoding
            when = When(plain[3].decode())
            if plain[2] is not None or when.is_utc:
                return (when.as_date() if plain[2] is not None else when), None
            if plain[1] is not None:
                return when, self.zones.resolve(event.source, plain[1].decode())
            return when, event.calendar_tz
        prop = component.content(b"DTSTART", raw)
        if prop is None:
            return None, None
        return self._when_and_zone(repair_date(prop), event)

    def _when_and_zone(self, prop: ContentLine, event: _Event) -> tuple[When | None, str | None]:
        value_type = tzid = None
        for key, vals in parse_params(prop.params) if prop.params else ():
            if key == "VALUE" and value_type is None:
                value_type = (vals[0] if vals else "").strip().upper()
            elif key == "TZID" and tzid is None:
                tzid = vals[0] if vals else ""
        when = parse_when(prop.value)
        if when is None or value_type not in (None, "DATE", "DATE-TIME"):
            return None, None
        if value_type == "DATE":
            when = when.as_date()
        if when.is_date or when.is_utc:
            return when, None
        if tzid is not None:
            return when, self.zones.resolve(event.source, tzid)
        return when, event.calendar_tz

    def _other_line(
        self,
        component: Component,
        raw_name: bytes,
        rest: bytes,
        event: _Event,
        drop: frozenset[str],
    ) -> bool:
        """A wanted line that is not simple: decode, parse, write anew. False: drop the event."""
        name = _NAME_OF.get(raw_name) or raw_name.decode("ascii", "replace")
        if name in self.template_inputs:  # kept and also shown by a template
            event.inputs.setdefault(raw_name, rest)
        if _SLOT.get(name) in event.seen or name in drop:
            return True
        prop = component.content(raw_name, rest)
        if prop is None:
            return True
        if name == "CLASS":
            # RFC 5545: an unknown CLASS value is PRIVATE; a malformed one is too.
            private = prop.value.strip().upper() != "PUBLIC"
            event.private = private if event.private is None else (event.private or private)
            if private:
                if self.profile.private_events == "drop":
                    return False
                event.busy = self.profile.private_events == "busy"
            if name not in self.keep:
                return True
        line = self._typed_line(prop, event)
        if line is None:
            return True
        if name in _SLOT:
            event.seen.add(_SLOT[name])
        event.out.append(fold(line))
        return True

    def _typed_line(self, prop: ContentLine, event: _Event) -> str | None:
        """The property parsed into its type and written anew; None (reported) if it does not
        parse. Parameters are never copied: only those a type defines are written."""
        name = prop.name
        if name in DATE_PROPS:
            self._ensure_start(event)
            line = self._time_line(repair_date(prop), event)
            if line is not None and name == "DTSTART" and event.start is None:
                return None
            return line
        value = prop.value.strip()
        text: str | None
        if name == "CREATED":
            when = parse_when(value)
            if when is None or when.is_date:
                text = None
            else:
                if not when.is_utc or prop.params:
                    event.problems.append(f"{name} is not in UTC; read as UTC")
                text = when.utc().text
        elif name == "DURATION":
            duration = parse_duration(value)
            text = format_duration(duration) if duration is not None and duration >= timedelta() else None
            if text is not None and duration is not None:
                event.end = (len(event.out), None, None, duration)
        elif name == "RRULE":
            text = self._recur(value, event)
        elif name in _ENUMS:
            text = value.upper() if value.upper() in _ENUMS[name] else None
        elif name == "CLASS":
            text = value.upper() if value.upper() in ("PUBLIC", "CONFIDENTIAL") else "PRIVATE"
        elif name == "PRIORITY":
            text = str(int(value)) if value.isdigit() and int(value) <= 9 else None
        elif name == "GEO":
            text = _geo(value)
        else:  # a TEXT property a profile keeps: scrubbed plain text, no parameters
            text = escape_text(self.scrub(clean_text(unescape_text(prop.value))))
            if not text:
                return None
        if text is None:
            event.problems.append(f"{name} value does not parse; dropped")
            return None
        return f"{name}:{text}"

    def _recur(self, value: str, event: _Event) -> str | None:
        recur = _parsed_recur(value)
        if recur is None:
            return None
        if recur.dropped:
            event.problems.append(
                f"RRULE parts that are not RFC 5545 parts dropped: {', '.join(sorted(set(recur.dropped)))}"
            )
        until = recur.parts.get("UNTIL")
        if until is not None:
            self._ensure_start(event)
        if until is not None and event.start is not None:
            fitted = until_like(When(until), event.start, event.start_zone is not None)
            if fitted.text != until:
                event.problems.append("RRULE UNTIL of another type than DTSTART; converted")
                recur = recur.with_until(fitted.text)
        return recur.text

    def _time_line(self, prop: ContentLine, event: _Event) -> str | None:
        """DTSTART, DTEND, RDATE, EXDATE or RECURRENCE-ID, typed: VALUE only DATE, DATE-TIME
        or PERIOD (RDATE), TZID only a resolved zone, RANGE only THISANDFUTURE; values of
        DTSTART's type; a floating time of a calendar that names its zone gets that zone."""
        name = prop.name
        value_type = tzid = range_ = None
        for key, vals in parse_params(prop.params) if prop.params else ():
            first = (vals[0] if vals else "").strip()
            if key == "VALUE" and value_type is None:
                value_type = first.upper()
            elif key == "TZID" and tzid is None:
                tzid = first
            elif key == "RANGE" and name == "RECURRENCE-ID" and range_ is None:
                range_ = first.upper()
        allowed = ("DATE", "DATE-TIME", "PERIOD") if name == "RDATE" else ("DATE", "DATE-TIME")
        if value_type is not None and value_type not in allowed:
            event.problems.append(f"{name} with a VALUE type it cannot have; dropped")
            return None
        if range_ is not None and range_ != "THISANDFUTURE":
            event.problems.append(f"{name} RANGE other than THISANDFUTURE; parameter dropped")
            range_ = None
        zone = None
        if tzid is not None:
            zone = self.zones.resolve(event.source, tzid)
            if zone is None:
                event.problems.append(f"{name} TZID has no usable definition; its time floats")
        start, start_zone = event.start, event.start_zone
        if name == "RECURRENCE-ID" and event.series_start is not None:
            start, start_zone = event.series_start, event.series_zone
        items: list[str] = []
        periods = value_type == "PERIOD" or (value_type is None and name == "RDATE" and "/" in prop.value)
        is_date = False
        for raw in prop.value.split(",") if name in ("EXDATE", "RDATE") else (prop.value,):
            if periods:
                period = parse_period(raw)
                if period is None:
                    event.problems.append(f"{name} period does not parse; dropped")
                    continue
                event.periods.append((period, zone if not period.start.is_utc else None))
                continue
            when = parse_when(raw)
            if when is None:
                event.problems.append(f"{name} value does not parse; dropped")
                if name not in {"EXDATE", "RDATE"}:
                    return None
                continue
            if value_type == "DATE":
                when = when.as_date()
            if name != "DTSTART" and start is not None and when.is_date != start.is_date:
                if name == "DTEND":
                    event.problems.append("DTEND of another type than DTSTART; dropped")
                    return None
                event.problems.append(f"{name} of another type than DTSTART; converted")
                if start.is_date:
                    when = when.as_date()
                else:
                    when = when.with_time_of(start)
                    zone = start_zone if not when.is_utc else None
            is_date = when.is_date
            items.append(when.text)
        if not items:
            return None
        if is_date or items[0].endswith("Z"):
            zone = None
        elif zone is None and tzid is None:
            zone = event.calendar_tz  # floating in a calendar that names its zone
        params = ";VALUE=DATE" if is_date else ""
        if zone is not None:
            event.tzids.add(zone)
            params += f";TZID={zone}"
        if range_ is not None:
            params += ";RANGE=THISANDFUTURE"
        if name == "DTEND":
            event.end = (len(event.out), When(items[0]), zone, None)
        return f"{name}{params}:{','.join(items)}"

    def _check_end(self, event: _Event) -> None:
        """DTEND before DTSTART has no sensible reading: the end goes (a client shows the
        start), with a report line."""
        simple_end, simple_start = event.simple_end, event.simple_start
        if simple_end is not None:
            index, value, tzid = simple_end
            if simple_start is not None:  # both copied as they were: compare their bytes
                start_value, start_tzid = simple_start
                if tzid == start_tzid and len(value) == len(start_value) and value < start_value:
                    del event.out[index]
                    event.problems.append("DTEND before DTSTART; dropped")
                return
            event.end = (index, When(value.decode()), tzid.decode() if tzid is not None else None, None)
        if event.end is None or event.end[1] is None:
            return
        self._ensure_start(event)
        start, end = event.start, event.end
        if start is None or end is None or end[1] is None:
            return
        index, end_when, zone, _ = end
        if end_when is None:
            return
        same_frame = zone == event.start_zone and len(end_when) == len(start)
        if same_frame and end_when < start:  # canonical texts of one form sort as times
            del event.out[index]
            event.end = None
            event.problems.append("DTEND before DTSTART; dropped")

    def _split_periods(self, event: _Event, uid: str, templated: bytes) -> tuple[tuple[str, bytes], ...]:
        """Period RDATEs: one as long as the event becomes a plain RDATE (what clients
        iterate); any other becomes an event of its own, ``<UID>-P<start>``."""
        if not event.periods:
            return ()
        self._ensure_start(event)
        if event.simple_end is not None and event.end is None:
            index, value, tzid = event.simple_end
            event.end = (index, When(value.decode()), tzid.decode() if tzid is not None else None, None)
        length = self._length(event)
        plain: dict[str | None, list[str]] = {}
        extra = []
        for period, zone in event.periods:
            if length is not None and period.length() == length:
                plain.setdefault(zone, []).append(period.start.text)
                continue
            zone_param = f";TZID={zone}" if zone is not None else ""
            if zone is not None:
                event.tzids.add(zone)
            own_uid = f"{uid}-P{period.start.text}"
            lines = [
                b"BEGIN:VEVENT\r\n",
                fold("UID:" + escape_uid(own_uid)),  # stamps.py adds its DTSTAMP
                fold(f"DTSTART{zone_param}:{period.start.text}"),
                fold(f"DURATION:{format_duration(period.length())}"),
                templated,
                b"END:VEVENT\r\n",
            ]
            extra.append((own_uid, b"".join(lines)))
        for zone, starts in sorted(plain.items(), key=lambda item: item[0] or ""):
            zone_param = f";TZID={zone}" if zone is not None else ""
            if zone is not None:
                event.tzids.add(zone)
            event.out.append(fold(f"RDATE{zone_param}:{','.join(starts)}"))
        if extra:
            event.problems.append(f"{len(extra)} RDATE period(s) of another length published as events")
        return tuple(extra)

    @staticmethod
    def _length(event: _Event) -> timedelta | None:
        start, end = event.start, event.end
        if start is None:
            return None
        if end is None:
            return timedelta(days=1) if start.is_date else timedelta()
        if end[3] is not None:
            return end[3]
        if end[1] is not None and not start.is_date:
            return end[1].moment() - start.moment()
        return None

    def _templated(self, facts: EventFacts, event: _Event) -> bytes:
        """SUMMARY, DESCRIPTION, LOCATION and CATEGORIES as folded bytes, memoised on their raw
        inputs: feeds repeat the same job titles and statuses thousands of times, so most
        events need no decoding, scrubbing or templating at all. A combination not seen
        before is put together from lines memoised on what each line is made of alone."""
        if event.busy:
            return self._busy_lines
        raw = event.inputs
        status = self._status_value(facts, raw) if self.profile.show_status else None
        decision, name, since = self._decide(facts, event, status)
        details = tuple(facts.field(name) for name in self.details) if self.details else None
        calendar_status = self.calendar_statuses.get(status.casefold()) if status else None
        categories = facts.categories if self.profile.categories != "drop" else None
        key = (
            raw.get(b"SUMMARY"),
            decision,
            name,
            since,
            calendar_status,
            raw.get(b"LOCATION"),
            raw.get(b"DESCRIPTION") if self.uses_description else None,
            categories,
            details,
        )
        cached = self._rendered.get(key)
        if cached is None:
            if len(self._rendered) > 20_000:
                self._rendered.clear()
            parts = [
                self._template_line(label, template, facts, event, decision, details, name, since)
                for label, template in self._templates
            ]
            if categories:
                parts.append(self._category_info(categories)[1])
            if calendar_status is not None:
                parts.append(fold("STATUS:" + calendar_status))  # replaces the source's (see redact)
            cached = self._rendered[key] = b"".join(parts)
        return cached

    def _template_line(
        self,
        label: str,
        template: Template,
        facts: EventFacts,
        event: _Event,
        status: ShownStatus | None,
        details: tuple[str | None, ...] | None,
        name: str | None,
        since: str | None,
    ) -> bytes:
        """One templated line, folded (empty when the template renders empty), memoised on
        the raw inputs of the placeholders it names."""
        raw = event.inputs
        inputs: dict[str, object] = {
            "summary": (name, None) if name else (None, raw.get(b"SUMMARY")),
            "status": status,
            "status_description": status,
            "status_since": since if status is not None else None,
            "subcalendars": facts.categories if self.profile.categories != "drop" else None,
            "details": details,
            "location": raw.get(b"LOCATION") if self.location is not None else None,
            "description": raw.get(b"DESCRIPTION") if self.uses_description else None,
        }
        inputs["address"] = inputs["location"]
        key = (label, *(inputs[field] for field in self._template_names[label]))
        line = self._lines.get(key)
        if line is None:
            if len(self._lines) > 20_000:
                self._lines.clear()
            fields = self._fields(template.names, facts, event, status, details, name, since)
            text = template.render(fields)
            line = self._lines[key] = fold(label + ":" + escape_text(text)) if text else b""
        return line

    def _status_value(self, facts: EventFacts, raw: dict[bytes, bytes]) -> str | None:
        """The job's internal status: its custom-field property, else a DESCRIPTION line."""
        status_raw = raw.get(self.status_name)
        if status_raw is None:
            if not self.status_in_description:
                return None
            return self._description_status(facts, raw.get(b"DESCRIPTION"))
        value = self._status_values.get(status_raw)
        if value is None:
            if len(self._status_values) > 4096:
                self._status_values.clear()
            value = self._status_values[status_raw] = self._text(facts, self.status_name, status_raw).strip()
        return value

    def _decide(
        self, facts: EventFacts, event: _Event, status: str | None
    ) -> tuple[ShownStatus | None, str | None, str | None]:
        """(the status shown, the job's own client-facing name, since when) for this job:
        the catalogue, what the client saw before (carry-over) and the job's override fields."""
        overrides = self.catalogue.overrides
        history, job = self.status_history, event.job
        previous = history.get(job) if history is not None and job is not None else None
        previous_shown = previous.shown if previous is not None else None
        visible = facts.field(overrides.visible) if overrides.visible else None
        description = facts.field(overrides.description) if overrides.description else None
        key = (status, previous_shown, visible, description)
        decision = self._decisions.get(key)
        if decision is None:  # decide is a function of these alone: once per combination
            if len(self._decisions) > 4096:
                self._decisions.clear()
            decision = self._decisions[key] = decide(
                status, self.catalogue, previous_shown, visible=visible, description=description
            )
        name = facts.field(overrides.name) if overrides.name else None
        if not self.profile.show_status:
            return None, name, None
        since = None
        if event.job is not None:
            same = previous is not None and previous.shown == decision.shown
            since = previous.since if same and previous is not None else self.now
            self.status_records[event.job] = StatusRecord(decision.shown, since, decision.reason)
        return decision.shown, name, since if decision.shown is not None else None

    def _description_status(self, facts: EventFacts, raw: bytes | None) -> str | None:
        if raw is None or not self._mentions_status(raw):
            return None  # most descriptions need no decoding at all
        return description_field(self._text(facts, b"DESCRIPTION", raw), self.catalogue.field)

    def _mentions_status(self, raw: bytes) -> bool:
        """Whether the status field's name occurs in raw DESCRIPTION bytes (any ASCII case,
        a fold allowed between any two bytes): what mention_pattern finds, found without a
        regex when the name stands unfolded or the line has no fold at all."""
        if self._status_needle in raw.lower():
            return True
        if b"\n" not in raw:
            return False
        return self._status_mention.search(raw) is not None

    @staticmethod
    def _text(facts: EventFacts, name: bytes, raw: bytes | None) -> str:
        line = facts.component.content(name, raw) if raw is not None else None
        return clean_text(unescape_text(line.value)) if line is not None else ""

    def _summary(self, facts: EventFacts, raw: bytes | None) -> str:
        """The scrubbed summary, once per distinct raw SUMMARY line (and across runs: each
        run compiles its redactors anew, and a feed's job titles stay from run to run)."""
        summary = self._summaries.get(raw)
        if summary is None:
            if len(self._summaries) > 20_000:
                self._summaries.clear()
            key = (self._scrub_key, raw)
            summary = _SCRUBBED_SUMMARIES.get(key)
            if summary is None:
                summary = self.scrub(self._text(facts, b"SUMMARY", raw))
                if raw is not None and len(raw) <= _SHARED_SUMMARY_BYTES:
                    if len(_SCRUBBED_SUMMARIES) > 20_000:
                        _SCRUBBED_SUMMARIES.clear()
                    _SCRUBBED_SUMMARIES[key] = summary
            self._summaries[raw] = summary
        return summary

    def _fields(
        self,
        names: frozenset[str],
        facts: EventFacts,
        event: _Event,
        status: ShownStatus | None,
        details: tuple[str | None, ...] | None,
        name: str | None = None,
        since: str | None = None,
    ) -> dict[str, str]:
        """The values of the placeholders in ``names``: each scrubbed like all text a client
        sees; one that is left out renders empty."""
        raw = event.inputs
        fields: dict[str, str] = {}
        if "summary" in names:
            fields["summary"] = self._clean(name) if name else self._summary(facts, raw.get(b"SUMMARY"))
        if status is not None:  # whatever its origin (source or catalogue), scrubbed like all text
            if "status" in names:
                fields["status"] = self._clean(status.label)
            if "status_description" in names:
                fields["status_description"] = self._clean(status.description)
            if since and "status_since" in names:
                fields["status_since"] = f"{since[:4]}-{since[4:6]}-{since[6:8]}"
        if "subcalendars" in names:
            fields["subcalendars"] = ", ".join(self._categories(facts))
        if details and "details" in names:
            pairs = zip(self.details, details, strict=True)
            shown = ((name, self._clean(value)) for name, value in pairs if value)
            fields["details"] = "\n".join(f"{name}: {value}" for name, value in shown if value)
        if self.location is not None and ("location" in names or "address" in names):
            fields["location"] = self.scrub(self._text(facts, b"LOCATION", raw.get(b"LOCATION")))
            # {address}: the location without remarks in brackets ("(gate code 4711)").
            fields["address"] = _REMARKS.sub("", fields["location"]).strip(" ,;")
        if self.uses_description and "description" in names:
            fields["description"] = self._description(
                self._text(facts, b"DESCRIPTION", raw.get(b"DESCRIPTION"))
            )
        return fields

    def _clean(self, text: str) -> str:
        """Scrubbed, control-free text; catalogue labels repeat, so once per distinct text."""
        if not text:
            return ""
        cleaned = self._cleaned.get(text)
        if cleaned is None:
            if len(self._cleaned) > 4096:
                self._cleaned.clear()
            cleaned = self._cleaned[text] = self.scrub(clean_text(text))
        return cleaned

    def _categories(self, facts: EventFacts) -> tuple[str, ...]:
        """Sub-calendar names: only plain one-line names (no control character, escaped line
        break, comma, semicolon or backslash, nothing the scrubber would touch) that fit the
        profile's client-facing names when it has them."""
        if self.profile.categories == "drop":
            return ()
        return self._category_info(facts.categories)[0]

    def _category_info(self, categories: tuple[str, ...]) -> tuple[tuple[str, ...], bytes]:
        """The names shown of an event's CATEGORIES and its CATEGORIES line (empty without
        any), once per distinct list: events repeat a few lists of sub-calendars."""
        info = self._category_infos.get(categories)
        if info is None:
            profile = self.profile
            names = [name for name in dict.fromkeys(categories) if self._plain_category(name)]
            if profile.categories == "client-facing":
                names = [name for name in names if any(p.fullmatch(name) for p in profile.client_facing)]
            line = fold("CATEGORIES:" + ",".join(escape_text(name) for name in names)) if names else b""
            if len(self._category_infos) > 4096:
                self._category_infos.clear()
            info = self._category_infos[categories] = (tuple(names), line)
        return info

    def _plain_category(self, name: str) -> bool:
        plain = self._plain_categories.get(name)
        if plain is None:
            if len(self._plain_categories) > 4096:
                self._plain_categories.clear()
            plain = self._plain_categories[name] = self._is_plain_category(name)
        return plain

    def _is_plain_category(self, name: str) -> bool:
        if _PLAIN_CATEGORY.fullmatch(name) is None:
            return False
        if ("," in name or ";" in name) and name not in self.named_categories:
            return False  # "Client: Acme, Internal: …" reads as two names to some clients
        return self.scrub(name) == name

    def _description(self, text: str) -> str:
        status_prefix = self.catalogue.field.casefold() + ":"
        kept = [
            line
            for line in text.split("\n")
            if not line.strip().casefold().startswith(status_prefix)
            and not any(p.search(line) for p in self.profile.drop_description_lines)
        ]
        return self.scrub("\n".join(kept))


# Scrubbed summaries shared by the redactors of every run: (what the scrubber removes,
# raw SUMMARY rest) → the scrubbed text. The text depends on nothing else (not the event,
# not the profile's templates); a bounded memo, cleared when full.
_SCRUBBED_SUMMARIES: dict[tuple[tuple[bool, bool, bool], bytes | None], str] = {}
_SHARED_SUMMARY_BYTES = 1000  # longer summaries are memoised per run only

_TZID_SETS: dict[frozenset[str], frozenset[str]] = {}


def _shared_tzids(tzids: set[str]) -> frozenset[str]:
    """One frozenset object per distinct set of TZIDs (events repeat a handful of them)."""
    key = frozenset(tzids)
    if len(_TZID_SETS) > 4096:
        _TZID_SETS.clear()
    return _TZID_SETS.setdefault(key, key)


@lru_cache(maxsize=4096)
def _parsed_recur(value: str) -> Recur | None:
    """parse_recur, once per distinct rule text (feeds repeat a few rules many times); the
    result is shared: never change its parts in place."""
    return parse_recur(value)


def _floating_time(rest: bytes, colon: int) -> bool:
    """The rest of a simple time line without parameters holding floating date-times."""
    return rest.find(b"T", colon) >= 0 and rest.find(b"Z", colon) < 0


_ENUMS = {
    "STATUS": frozenset({"TENTATIVE", "CONFIRMED", "CANCELLED"}),
    "TRANSP": frozenset({"OPAQUE", "TRANSPARENT"}),
}


def _geo(value: str) -> str | None:
    """GEO: latitude;longitude as two floats in range, written anew."""
    latitude, semi, longitude = value.partition(";")
    try:
        lat, lon = float(latitude), float(longitude)
    except ValueError:
        return None
    if not semi or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return f"{lat:.6f};{lon:.6f}"


def escape_uid(uid: str) -> str:
    if uid.isprintable():  # the usual case: no control character, no line break
        return uid
    return clean_text(uid).replace("\n", " ")
