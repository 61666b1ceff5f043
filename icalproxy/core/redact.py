"""Allowlist redaction: one VEVENT + a profile → the lines a subscriber may see.

Deny by default: a property, parameter or sub-component reaches the output only when it
is named below (with the reason) or in the profile's ``keep`` list; SUMMARY, DESCRIPTION
and LOCATION are rebuilt from the profile's templates out of scrubbed text, so a link,
an e-mail address or an internal note cannot ride along inside them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import NamedTuple

from icalproxy.config.model import CustomFields, Profile, StatusCatalogue
from icalproxy.core import values
from icalproxy.core.facts import EventFacts, field_property
from icalproxy.core.lines import (
    MAX_OCTETS,
    ContentLine,
    escape_text,
    fold,
    format_params,
    parse_params,
    unescape_text,
)
from icalproxy.core.parse import DATE_PROPS, repair_date
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
_WHEN_B = values.WHEN_SYNTAX.pattern.removesuffix(r"\Z").encode()
_DATE_B = values.DATE_SYNTAX.pattern.removesuffix(r"\Z").encode()
_TZID_B = rb";TZID=[^\";:,\r\n]+"
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


@lru_cache(maxsize=32)
def _combined_pattern(names: frozenset[str]) -> re.Pattern[bytes]:
    """One pass over an event: group 1 a simple valid line, else groups 2–3 name and rest."""
    alternation = b"|".join(re.escape(n.encode()) for n in sorted(names, key=len, reverse=True))
    return re.compile(
        rb"\n(?:(" + _SIMPLE + rb")|(" + alternation + rb")((?:\r?\n[ \t])*[;:][^\n]*(?:\n[ \t][^\n]*)*))"
    )


_NAME_OF = {name.encode(): name for name in (*BASE_KEEP, "CLASS", "SUMMARY", "DESCRIPTION", "LOCATION")}
_WHEN = re.compile(values.WHEN_SYNTAX.pattern.encode())
_DATE = re.compile(values.DATE_SYNTAX.pattern.encode())
_DURATION_BYTES = re.compile(rb"[+-]?P(?:\d+W)?(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+S)?)?\Z")
# Checks of simple kept lines (no parameters, no fold, ASCII), copied through as bytes.
_FAST_CHECKS: dict[str, Callable[[bytes], bool]] = {
    "DTSTART": lambda value: _WHEN.match(value) is not None,
    "DTEND": lambda value: _WHEN.match(value) is not None,
    "DTSTAMP": lambda value: _WHEN.match(value) is not None,
    "LAST-MODIFIED": lambda value: _WHEN.match(value) is not None,
    "RECURRENCE-ID": lambda value: _WHEN.match(value) is not None,
    "EXDATE": lambda value: all(_WHEN.match(part) for part in value.split(b",")),
    "RDATE": lambda value: all(_WHEN.match(part) for part in value.split(b",")),
    "SEQUENCE": bytes.isdigit,
    "STATUS": lambda value: value.strip().upper() in (b"TENTATIVE", b"CONFIRMED", b"CANCELLED"),
    "TRANSP": lambda value: value.strip().upper() in (b"OPAQUE", b"TRANSPARENT"),
    "RRULE": lambda value: values.valid_rrule(value.decode("ascii")),
    "DURATION": lambda value: _DURATION_BYTES.match(value) is not None and len(value) > 2,
}
_HAS_AT = re.compile("@")
_HAS_LINK = re.compile(r"(?i)://|www\.|mailto:|tel:|callto:|sips?:|\w\.[a-z]{2}")
_HAS_DIGITS = re.compile(r"\d\D?\d\D?\d")
_SPACES = re.compile(r"[ \t]{2,}")
_BARE_LABEL = re.compile(r"[^:]{0,40}:\W*\Z")


class RedactedEvent(NamedTuple):
    chunk: bytes  # folded CRLF lines, BEGIN:VEVENT … END:VEVENT
    tzids: frozenset[str]


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
        # Read in one pass per event: what is kept, and what the templates are made of.
        # DESCRIPTION is long and folded: read it only when a template shows it (a status
        # kept as a "Status: …" line in it is looked up apart, for the events that need it).
        inputs = {"SUMMARY", field_property(custom, catalogue.field)}
        if self.description is not None and "description" in self.description.names:
            inputs.add("DESCRIPTION")
        if self.location is not None:
            inputs.add("LOCATION")
        self.template_inputs = frozenset(inputs)
        self.inputs_only = self.template_inputs - set(BASE_KEEP) - self.keep
        self.wanted = (frozenset(BASE_KEEP) | self.keep | {"CLASS"} | self.template_inputs) - {
            "UID"
        }  # the UID comes from the series
        self.pattern = _combined_pattern(self.wanted)
        # (pattern, cheap test that must find something before the pattern can)
        scrubbers: list[tuple[re.Pattern[str], re.Pattern[str] | None]] = []
        if profile.scrub.emails:
            scrubbers.append((_EMAIL, _HAS_AT))  # before links, so that user@host.com goes whole
        if profile.scrub.links:
            scrubbers.append((_LINK, _HAS_LINK))
        if profile.scrub.phones:
            scrubbers.append((_PHONE, _HAS_DIGITS))
        self.scrubbers = tuple(scrubbers)

    def scrub(self, text: str) -> str:
        """Remove links, e-mails (and phones) per profile; a line left as a bare label goes too."""
        if not text or not any(hint is None or hint.search(text) for _, hint in self.scrubbers):
            return text.strip()
        kept = []
        for line in text.split("\n"):
            cleaned = line
            for pattern, hint in self.scrubbers:
                if hint is None or hint.search(cleaned):
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
        try:
            return self._redact(facts, uid, standalone, extra_exdates, floating)
        finally:
            facts.release()

    def _redact(
        self,
        facts: EventFacts,
        uid: str,
        standalone: bool,
        extra_exdates: Iterable[ContentLine],
        floating: frozenset[str],
    ) -> RedactedEvent | None:
        profile = self.profile
        component = facts.component
        busy = False
        out = [b"BEGIN:VEVENT\r\n", fold("UID:" + escape_uid(uid))]
        tzids: set[str] = set()
        seen: set[str] = set()
        inputs: list[ContentLine] = []
        for simple, raw_name, rest in component.scan(self.pattern):
            if simple is not None:  # already valid: copied through as it is
                head = simple[: simple.find(b":")]
                name = _NAME_OF[head.split(b";", 1)[0]]
                if name in seen or (standalone and name in STANDALONE_DROP):
                    continue
                tzid = None
                if not head.endswith(b"DATE") and b";TZID=" in head:
                    tzid = head[head.find(b"=") + 1 :].decode("utf-8", "replace")
                if tzid not in floating:
                    if tzid:
                        tzids.add(tzid)
                    if name in SINGLE:
                        seen.update(_EXCLUSIVE.get(name, (name,)))
                    out.append(simple + b"\r\n" if len(simple) <= MAX_OCTETS else fold(simple.decode()))
                    continue
                # A floating TZID: the slow path below drops the parameter.
                raw_name, rest = head.split(b";", 1)[0], simple[len(head.split(b";", 1)[0]) :]  # noqa: PLW2901
            name = _NAME_OF.get(raw_name) or raw_name.decode("ascii", "replace")
            if name in self.inputs_only:
                line = component.content(raw_name, rest)
                if line is not None:
                    inputs.append(line)
                continue
            if name in seen or (standalone and name in STANDALONE_DROP):
                continue
            if name == "CLASS" and name not in self.keep:
                if rest.rstrip(b"\r").endswith((b":PRIVATE", b":CONFIDENTIAL", b":private")):
                    if profile.private_events == "drop":
                        return None
                    busy = profile.private_events == "busy"
                continue
            if name in KEPT_PARAMS and rest[:1] == b";" and b"\n" not in rest and b'"' not in rest:
                fast = _time_with_params(name, rest, floating)
                if fast is not None:
                    line, tzid = fast
                    if line:
                        if tzid:
                            tzids.add(tzid)
                        if name in SINGLE:
                            seen.update(_EXCLUSIVE.get(name, (name,)))
                        out.append(line)
                    continue
            check = _FAST_CHECKS.get(name)
            if check is not None and rest[:1] == b":" and b"\n" not in rest:
                value = rest[1:].strip()
                if value.isascii() and len(value) + len(raw_name) < MAX_OCTETS:
                    if check(value):
                        if name in SINGLE:
                            seen.update(_EXCLUSIVE.get(name, (name,)))
                        out.append(raw_name + b":" + value + b"\r\n")
                    continue
            prop = component.content(raw_name, rest)
            if prop is None:
                continue
            if name == "CLASS":
                if prop.value.strip().upper() in ("PRIVATE", "CONFIDENTIAL"):
                    if profile.private_events == "drop":
                        return None
                    busy = profile.private_events == "busy"
                if name not in self.keep:
                    continue
            if name in DATE_PROPS:
                prop = repair_date(prop)
            if not _value_ok(prop):
                continue
            if name in SINGLE:
                seen.update(_EXCLUSIVE.get(name, (name,)))
            if name in self.keep and name not in BASE_KEEP:
                text = escape_text(self.scrub(unescape_text(prop.value)))
                out.append(fold(f"{name}:{text}"))
            else:
                out.append(fold(_render_prop(prop, tzids, floating)))
        for exdate in extra_exdates:
            out.append(fold(_render_prop(repair_date(exdate), tzids, floating)))
        if "DTSTART" not in seen:
            return None  # never publish an event without its time
        if "DTSTAMP" not in seen:
            out.insert(2, fold("DTSTAMP:" + _fallback_dtstamp(facts)))
        facts.preload(inputs, self.template_inputs)
        out.extend(fold(line) for line in self._templated(facts, busy))
        out.append(b"END:VEVENT\r\n")
        return RedactedEvent(b"".join(out), _shared_tzids(tzids))

    def _templated(self, facts: EventFacts, busy: bool) -> list[str]:
        if busy:
            summary = self.busy_summary.render({})
            return [f"SUMMARY:{escape_text(summary)}"] if summary else []
        profile = self.profile
        fields: dict[str, str] = {"summary": self.scrub(facts.summary)}
        if profile.show_status:
            status = client_status(facts.field(self.catalogue.field), self.catalogue)
            if status is not None:  # catalogue text is written by ops for clients: no scrub
                fields["status"] = status.label
                fields["status_description"] = status.description
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
            names = [name for name in names if any(p.fullmatch(name) for p in profile.client_facing)]
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


_PARAMS_RENDERED: dict[tuple[str, bytes, frozenset[str]], tuple[bytes, str | None, bool]] = {}


def _time_with_params(name: str, rest: bytes, floating: frozenset[str]) -> tuple[bytes, str | None] | None:
    """``DTSTART;TZID=…:value`` without quotes or folds, as bytes; None to take the slow path.

    Returns (b"", None) for a line to drop. Kept parameters are rendered once per distinct
    parameter text (a feed repeats a handful of them thousands of times)."""
    colon = rest.find(b":")
    value = rest[colon + 1 :].strip()
    if colon < 0 or not value.isascii():
        return None
    key = (name, rest[:colon], floating)
    rendered = _PARAMS_RENDERED.get(key)
    if rendered is None:
        if len(_PARAMS_RENDERED) > 4096:
            _PARAMS_RENDERED.clear()
        params = rest[:colon].decode("utf-8", "replace")
        probe = ContentLine(name, params, "", 0)
        tzids: set[str] = set()
        prefix = _render_prop(probe, tzids, floating)[:-1].encode()
        value_type = (probe.param("VALUE") or "").upper()
        rendered = _PARAMS_RENDERED[key] = (prefix, next(iter(tzids), None), value_type == "DATE")
    prefix, tzid, is_date = rendered
    if is_date:
        if b"T" in value:
            return None  # VALUE=DATE with a time: repaired on the slow path
        ok = all(_DATE.match(part) for part in value.split(b","))
    else:
        ok = all(_WHEN.match(part) for part in value.split(b","))
    if not ok or (name not in ("EXDATE", "RDATE") and b"," in value):
        return b"", None
    line = prefix + b":" + value
    return (line + b"\r\n" if len(line) <= MAX_OCTETS else fold(line.decode())), tzid


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
    kept = [
        (key, vals)
        for key, vals in parse_params(prop.params)
        if key in allowed and vals and vals[0] and not (key == "TZID" and vals[0] in floating)
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
