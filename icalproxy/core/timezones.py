"""Time zones of a run: what each source TZID means, and the VTIMEZONE a feed emits for it.

Every TZID that a kept event references gets a VTIMEZONE (clients guess or float the time
otherwise, Outlook worst of all). A TZID is published only as a canonical IANA name (also
when the source wrote a vendor path such as ``/mozilla.org/…/Europe/Berlin``, a Windows name
such as ``W. Europe Standard Time``, or named the zone in X-LIC-LOCATION) or, for a zone the
tz database does not know, as a name derived from its definition: never as the source's
text. A VTIMEZONE is written from validated data only: for a zone the tz database knows,
tzdata's; else a source definition every line of which parses (offsets, local start
times, recurrence, abbreviations). A TZID that neither can describe is dropped and its
times float; the report says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from functools import lru_cache

from icalproxy.core import typed
from icalproxy.core.lines import fold, parse_params
from icalproxy.core.parse import Component
from icalproxy.core.tzdata_zones import tzdata_timezone

_RULE_REQUIRED = ("DTSTART", "TZOFFSETFROM", "TZOFFSETTO")
_RULE_IGNORED = frozenset({"COMMENT"})
UTC_TIMEZONE = b"".join(
    fold(line)
    for line in (
        "BEGIN:VTIMEZONE",
        "TZID:UTC",
        "BEGIN:STANDARD",
        "DTSTART:19700101T000000",
        "TZOFFSETFROM:+0000",
        "TZOFFSETTO:+0000",
        "TZNAME:UTC",
        "END:STANDARD",
        "END:VTIMEZONE",
    )
)


class ZoneTable:
    """Per run: source TZID → published name (or None: floating), and the definitions."""

    def __init__(self, timezones: Mapping[str, Mapping[str, Component]]) -> None:
        self._sources = timezones  # source name → TZID → VTIMEZONE component
        self._resolved: dict[tuple[str, str], str | None] = {}
        self._definitions: dict[str, bytes] = {}

    def resolve(self, source: str, raw: str) -> str | None:
        key = (source, raw)
        if key in self._resolved:
            return self._resolved[key]
        name = self._resolve(source, raw)
        self._resolved[key] = name
        return name

    def _resolve(self, source: str, raw: str) -> str | None:
        tzid = raw.strip()
        component = self._sources.get(source, {}).get(tzid)
        validated = validated_rules(component) if component is not None else None
        iana = typed.iana_zone(tzid)
        if iana is None and component is not None:
            location = component.first("X-LIC-LOCATION")
            iana = typed.iana_zone(location.value) if location is not None else None
        if iana is not None:
            if iana not in self._definitions:
                # A known zone is written from the tz database, which is right where a
                # source's copy may be stale or partial; the validated copy only if not.
                chunk = builtin_timezone(iana) or (_render(iana, validated) if validated else None)
                if chunk is None:
                    return None
                self._definitions[iana] = chunk
            return iana
        if not validated:
            return None
        body = "\n".join(validated)
        import hashlib  # noqa: PLC0415  (imported when first needed: start-up)

        name = "icalproxy-zone-" + hashlib.sha256(body.encode()).hexdigest()[:16]
        self._definitions.setdefault(name, _render(name, validated))
        return name

    def definition(self, name: str) -> bytes | None:
        return self._definitions.get(name)


def validated_rules(component: Component) -> list[str] | None:
    """A VTIMEZONE's STANDARD/DAYLIGHT parts as validated, canonical lines; None when any
    line of a part does not parse (a partial definition would give wrong offsets) or no part
    is left."""
    lines: list[str] = []  # the zone's own properties define nothing: never copied
    rules = 0
    for child in component.children:
        if child.name not in ("STANDARD", "DAYLIGHT"):
            continue
        rule = _validated_rule(child)
        if rule is None:
            return None
        rules += 1
        lines.append(f"BEGIN:{child.name}")
        lines.extend(rule)
        lines.append(f"END:{child.name}")
    return lines if rules else None


def _validated_rule(child: Component) -> list[str] | None:
    found: dict[str, str] = {}
    extra: list[str] = []
    for prop in child.props:
        name = prop.name
        if name in _RULE_IGNORED or name.startswith("X-"):
            continue
        if name == "DTSTART":
            when = typed.parse_when(prop.value)
            if when is None or when.is_utc or "DTSTART" in found:
                return None
            # A date start (VALUE=DATE) means its midnight: written as the local date-time
            # RFC 5545 requires, which every reader accepts.
            found[name] = f"DTSTART:{when.text if not when.is_date else when.text + 'T000000'}"
        elif name in ("TZOFFSETFROM", "TZOFFSETTO"):
            offset = typed.parse_utc_offset(prop.value)
            if offset is None or name in found:
                return None
            found[name] = f"{name}:{offset}"
        elif name == "TZNAME":
            abbreviation = typed.parse_tzname(prop.value)
            if abbreviation is not None and name not in found:
                found[name] = f"TZNAME:{abbreviation}"
        elif name == "RRULE":
            recur = typed.parse_recur(prop.value)
            if recur is None or recur.dropped:
                return None
            until = recur.parts.get("UNTIL")
            if until is not None:  # in a VTIMEZONE, UNTIL is UTC (RFC 5545 §3.6.5)
                recur = recur.with_until(typed.When(until).utc().text)
            extra.append(f"RRULE:{recur.text}")
        elif name == "RDATE":
            rdate = _rdate(prop.params, prop.value)
            if rdate is None:
                return None
            extra.append(rdate)
        else:
            return None
    if any(name not in found for name in _RULE_REQUIRED):
        return None
    order = ("DTSTART", "TZOFFSETFROM", "TZOFFSETTO", "TZNAME")
    return [found[name] for name in order if name in found] + extra


def _rdate(params: str, value: str) -> str | None:
    """An RDATE of a time-zone part: local date-times. A period (VALUE=PERIOD) is written as
    its start, the onset it names: readers drop a period RDATE without VALUE=PERIOD
    (libical), and reject one with it (icalendar); every reader takes a date-time."""
    value_type = None
    for key, values in parse_params(params) if params else ():
        if key == "VALUE":
            value_type = (values[0] if values else "").strip().upper()
        else:
            return None
    items = []
    for item in value.split(","):
        if value_type == "PERIOD":
            period = typed.parse_period(item)
            if period is None or period.start.is_utc:
                return None
            items.append(period.start.text)
        else:
            when = typed.parse_when(item)
            if when is None or when.is_utc:
                return None
            items.append(when.text if not when.is_date else when.text + "T000000")
    if not items:
        return None
    return "RDATE:" + ",".join(items)


def _render(tzid: str, rules: list[str]) -> bytes:
    return b"".join(fold(line) for line in ["BEGIN:VTIMEZONE", f"TZID:{tzid}", *rules, "END:VTIMEZONE"])


@lru_cache(maxsize=256)
def builtin_timezone(tzid: str) -> bytes | None:
    """A VTIMEZONE for an IANA name from the tz database (its current rule, see
    tzdata_zones.py; else icalendar's transitions 1970–2038); None if unknown."""
    if typed.iana_zone(tzid) != tzid:
        return None
    chunk = tzdata_timezone(tzid)
    if chunk is not None:
        return chunk
    import icalendar  # noqa: PLC0415  (rare path; the import is slow)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = icalendar.Timezone.from_tzid(tzid).to_ical()
    except Exception:  # noqa: BLE001 - any failure of the library means "not describable"
        return None
    unfolded = data.replace(b"\r\n ", b"").decode("utf-8").split("\r\n")
    lines = [
        f"TZID:{tzid}" if line.startswith("TZID:") else line
        for line in unfolded
        if line and not line.startswith(("COMMENT", "X-", "LAST-MODIFIED", "TZURL"))
    ]
    return b"".join(fold(line) for line in lines)
