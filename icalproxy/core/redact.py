"""Allowlist redaction: one VEVENT + a profile → the lines a subscriber may see.

Deny by default: a property, parameter or sub-component reaches the output only when it
is named below (with the reason) or in the profile's ``keep`` list; SUMMARY, DESCRIPTION
and LOCATION are rebuilt from the profile's templates out of scrubbed text, so a link,
an e-mail address or an internal note cannot ride along inside them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from icalproxy.config.model import CustomFields, Profile, StatusCatalogue
from icalproxy.core import values
from icalproxy.core.facts import EventFacts, description_field, field_property
from icalproxy.core.lines import (
    MAX_OCTETS,
    ContentLine,
    escape_text,
    fold,
    format_params,
    parse_params,
    unescape_text,
)
from icalproxy.core.parse import (
    DATE_PROPS,
    LINE_REST,
    Component,
    mention_pattern,
    name_alternation,
    repair_date,
)
from icalproxy.core.scrub import Scrubber
from icalproxy.core.status import client_status
from icalproxy.core.template import Template, compile_template

# Kept for every profile, with why:
BASE_KEEP = {
    "UID": "identity: clients update instead of duplicating",
    "DTSTAMP": "required by RFC 5545 in every VEVENT",
    "SEQUENCE": "lets clients tell a newer version of the event",
    "DTSTART": "the booked time",
    "DTEND": "the booked time",
    "DURATION": "the booked time",
    "RRULE": "recurrence",
    "RDATE": "recurrence",
    "EXDATE": "cancelled occurrences",
    "RECURRENCE-ID": "ties a moved occurrence to its series",
    "STATUS": "CANCELLED/TENTATIVE are shown by clients",
    "TRANSP": "busy or free",
    "LAST-MODIFIED": "change detection in clients",
}
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
FALLBACK_DTSTAMP = "19700101T000000Z"
_STATUS_VALUES = frozenset({"TENTATIVE", "CONFIRMED", "CANCELLED"})
_TRANSP_VALUES = frozenset({"OPAQUE", "TRANSPARENT"})

_WHEN_B = values.WHEN_SYNTAX.pattern.removesuffix(r"\Z").encode()
_DATE_B = values.DATE_SYNTAX.pattern.removesuffix(r"\Z").encode()
_TZID_B = rb";TZID=[^\";:,\s\x00-\x1f\x7f](?:[^\";:,\x00-\x1f\x7f]*[^\";:,\s\x00-\x1f\x7f])?"
# Lines that are valid as they stand, matched whole: [name][;TZID=…|;VALUE=DATE]:value, not folded.
_SIMPLE = (
    rb"(?:(?:DTSTART|DTEND|RECURRENCE-ID)(?:"
    + _TZID_B
    + rb")?:"
    + _WHEN_B
    + rb"|(?:DTSTART|DTEND|RECURRENCE-ID);VALUE=DATE:"
    + _DATE_B
    + rb"|(?:EXDATE|RDATE)(?:"
    + _TZID_B
    + rb")?:"
    + _WHEN_B
    + rb"(?:,"
    + _WHEN_B
    + rb")*"
    + rb"|(?:EXDATE|RDATE);VALUE=DATE:"
    + _DATE_B
    + rb"(?:,"
    + _DATE_B
    + rb")*"
    + rb"|(?:DTSTAMP|LAST-MODIFIED):"
    + _WHEN_B
    + rb"|SEQUENCE:\d{1,9}|TRANSP:(?:OPAQUE|TRANSPARENT)|STATUS:(?:TENTATIVE|CONFIRMED|CANCELLED))"
    + rb"(?=\r?(?:\n(?![ \t])|\Z))"
)


# CLASS matters only when it makes an event private; the common public line is not even matched.
_PUBLIC_CLASS = rb"(?!:PUBLIC\r?\n(?![ \t]))"
SIMPLE_LINE, INPUT_LINE, OTHER_LINE = 1, 3, 5  # match.lastindex of each kind of line


@lru_cache(maxsize=32)
def _combined_pattern(
    inputs: frozenset[str], others: frozenset[str], skip_public_class: bool
) -> re.Pattern[bytes]:
    """One pass over an event. Group 1: a simple valid line, copied as it is. Groups 2–3: name
    and rest of a line only read by the templates. Groups 4–5: any other wanted line."""
    other = name_alternation(others - {"CLASS"})
    if "CLASS" in others:
        other += b"|CLASS" + (_PUBLIC_CLASS if skip_public_class else b"")
    simple = rb"(" + _SIMPLE + rb")"
    template_only = rb"(" + name_alternation(inputs) + rb")" + LINE_REST
    return re.compile(rb"\n(?:" + simple + rb"|" + template_only + rb"|(" + other + rb")" + LINE_REST + rb")")


_NAME_OF = {name.encode(): name for name in (*BASE_KEEP, "CLASS", "SUMMARY", "DESCRIPTION", "LOCATION")}
# Raw name of a simple line → (name, the single-value slot it takes or None).
_SIMPLE_NAMES = {name.encode(): (name, _SLOT.get(name)) for name in BASE_KEEP}


class RedactedEvent(NamedTuple):
    chunk: bytes  # folded CRLF lines, BEGIN:VEVENT … END:VEVENT
    tzids: frozenset[str]


@dataclass(slots=True)
class _Event:
    """An event being redacted: output so far and what it has used up."""

    out: list[bytes]
    tzids: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    inputs: dict[bytes, bytes] = field(default_factory=dict)  # raw name → raw rest, first seen
    busy: bool = False
    calendar_tz: str | None = None  # X-WR-TIMEZONE: the zone of its floating times


class Redactor:
    """A profile compiled once: templates parsed, scrubbers chosen."""

    def __init__(
        self, profile: Profile, catalogue: StatusCatalogue, custom: CustomFields | None = None
    ) -> None:
        custom = custom or CustomFields()
        self.profile = profile
        self.catalogue = catalogue
        self.summary: Template = compile_template(profile.summary)
        self.busy_summary: Template = compile_template(profile.busy_summary)
        self.description = compile_template(profile.description) if profile.description else None
        self.location = compile_template(profile.location) if profile.location else None
        self.keep = frozenset(profile.keep) - NEVER_KEEP - TEMPLATED
        self.uses_description = self.description is not None and "description" in self.description.names
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
        self.pattern = _combined_pattern(
            self.inputs_only, wanted - self.inputs_only, skip_public_class="CLASS" not in self.keep
        )
        self._rendered: dict[tuple[object, ...], bytes] = {}
        self._summaries: dict[bytes | None, str] = {}
        busy_summary = self.busy_summary.render({})
        self._busy_lines = fold("SUMMARY:" + escape_text(busy_summary)) if busy_summary else b""
        self.scrubber = Scrubber(
            links=profile.scrub.links, emails=profile.scrub.emails, phones=profile.scrub.phones
        )

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
        floating: frozenset[str] = frozenset(),
    ) -> RedactedEvent | None:
        """None when the profile drops the event altogether (a private event, say).

        ``uid`` is the series' UID (derived for a source event without one); ``standalone``
        publishes an override as an event of its own. ``floating``: TZIDs with no usable
        definition; their times are passed on as floating.
        """
        component = facts.component
        event = _Event([b"BEGIN:VEVENT\r\n", fold("UID:" + escape_uid(uid))])
        calendar_tz = event.calendar_tz = component.calendar_tz
        drop = STANDALONE_DROP if standalone else frozenset()
        children = component.children
        inputs, seen, out = event.inputs, event.seen, event.out
        for match in self.pattern.finditer(component.data, component.start, component.end):
            if children and component.in_child(match.start()):
                continue
            kind = match.lastindex
            if kind == INPUT_LINE:  # decoded only if the template cache misses
                raw_name = match[2]
                if raw_name not in inputs:
                    inputs[raw_name] = match[3]
                continue
            if kind == OTHER_LINE:
                if not self._other_line(component, match[4], match[5], event, drop, floating):
                    return None
                continue
            # An already valid line (see _SIMPLE): copied through as it is.
            simple = match[1]
            colon = simple.find(b":")
            semi = simple.find(b";", 0, colon)
            raw_name = simple[:colon] if semi < 0 else simple[:semi]
            name, slot = _SIMPLE_NAMES[raw_name]
            if slot in seen or name in drop:
                continue
            if calendar_tz is not None and semi < 0 and _floating_time(simple, colon, name):
                # Its calendar names the zone (X-WR-TIMEZONE): the general path makes it explicit.
                self._other_line(component, raw_name, simple[len(raw_name) :], event, drop, floating)
                continue
            if semi >= 0 and simple.startswith(b"TZID=", semi + 1):
                tzid = simple[semi + 6 : colon].decode("utf-8", "replace")
                if tzid in floating:  # the general path drops the parameter
                    self._other_line(component, raw_name, simple[len(raw_name) :], event, drop, floating)
                    continue
                event.tzids.add(tzid)
            if slot is not None:
                seen.add(slot)
            out.append(simple + b"\r\n" if len(simple) <= MAX_OCTETS else fold(simple.decode()))
        for exdate in extra_exdates:
            excluded = localise(repair_date(exdate), calendar_tz)
            event.out.append(fold(_render_prop(excluded, event.tzids, floating)))
        if "DTSTART" not in event.seen:
            return None  # never publish an event without its time
        if "DTSTAMP" not in event.seen:
            event.out.insert(2, fold("DTSTAMP:" + _fallback_dtstamp(facts)))
        event.out.append(self._templated(facts, event))
        event.out.append(b"END:VEVENT\r\n")
        return RedactedEvent(b"".join(event.out), _shared_tzids(event.tzids))

    def _other_line(
        self,
        component: Component,
        raw_name: bytes,
        rest: bytes,
        event: _Event,
        drop: frozenset[str],
        floating: frozenset[str],
    ) -> bool:
        """A wanted line that is not simple: decode, check, render. False: drop the event."""
        name = _NAME_OF.get(raw_name) or raw_name.decode("ascii", "replace")
        if name in self.template_inputs:  # kept and also shown by a template
            event.inputs.setdefault(raw_name, rest)
        if _SLOT.get(name) in event.seen or name in drop:
            return True
        prop = component.content(raw_name, rest)
        if prop is None:
            return True
        if name == "CLASS":
            if prop.value.strip().upper() in ("PRIVATE", "CONFIDENTIAL"):
                if self.profile.private_events == "drop":
                    return False
                event.busy = self.profile.private_events == "busy"
            if name not in self.keep:
                return True
        if name in DATE_PROPS:
            prop = localise(repair_date(prop), event.calendar_tz)
        if not _value_ok(prop):
            return True
        if name in _SLOT:
            event.seen.add(_SLOT[name])
        if name in self.keep and name not in BASE_KEEP:
            event.out.append(fold(f"{name}:{escape_text(self.scrub(unescape_text(prop.value)))}"))
        else:
            event.out.append(fold(_render_prop(prop, event.tzids, floating)))
        return True

    def _templated(self, facts: EventFacts, event: _Event) -> bytes:
        """SUMMARY, DESCRIPTION, LOCATION and CATEGORIES as folded bytes, memoised on their raw
        inputs: feeds repeat the same job titles and statuses thousands of times, so most
        events need no decoding, scrubbing or templating at all."""
        if event.busy:
            return self._busy_lines
        raw = event.inputs
        status_raw = raw.get(self.status_name) if self.profile.show_status else None
        description_status = None
        if status_raw is None and self.status_in_description:
            description_status = self._description_status(facts, raw.get(b"DESCRIPTION"))
        key = (
            raw.get(b"SUMMARY"),
            status_raw,
            description_status,
            raw.get(b"LOCATION"),
            raw.get(b"DESCRIPTION") if self.uses_description else None,
            facts.categories if self.profile.categories != "drop" else None,
        )
        cached = self._rendered.get(key)
        if cached is None:
            if len(self._rendered) > 20_000:
                self._rendered.clear()
            status = (
                self._text(facts, self.status_name, status_raw).strip()
                if status_raw is not None
                else description_status
            )
            lines = self._render_fields(facts, event, status)
            cached = self._rendered[key] = b"".join(fold(line) for line in lines)
        return cached

    def _description_status(self, facts: EventFacts, raw: bytes | None) -> str | None:
        if raw is None or mention_pattern(self.catalogue.field).search(raw) is None:
            return None  # most descriptions need no decoding at all
        return description_field(self._text(facts, b"DESCRIPTION", raw), self.catalogue.field)

    @staticmethod
    def _text(facts: EventFacts, name: bytes, raw: bytes | None) -> str:
        line = facts.component.content(name, raw) if raw is not None else None
        return unescape_text(line.value) if line is not None else ""

    def _summary(self, facts: EventFacts, raw: bytes | None) -> str:
        """The scrubbed summary, once per distinct raw SUMMARY line."""
        summary = self._summaries.get(raw)
        if summary is None:
            if len(self._summaries) > 20_000:
                self._summaries.clear()
            summary = self._summaries[raw] = self.scrub(self._text(facts, b"SUMMARY", raw))
        return summary

    def _render_fields(self, facts: EventFacts, event: _Event, status_value: str | None) -> list[str]:
        raw = event.inputs
        fields: dict[str, str] = {"summary": self._summary(facts, raw.get(b"SUMMARY"))}
        status = client_status(status_value, self.catalogue)
        if status is not None:  # catalogue text is written by ops for clients: no scrub
            fields["status"] = status.label
            fields["status_description"] = status.description
        categories = self._categories(facts)
        fields["subcalendars"] = ", ".join(categories)
        if self.location is not None:
            fields["location"] = self.scrub(self._text(facts, b"LOCATION", raw.get(b"LOCATION")))
        if self.uses_description:
            fields["description"] = self._description(
                self._text(facts, b"DESCRIPTION", raw.get(b"DESCRIPTION"))
            )
        out = []
        summary = self.summary.render(fields)
        if summary:
            out.append("SUMMARY:" + escape_text(summary))
        if self.description is not None:
            description = self.description.render(fields)
            if description:
                out.append("DESCRIPTION:" + escape_text(description))
        if self.location is not None:
            location = self.location.render(fields)
            if location:
                out.append("LOCATION:" + escape_text(location))
        if categories:
            out.append("CATEGORIES:" + ",".join(escape_text(name) for name in categories))
        return out

    def _categories(self, facts: EventFacts) -> list[str]:
        profile = self.profile
        if profile.categories == "drop":
            return []
        names = list(dict.fromkeys(facts.categories))
        if profile.categories == "client-facing":
            names = [name for name in names if any(p.fullmatch(name) for p in profile.client_facing)]
        return names

    def _description(self, text: str) -> str:
        status_prefix = self.catalogue.field.casefold() + ":"
        kept = [
            line
            for line in text.split("\n")
            if not line.strip().casefold().startswith(status_prefix)
            and not any(p.search(line) for p in self.profile.drop_description_lines)
        ]
        return self.scrub("\n".join(kept))


_TZID_SETS: dict[frozenset[str], frozenset[str]] = {}


def _shared_tzids(tzids: set[str]) -> frozenset[str]:
    """One frozenset object per distinct set of TZIDs (events repeat a handful of them)."""
    key = frozenset(tzids)
    if len(_TZID_SETS) > 4096:
        _TZID_SETS.clear()
    return _TZID_SETS.setdefault(key, key)


def _value_ok(prop: ContentLine) -> bool:
    """Typed check of kept values, so that client parsers never choke on what we pass on."""
    name = prop.name
    value = prop.value
    if name in ("DTSTART", "DTEND", "DTSTAMP", "LAST-MODIFIED"):
        if prop.params and "VALUE=DATE" in prop.params.upper() and "VALUE=DATE-" not in prop.params.upper():
            return values.DATE_SYNTAX.match(value) is not None
        return values.WHEN_SYNTAX.match(value) is not None
    if name in ("EXDATE", "RDATE"):
        return values.valid_date_list(value, prop.param("VALUE") if prop.params else None)
    if name == "RECURRENCE-ID":
        return bool(values.recurrence_key(value))
    if name == "DURATION":
        return values.parse_duration(value) is not None
    if name == "RRULE":
        return values.valid_rrule(value)
    if name == "SEQUENCE":
        return value.strip().isdigit()
    if name == "STATUS":
        return value.strip().upper() in _STATUS_VALUES
    if name == "TRANSP":
        return value.strip().upper() in _TRANSP_VALUES
    if name == "UID":
        return bool(value.strip())
    return True


def _render_prop(prop: ContentLine, tzids: set[str], floating: frozenset[str]) -> str:
    allowed = KEPT_PARAMS.get(prop.name)
    if not prop.params or allowed is None:
        return f"{prop.name}:{prop.value}"
    kept: list[tuple[str, list[str]]] = []
    for key, vals in parse_params(prop.params):
        if key not in allowed or not vals:
            continue
        if key == "TZID":
            tzid = vals[0].strip()  # " Europe/Berlin" names Europe/Berlin's VTIMEZONE
            if not tzid or tzid in floating:
                continue  # no TZID, or one nothing can define: floating time
            tzids.add(tzid)
            kept.append((key, [tzid]))
        elif vals[0]:
            kept.append((key, vals))
    return f"{prop.name}{format_params(kept)}:{prop.value}"


def localise(prop: ContentLine, calendar_tz: str | None) -> ContentLine:
    """A floating date-time in a calendar that names its zone (X-WR-TIMEZONE, as Google and
    others export) gets that zone as TZID, so that every subscriber sees the intended hour
    rather than the same digits in their own zone. Dates, UTC and zoned times stay as they are."""
    if calendar_tz is None or prop.name not in DATE_PROPS or "T" not in prop.value:
        return prop
    if "Z" in prop.value.upper():
        return prop
    if prop.params:
        value_type = prop.param("VALUE")
        if prop.param("TZID") is not None or (value_type is not None and value_type.upper() != "DATE-TIME"):
            return prop
    return prop._replace(params=prop.params + format_params([("TZID", [calendar_tz])]))


def _floating_time(simple: bytes, colon: int, name: str) -> bool:
    """A simple line (no parameters) holding floating date-times."""
    return name in DATE_PROPS and simple.find(b"T", colon) >= 0 and simple.find(b"Z", colon) < 0


def _fallback_dtstamp(facts: EventFacts) -> str:
    """A deterministic DTSTAMP for events without one: never the current time."""
    for name in ("LAST-MODIFIED", "CREATED"):
        prop = facts.component.first(name)
        if prop is not None and prop.value.strip().endswith("Z") and values.parse_when(prop.value):
            return prop.value.strip()
    return FALLBACK_DTSTAMP


def escape_uid(uid: str) -> str:
    return uid.replace("\n", " ").replace("\r", " ")
