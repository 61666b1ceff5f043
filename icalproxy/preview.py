"""What one client sees: upcoming occurrences of the rendered feed, beside the internal event.

Presentation only. The agenda is read back from the rendered bytes with icalendar and
recurring-ical-events (independent parsers), so it shows what a calendar app will show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import icalendar
import recurring_ical_events

from icalproxy.core.conflicts import FeedConflicts, local_text, zone_named
from icalproxy.core.parse import Component, ParsedSource

# Shown in the "removed" list by name only: their values are the very thing withheld.
_SKIP_COMPARE = frozenset({"BEGIN", "END"})


@dataclass(frozen=True, slots=True)
class Occurrence:
    start: date | datetime
    end: date | datetime | None
    summary: str
    description: str
    uid: str
    recurrence: str


MAX_SHOWN = 500  # occurrences listed; a FREQ=SECONDLY rule would otherwise print millions


def occurrences(body: bytes, start: datetime, days: int, limit: int = MAX_SHOWN) -> list[Occurrence]:
    """The first ``limit`` occurrences in the window, in time order (one more tells that the
    list was cut): read lazily, so a rule with millions of occurrences costs only those."""
    calendar = icalendar.Calendar.from_ical(body)
    found = []
    pages = recurring_ical_events.of(calendar).paginate(limit + 1, start, start + timedelta(days=days))
    for event in next(iter(pages), ()):
        rid = event.get("RECURRENCE-ID")
        found.append(
            Occurrence(
                start=event.decoded("DTSTART"),
                end=event.decoded("DTEND") if "DTEND" in event else None,
                summary=str(event.get("SUMMARY", "")),
                description=str(event.get("DESCRIPTION", "")),
                uid=str(event.get("UID", "")),
                recurrence=rid.to_ical().decode() if rid is not None else "",
            )
        )
    found.sort(key=lambda item: (_sort_key(item.start), item.uid))
    return found


def _sort_key(moment: date | datetime) -> datetime:
    if isinstance(moment, datetime):
        return (
            moment.replace(tzinfo=None) if moment.tzinfo is None else moment.astimezone().replace(tzinfo=None)
        )
    return datetime(moment.year, moment.month, moment.day)


def _when(occurrence: Occurrence) -> str:
    start, end = occurrence.start, occurrence.end
    if not isinstance(start, datetime):
        last = (end - timedelta(days=1)) if isinstance(end, date) and end > start else start
        return f"{start:%a %Y-%m-%d} (all day)" + (f" to {last:%a %Y-%m-%d}" if last != start else "")
    zone = f" {start.tzinfo}" if start.tzinfo is not None else " (floating)"
    until = f"–{end:%H:%M}" if isinstance(end, datetime) else ""
    return f"{start:%a %Y-%m-%d %H:%M}{until}{zone}"


def internal_component(
    uid: str, recurrence: str, sources: dict[str, ParsedSource]
) -> tuple[str, Component] | None:
    """The internal VEVENT behind an output event (standalone overrides included)."""
    for name, parsed in sources.items():
        base_uid, _, derived_rid = uid.partition("-R")
        for candidate_uid, rid in ((uid, recurrence), (base_uid, derived_rid)):
            series = parsed.series.get(candidate_uid)
            if series is None:
                continue
            key = rid.split(":")[-1] if rid else ""
            if key and key in series.overrides:
                return name, series.overrides[key]
            if series.master is not None:
                return name, series.master
    return None


def removed_properties(internal: Component, shown: set[str]) -> list[str]:
    names = [prop.name for prop in internal.props if prop.name not in shown]
    names += [child.name for child in internal.children]
    return sorted(set(names) - _SKIP_COMPARE)


Marks = dict[tuple[str, datetime], list[str]]  # (UID, start in UTC) → what it conflicts with


def conflict_marks(report: FeedConflicts) -> tuple[Marks, tzinfo]:
    """For each conflicting occurrence: one line per conflict it is part of."""
    zone = zone_named(report.zone) or UTC
    marks: Marks = {}
    for conflict in report.conflicts:
        for job in conflict.jobs:
            others = [other for other in conflict.jobs if other is not job]
            text = f"!! CONFLICT {conflict.kind}"
            if others:
                other = others[0]
                text += f" with {other.summary!r} {local_text(other, zone)}"
            marks.setdefault((job.uid, job.start), []).append(f"{text} [id {conflict.id}]")
    return marks, zone


def _utc_key(moment: date | datetime, zone: tzinfo) -> datetime:
    if isinstance(moment, datetime):
        return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
    midnight = datetime(moment.year, moment.month, moment.day, tzinfo=zone)
    return midnight.astimezone(UTC).replace(tzinfo=None)


def agenda(
    feed: str,
    title: str,
    profile: str,
    body: bytes,
    sources: dict[str, ParsedSource],
    now: datetime,
    days: int,
    conflicts: FeedConflicts | None = None,
) -> list[str]:
    lines = [
        f"Feed {feed!r} — {title} (profile {profile})",
        f"Occurrences from {now:%Y-%m-%d} for {days} days, as a subscriber's calendar shows them:",
        "",
    ]
    shown_by_uid = _shown_properties(body)
    items = occurrences(body, now, days)
    marks, zone = conflict_marks(conflicts) if conflicts is not None else ({}, UTC)
    if not items:
        lines.append("  (nothing in this window)")
    for item in items[:MAX_SHOWN]:
        lines.append(f"{_when(item)}  {item.summary}")
        lines.extend(f"    {mark}" for mark in marks.get((item.uid, _utc_key(item.start, zone)), ()))
        if item.description:
            lines.extend(f"    | {text}" for text in item.description.splitlines())
        found = internal_component(item.uid, item.recurrence, sources)
        if found is None:
            continue
        source, internal = found
        summary = internal.first("SUMMARY")
        internal_summary = summary.text() if summary is not None else ""
        lines.append(f"    internal: {internal_summary!r} ({source}, line {internal.line}, UID {item.uid})")
        removed = removed_properties(internal, shown_by_uid.get(item.uid, set()))
        if removed:
            lines.append(f"    removed: {', '.join(removed)}")
    if len(items) > MAX_SHOWN:
        lines.append(f"… more occurrences in this window; only the first {MAX_SHOWN} are shown")
    if conflicts is not None:
        lines += ["", f"{len(conflicts.conflicts)} conflict(s) in the conflicts window ({conflicts.zone})"]
    return lines


def _shown_properties(body: bytes) -> dict[str, set[str]]:
    shown: dict[str, set[str]] = {}
    calendar: Any = icalendar.Calendar.from_ical(body)
    for event in calendar.walk("VEVENT"):
        shown.setdefault(str(event.get("UID", "")), set()).update(event.keys())
    return shown
