"""VTIMEZONE output: copy a source definition through an allowlist, or build one from tzdata.

Every TZID that a kept event references gets a VTIMEZONE (clients guess or float the time
otherwise, Outlook worst of all). A TZID with no usable definition in the source and no
entry in the IANA database cannot be described: its times are passed on as floating.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

from icalproxy.core.lines import fold
from icalproxy.core.parse import Component

# Kept in VTIMEZONE and its STANDARD/DAYLIGHT parts: what defines the offsets.
_ZONE_KEEP = frozenset({"TZID", "LAST-MODIFIED", "X-LIC-LOCATION"})
_RULE_KEEP = frozenset({"DTSTART", "TZOFFSETFROM", "TZOFFSETTO", "TZNAME", "RRULE", "RDATE"})
_RULE_REQUIRED = ("DTSTART", "TZOFFSETFROM", "TZOFFSETTO")


def render_timezone(component: Component, tzid: str) -> bytes | None:
    """Source VTIMEZONE → folded bytes under the given TZID; None when it defines no offsets."""
    lines = ["BEGIN:VTIMEZONE", f"TZID:{tzid}"]
    lines.extend(
        f"{prop.name}:{prop.value}"
        for prop in component.props
        if prop.name in _ZONE_KEEP and prop.name != "TZID" and prop.value.strip()
    )
    rules = 0
    for child in component.children:
        if child.name not in ("STANDARD", "DAYLIGHT"):
            continue
        if any(child.first(name) is None for name in _RULE_REQUIRED):
            continue
        rules += 1
        lines.append(f"BEGIN:{child.name}")
        lines.extend(f"{prop.name}:{prop.value}" for prop in child.props if prop.name in _RULE_KEEP)
        lines.append(f"END:{child.name}")
    if not rules:
        return None
    lines.append("END:VTIMEZONE")
    return b"".join(fold(line) for line in lines)


@lru_cache(maxsize=256)
def builtin_timezone(tzid: str) -> bytes | None:
    """A VTIMEZONE for an IANA name (1970–2038), from the tz database; None if unknown."""
    if not tzid or len(tzid) > 64 or ("/" not in tzid and tzid not in ("UTC", "GMT")):
        return None
    import icalendar  # noqa: PLC0415  (rare path; the import is slow)

    try:
        with warnings.catch_warnings():
            # "/vendor/…/Europe/Berlin" is read as Europe/Berlin, as clients do.
            warnings.simplefilter("ignore")
            data = icalendar.Timezone.from_tzid(tzid).to_ical()
    except Exception:  # noqa: BLE001 - any failure of the library means "not describable"
        return None
    unfolded = data.replace(b"\r\n ", b"").decode("utf-8").split("\r\n")
    lines = [
        f"TZID:{tzid}" if line.startswith("TZID:") else line
        for line in unfolded
        if line and not line.startswith("COMMENT")
    ]
    return b"".join(fold(line) for line in lines)
