"""Allowlist redaction: one VEVENT + a profile → the lines a subscriber may see.

Deny by default: a property, parameter or sub-component reaches the output only when it
is named below (with the reason) or in the profile's ``keep`` list; SUMMARY, DESCRIPTION
and LOCATION are rebuilt from the profile's templates out of scrubbed text, so a link,
an e-mail address or an internal note cannot ride along inside them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from icalproxy.config.model import Profile, StatusCatalogue
from icalproxy.core import values
from icalproxy.core.facts import EventFacts
from icalproxy.core.lines import (
    ContentLine,
    escape_text,
    fold,
    format_params,
    parse_params,
    unescape_text,
)
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
_EXCLUSIVE = {"DTEND": ("DTEND", "DURATION"), "DURATION": ("DTEND", "DURATION")}
STANDALONE_DROP = frozenset({"RECURRENCE-ID", "RRULE", "RDATE", "EXDATE"})
FALLBACK_DTSTAMP = "19700101T000000Z"
_STATUS_VALUES = frozenset({"TENTATIVE", "CONFIRMED", "CANCELLED"})
_TRANSP_VALUES = frozenset({"OPAQUE", "TRANSPARENT"})

_LINK = re.compile(
    r"(?i)(?:\b[a-z][a-z0-9+.-]{1,20}://|\bwww\.|\bmailto:|\btel:|\bcallto:|\bsips?:)\S*"
    r"|\b[\w-]+(?:\.[\w-]+)*\.[a-z]{2,24}/\S*"
    r"|\b(?:[\w-]+\.)+(?:com|net|org|info|biz|io|app|dev|cloud|de|ch|at|fr|it|nl|be|uk|eu|us"
    r"|example)\b"
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(
    r"(?:\+|\b00)\d[\d ()./-]{6,}\d"  # +49 40 555 1234, 0049…
    r"|\(\d{2,5}\)\s?\d[\d ./-]{4,}\d"  # (040) 555 1234
    r"|\b0\d{2,5}[ /-]\d{3,}(?:[ -]\d{2,})*\b"  # 040 555 1234
)
_SPACES = re.compile(r"[ \t]{2,}")
_BARE_LABEL = re.compile(r"[^:]{0,40}:\W*\Z")


@dataclass(frozen=True, slots=True)
class RedactedEvent:
    chunk: bytes  # folded CRLF lines, BEGIN:VEVENT … END:VEVENT
    tzids: frozenset[str]


class Redactor:
    """A profile compiled once: templates parsed, scrubbers chosen."""

    def __init__(self, profile: Profile, catalogue: StatusCatalogue) -> None:
        self.profile = profile
        self.catalogue = catalogue
        self.summary: Template = compile_template(profile.summary)
        self.busy_summary: Template = compile_template(profile.busy_summary)
        self.description = compile_template(profile.description) if profile.description else None
        self.location = compile_template(profile.location) if profile.location else None
        self.keep = frozenset(profile.keep) - NEVER_KEEP - TEMPLATED
        scrubbers = []
        if profile.scrub.emails:
            scrubbers.append(_EMAIL)  # before links, so that user@host.com goes whole
        if profile.scrub.links:
            scrubbers.append(_LINK)
        if profile.scrub.phones:
            scrubbers.append(_PHONE)
        self.scrubbers = tuple(scrubbers)

    def scrub(self, text: str) -> str:
        """Remove links, e-mails (and phones) per profile; a line left as a bare label goes too."""
        if not text or not self.scrubbers:
            return text.strip()
        kept = []
        for line in text.split("\n"):
            cleaned = line
            for pattern in self.scrubbers:
                cleaned = pattern.sub("", cleaned)
            if cleaned != line:
                cleaned = _SPACES.sub(" ", cleaned).strip()
                if not cleaned or _BARE_LABEL.match(cleaned):
                    continue
            kept.append(cleaned)
        return "\n".join(kept).strip()

    def redact(
        self,
        facts: EventFacts,
        *,
        extra_exdates: Iterable[ContentLine] = (),
        standalone_uid: str | None = None,
        floating: frozenset[str] = frozenset(),
    ) -> RedactedEvent | None:
        """None when the profile drops the event altogether (a private event, say).

        ``floating``: TZIDs with no usable definition; their times are passed on as floating.
        """
        component = facts.component
        profile = self.profile
        busy = False
        klass = component.first("CLASS")
        if klass is not None and klass.value.strip().upper() in ("PRIVATE", "CONFIDENTIAL"):
            if profile.private_events == "drop":
                return None
            busy = profile.private_events == "busy"
        lines = ["BEGIN:VEVENT"]
        tzids: set[str] = set()
        seen: set[str] = set()
        for prop in component.props:
            name = prop.name
            if name not in BASE_KEEP and name not in self.keep:
                continue
            if standalone_uid is not None and name in STANDALONE_DROP:
                continue
            if name in seen or not _value_ok(prop):
                continue
            if name in SINGLE:
                seen.update(_EXCLUSIVE.get(name, (name,)))
            if name == "UID" and standalone_uid is not None:
                lines.append("UID:" + escape_uid(standalone_uid))
            elif name in self.keep and name not in BASE_KEEP:
                lines.append(f"{name}:{escape_text(self.scrub(unescape_text(prop.value)))}")
            else:
                lines.append(_render_prop(prop, tzids, floating))
        for exdate in extra_exdates:
            lines.append(_render_prop(exdate, tzids, floating))
        if "DTSTAMP" not in seen:
            lines.insert(2, "DTSTAMP:" + _fallback_dtstamp(facts))
        lines.extend(self._templated(facts, busy))
        lines.append("END:VEVENT")
        chunk = b"".join(fold(line) for line in lines)
        return RedactedEvent(chunk, frozenset(tzids))

    def _templated(self, facts: EventFacts, busy: bool) -> list[str]:
        if busy:
            summary = self.busy_summary.render({})
            return [f"SUMMARY:{escape_text(summary)}"] if summary else []
        profile = self.profile
        fields: dict[str, str] = {"summary": self.scrub(facts.summary)}
        if profile.show_status:
            status = client_status(facts.field(self.catalogue.field), self.catalogue)
            if status is not None:
                fields["status"] = self.scrub(status.label)
                fields["status_description"] = self.scrub(status.description)
        categories = self._categories(facts)
        fields["subcalendars"] = ", ".join(categories)
        if self.location is not None:
            fields["location"] = self.scrub(facts.text("LOCATION"))
        if self.description is not None and "description" in self.description.names:
            fields["description"] = self._description(facts)
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
            names = [
                name for name in names if any(p.fullmatch(name) for p in profile.client_facing)
            ]
        return names

    def _description(self, facts: EventFacts) -> str:
        text = facts.text("DESCRIPTION")
        status_prefix = self.catalogue.field.casefold() + ":"
        kept = [
            line
            for line in text.split("\n")
            if not line.strip().casefold().startswith(status_prefix)
            and not any(p.search(line) for p in self.profile.drop_description_lines)
        ]
        return self.scrub("\n".join(kept))


def _value_ok(prop: ContentLine) -> bool:
    """Typed check of kept values, so that client parsers never choke on what we pass on."""
    name = prop.name
    value = prop.value
    if name in ("DTSTART", "DTEND", "DTSTAMP", "LAST-MODIFIED"):
        value_type = prop.param("VALUE") if prop.params else None
        return values.parse_when(value, value_type) is not None
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
    kept = [
        (key, vals)
        for key, vals in parse_params(prop.params)
        if key in allowed and vals and not (key == "TZID" and vals[0] in floating)
    ]
    for key, vals in kept:
        if key == "TZID":
            tzids.add(vals[0])
    return f"{prop.name}{format_params(kept)}:{prop.value}"


def _fallback_dtstamp(facts: EventFacts) -> str:
    """A deterministic DTSTAMP for events without one: never the current time."""
    for name in ("LAST-MODIFIED", "CREATED"):
        prop = facts.component.first(name)
        if prop is not None and prop.value.strip().endswith("Z") and values.parse_when(prop.value):
            return prop.value.strip()
    return FALLBACK_DTSTAMP


def escape_uid(uid: str) -> str:
    return uid.replace("\n", " ").replace("\r", " ")
