"""Conflicts in a technician's feed: double bookings, too little travel time, jobs off shift.

Read from the rendered feed bytes, so every time is the one the technician's phone shows:
routing (moved occurrences as EXDATEs, standalone overrides), the feed's own VTIMEZONEs and
the profile's STATUS/TRANSP are already applied. Pure: bytes, rules and ``now`` in.

1. ``busy_jobs``: every busy occurrence overlapping the window. Recurrences are expanded in
   wall time of their zone (``values.rrule_starts``, bounded like every expansion), EXDATEs
   and overridden instances removed, overrides added as their own jobs; CANCELLED and
   TRANSPARENT are not busy; all-day jobs count only with ``all_day: count``.
2. ``sweep``: sorted by start, each job is compared only with the jobs still "open" (ended less
   than ``travel_gap`` before it starts), kept in a heap by end: O(n log n + pairs found).
   ``all_pairs`` is the plain O(n²) reference; both use ``pair_kind``, so they agree exactly.
3. ``outside_shift``: timed jobs not inside that weekday's working hours (local time).

A conflict's id hashes the feed, the kind and both jobs' UIDs and occurrence starts: it stays
the same from run to run while the conflict exists, which alerts rely on.
"""

from __future__ import annotations

import hashlib
import heapq
import io
import operator
import re
import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

from icalproxy.config.model import ConflictRules
from icalproxy.core import values
from icalproxy.core.lines import ContentLine, unescape_text
from icalproxy.core.parse import ParsedSource

Kind = Literal["overlap", "travel", "outside_shift"]
_DAY = timedelta(days=1)
KINDS: tuple[Kind, ...] = ("overlap", "travel", "outside_shift")
_NEEDED = frozenset(
    {
        "UID",
        "DTSTART",
        "DTEND",
        "DURATION",
        "RRULE",
        "RDATE",
        "EXDATE",
        "RECURRENCE-ID",
        "STATUS",
        "TRANSP",
        "SUMMARY",
        "LOCATION",
    }
)


@dataclass(frozen=True, slots=True)
class Job:
    """One busy occurrence as the technician sees it. Times are UTC (naive)."""

    uid: str
    start: datetime
    end: datetime
    all_day: bool
    summary: str
    location: str
    line: int  # of its VEVENT in the rendered feed
    recurrence: str = ""  # RECURRENCE-ID value when the occurrence is an override
    place: str = ""  # LOCATION folded for comparison ("" = unknown)

    @property
    def at(self) -> str:
        """The occurrence start (UTC) as the id writes it: ``20261202T080000Z``."""
        return f"{self.start:%Y%m%dT%H%M%SZ}"


@dataclass(frozen=True, slots=True)
class Conflict:
    id: str
    feed: str
    kind: Kind
    first: Job
    second: Job | None  # None for outside_shift

    @property
    def jobs(self) -> tuple[Job, ...]:
        return (self.first,) if self.second is None else (self.first, self.second)

    @property
    def end(self) -> datetime:
        """When the last job of the conflict ends: after that it can only expire."""
        return max(job.end for job in self.jobs)


@dataclass(slots=True)
class FeedConflicts:
    feed: str
    zone: str  # the local zone used for shifts, all-day and floating times
    conflicts: list[Conflict] = field(default_factory=list)
    jobs: int = 0
    notes: list[str] = field(default_factory=list)
    window: tuple[datetime, datetime] = (datetime.min, datetime.max)

    def by_kind(self) -> dict[str, int]:
        counts = Counter(conflict.kind for conflict in self.conflicts)
        return {kind: counts.get(kind, 0) for kind in KINDS}


# ------------------------------------------------------------------ entry point


def find_conflicts(
    feed: str,
    body: bytes,
    rules: ConflictRules,
    now: datetime,
    budget: values.RecurrenceBudget | None = None,
) -> FeedConflicts:
    """Every conflict in one rendered feed, sorted by time."""
    jobs, report = busy_jobs(feed, body, rules, now, budget)
    found = [_conflict(feed, kind, a, b) for kind, a, b in sweep(jobs, rules.travel_gap)]
    if rules.shift is not None:
        zone = zone_named(report.zone) or UTC
        found.extend(_conflict(feed, "outside_shift", job, None) for job in outside_shift(jobs, rules, zone))
    found.sort(key=lambda c: (c.first.start, c.kind, c.id))
    report.conflicts = found
    return report


def _conflict(feed: str, kind: Kind, first: Job, second: Job | None) -> Conflict:
    if second is not None and _order(second) < _order(first):
        first, second = second, first
    parts = [feed, kind, first.uid, first.at]
    if second is not None:
        parts += [second.uid, second.at]
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]
    return Conflict(digest, feed, kind, first, second)


_ORDER = operator.attrgetter("start", "end", "uid", "recurrence")


def _order(job: Job) -> tuple[datetime, datetime, str, str]:
    key: tuple[datetime, datetime, str, str] = _ORDER(job)
    return key


# ------------------------------------------------------------------ the two detectors


def pair_kind(a: Job, b: Job, travel_gap: timedelta | None) -> Kind | None:
    """What two jobs are to each other: overlapping, too close at different places, or fine."""
    if a.start < b.end and b.start < a.end:
        return "overlap"
    if travel_gap is not None and a.place and b.place and a.place != b.place:
        space = b.start - a.end if a.end <= b.start else a.start - b.end
        if space < travel_gap:
            return "travel"
    return None


def _same(a: Job, b: Job) -> bool:
    return a.uid == b.uid and a.start == b.start  # one occurrence listed twice is no conflict


def sweep(jobs: Iterable[Job], travel_gap: timedelta | None) -> list[tuple[Kind, Job, Job]]:
    """Sort + sweep: a job meets only the jobs that end less than ``travel_gap`` before it."""
    slack = travel_gap or timedelta()
    found: list[tuple[Kind, Job, Job]] = []
    open_jobs: list[tuple[datetime, int, Job]] = []  # heap by end + slack: the first to close on top
    push, pop = heapq.heappush, heapq.heappop
    for number, job in enumerate(sorted(jobs, key=_ORDER)):
        start = job.start
        while open_jobs and open_jobs[0][0] <= start:
            pop(open_jobs)
        for _, _, other in open_jobs:
            kind = pair_kind(other, job, travel_gap)
            if kind is not None and not _same(other, job):
                found.append((kind, other, job))
        push(open_jobs, (job.end + slack, number, job))
    return found


def all_pairs(jobs: Iterable[Job], travel_gap: timedelta | None) -> list[tuple[Kind, Job, Job]]:
    """The straightforward reference: every pair once. For tests and the benchmark."""
    items = list(jobs)
    found: list[tuple[Kind, Job, Job]] = []
    for index, a in enumerate(items):
        for b in items[index + 1 :]:
            kind = pair_kind(a, b, travel_gap)
            if kind is not None and not _same(a, b):
                found.append((kind, a, b))
    return found


def outside_shift(jobs: Iterable[Job], rules: ConflictRules, zone: tzinfo) -> list[Job]:
    """Timed jobs that start before or end after that (local) weekday's working hours."""
    shift = rules.shift
    if shift is None:
        return []
    found = []
    for job in jobs:
        if job.all_day:
            continue
        start = zone.fromutc(job.start.replace(tzinfo=zone))
        hours = shift[start.weekday()]
        if hours is None or _seconds(start) < hours[0] * 60:
            found.append(job)
            continue
        end = zone.fromutc(job.end.replace(tzinfo=zone))
        if (end.date() - start.date()).days * 86400 + _seconds(end) > hours[1] * 60:
            found.append(job)
    return found


def _seconds(moment: datetime) -> int:
    """Seconds after local midnight."""
    return moment.hour * 3600 + moment.minute * 60 + moment.second


# ------------------------------------------------------------------ busy occurrences


class _Zones:
    """TZID → tzinfo: the tz database first, then the feed's own VTIMEZONE; None floats."""

    def __init__(self, definitions: Mapping[str, str]) -> None:
        self._definitions = definitions
        self._known: dict[str, tzinfo | None] = {}

    def get(self, tzid: str) -> tzinfo | None:
        if tzid not in self._known:
            self._known[tzid] = zone_named(tzid) or _from_vtimezone(self._definitions.get(tzid))
        return self._known[tzid]


def zone_named(name: str) -> tzinfo | None:
    if not name or len(name) > 64:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def _from_vtimezone(text: str | None) -> tzinfo | None:
    if text is None:
        return None
    from dateutil import tz  # type: ignore[import-untyped]  # noqa: PLC0415

    try:
        zones = tz.tzical(io.StringIO(text))
        keys = zones.keys()
        found: tzinfo | None = zones.get(keys[0]) if keys else None
        return found
    except (ValueError, TypeError, IndexError, KeyError):
        return None


@dataclass(slots=True)
class _Event:
    line: int
    props: dict[str, ContentLine]
    rdates: list[ContentLine]
    exdates: list[ContentLine]


# The rendered feed is icalproxy's own output (CRLF, folded with one space, VTIMEZONEs before the
# events), so one regex pass over its unfolded text reads every property this module needs.
_VTIMEZONE = re.compile(rb"^BEGIN:VTIMEZONE\r?\n.*?^END:VTIMEZONE\r?$", re.MULTILINE | re.DOTALL)
_FOLD = re.compile(rb"\r?\n[ \t]")
_PROP = re.compile(
    "\n(UID|DT(?:START|END)|DURATION|R(?:RULE|ECURRENCE-ID)|STATUS|TRANSP|SUMMARY|LOCATION)"
    r'((?:;(?:"[^"]*"|[^";:\r\n])*)*):([^\r\n]*)'
)
_DATES = re.compile(r'\n(RDATE|EXDATE)((?:;(?:"[^"]*"|[^";:\r\n])*)*):([^\r\n]*)')
_TZID = re.compile(r"^TZID[^:\r\n]*:([^\r\n]*)", re.MULTILINE)


def read_feed(
    body: bytes, window: tuple[datetime, datetime] | None = None
) -> tuple[dict[str, list[_Event]], dict[str, str]]:
    """UID → its events (the master first, if any) and TZID → VTIMEZONE text, of a rendered feed.
    With a ``window``, single events that clearly lie outside it are not read at all."""
    starts: list[int] = []
    lines: list[int] = []
    count = 1
    found = body.find(b"\nBEGIN:VEVENT")
    while found >= 0:
        count += body.count(b"\n", starts[-1] if starts else 0, found + 1)
        starts.append(found + 1)
        lines.append(count)
        found = body.find(b"\nBEGIN:VEVENT", found + 13)
    if not starts:
        return {}, {}
    zones = {}
    for match in _VTIMEZONE.finditer(body, 0, starts[0]):
        zone_text = _FOLD.sub(b"", match[0]).decode("utf-8", "replace")
        tzid = _TZID.search(zone_text)
        if tzid is not None:
            zones[tzid[1].strip()] = zone_text
    unfolded = body[starts[0] :].replace(b"\r\n ", b"").replace(b"\r\n\t", b"").replace(b"\n ", b"")
    chunks = unfolded.decode("utf-8", "replace").split("\nBEGIN:VEVENT")
    chunks[0] = chunks[0].removeprefix("BEGIN:VEVENT")
    series: dict[str, list[_Event]] = {}
    for line, chunk in zip(lines, chunks, strict=False):
        if window is not None and _clearly_outside(chunk, window):
            continue
        props = {name: ContentLine(name, params, value, line) for name, params, value in _PROP.findall(chunk)}
        rdates: list[ContentLine] = []
        exdates: list[ContentLine] = []
        if "\nRDATE" in chunk or "\nEXDATE" in chunk:
            for name, params, value in _DATES.findall(chunk):
                (rdates if name == "RDATE" else exdates).append(ContentLine(name, params, value, line))
        _add(series, _Event(line, props, rdates, exdates))
    return series, zones


_MARGIN = timedelta(days=2)  # wall time is within a day of UTC; one more for luck


def _clearly_outside(chunk: str, window: tuple[datetime, datetime]) -> bool:
    """A single event (no recurrence, not an override) whose wall-time DTSTART is days after the
    window, or whose DTEND is days before it. Anything unclear is read in full."""
    if "\nRRULE" in chunk or "\nRDATE" in chunk or "\nRECURRENCE-ID" in chunk:
        return False
    start = _value_of(chunk, "\nDTSTART")
    if start is not None and start > window[1] + _MARGIN:
        return True
    end = _value_of(chunk, "\nDTEND")
    return end is not None and end < window[0] - _MARGIN


def _value_of(chunk: str, name: str) -> datetime | None:
    found = chunk.find(name)
    if found < 0:
        return None
    colon = chunk.find(":", found)
    end = chunk.find("\r", colon)
    if colon < 0 or '"' in chunk[found:colon]:
        return None
    return _when(chunk[colon + 1 : end if end >= 0 else None].strip())


def _add(series: dict[str, list[_Event]], event: _Event) -> None:
    uid = event.props.get("UID")
    if uid is None:
        return
    events = series.setdefault(uid.value, [])
    if "RECURRENCE-ID" in event.props or (events and "RECURRENCE-ID" not in events[0].props):
        events.append(event)
    else:
        events.insert(0, event)


class _Clock:
    """Reads DATE / DATE-TIME values of one feed into UTC, in the feed's local zone when floating."""

    def __init__(self, zones: _Zones, local: tzinfo) -> None:
        self.zones = zones
        self.local = local

    def zone_of(self, prop: ContentLine) -> tzinfo | None:
        """The zone of a value: UTC for ``…Z``, its TZID's, else the local zone."""
        if prop.value.rstrip().upper().endswith("Z"):
            return UTC
        tzid = prop.param("TZID")
        return (self.zones.get(tzid) if tzid else None) or self.local

    def utc(self, wall: datetime, zone: tzinfo | None) -> datetime:
        if zone is UTC or zone is None:
            return wall
        offset = zone.utcoffset(wall)  # the wall time read in the zone (the earlier one when doubled)
        return wall - offset if offset is not None else wall

    def read(self, prop: ContentLine, text: str | None = None) -> datetime | None:
        value = prop.value if text is None else text
        wall = _when(value)
        if wall is None:
            return None
        return self.utc(wall, UTC if value.rstrip().upper().endswith("Z") else self.zone_of(prop))


def busy_jobs(
    feed: str,
    body: bytes,
    rules: ConflictRules,
    now: datetime,
    budget: values.RecurrenceBudget | None = None,
) -> tuple[list[Job], FeedConflicts]:
    """The busy occurrences of a rendered feed that overlap now − past … now + future."""
    low, high = now - rules.past, now + rules.future
    series, definitions = read_feed(body, (low, high))
    budget = budget if budget is not None else values.RecurrenceBudget(per_rule=50_000, total=5_000_000)
    zone_name = rules.timezone or _main_zone(event for events in series.values() for event in events)
    zones = _Zones(definitions)
    local = zone_named(zone_name) or zones.get(zone_name) or UTC
    report = FeedConflicts(feed, zone_name)
    report.window = (low, high)
    clock = _Clock(zones, local)
    jobs: list[Job] = []
    for uid, events in series.items():
        has_master = "RECURRENCE-ID" not in events[0].props
        try:
            _series_jobs(uid, events, has_master, clock, low, high, rules, budget, jobs)
        except values.RecurrenceTooCostly:
            report.notes.append(f"line {events[0].line}: RRULE too costly to expand; occurrences not checked")
    report.jobs = len(jobs)
    return jobs, report


def _when(value: str) -> datetime | None:
    """``values.parse_when`` with a fast path for the DATE-TIME values rendered feeds carry."""
    if (len(value) == 15 or (len(value) == 16 and value[15] == "Z")) and value[8] == "T":
        digits = value[:8] + value[9:15]
        if digits.isdigit():
            try:
                return datetime(
                    int(value[0:4]),
                    int(value[4:6]),
                    int(value[6:8]),
                    int(value[9:11]),
                    int(value[11:13]),
                    min(int(value[13:15]), 59),
                )
            except ValueError:
                return None
    return values.parse_when(value)


def _main_zone(events: Iterable[_Event]) -> str:
    """The zone most events are written in: the technician's local time, unless configured."""
    counts: Counter[str] = Counter()
    for event in events:
        start = event.props.get("DTSTART")
        tzid = start.param("TZID") if start is not None else None
        if tzid:
            counts[tzid] += 1
    return min(counts.items(), key=lambda item: (-item[1], item[0]))[0] if counts else "UTC"


def _series_jobs(
    uid: str,
    events: list[_Event],
    has_master: bool,
    clock: _Clock,
    low: datetime,
    high: datetime,
    rules: ConflictRules,
    budget: values.RecurrenceBudget,
    out: list[Job],
) -> None:
    overridden: set[datetime] = set()
    overrides = events[1:] if has_master else events
    for event in overrides:
        rid = event.props.get("RECURRENCE-ID")
        moment = clock.read(rid) if rid is not None else None
        if moment is not None:
            overridden.add(moment)
        job = _single(uid, event, clock, rules, rid.value.strip() if rid is not None else "", low, high)
        if job is not None and job.end > low and job.start < high:
            out.append(job)
    if not has_master:
        return
    master = events[0]
    if not _busy(master):
        return
    start_prop = master.props.get("DTSTART")
    if start_prop is None:
        return
    all_day = _is_date(start_prop)
    if all_day and rules.all_day == "ignore":
        return
    wall = _when(start_prop.value)
    if wall is None:
        return
    zone = None if all_day else clock.zone_of(start_prop)
    if all_day:
        zone = clock.local
    length = _length(master, wall, all_day)
    rrule = master.props.get("RRULE")
    starts = [wall]
    if rrule is not None or master.rdates:
        starts = _instances(master, rrule, wall, zone, clock, high, budget)
    # Wall time is within a day of UTC: a cheap first cut before any zone conversion.
    starts = [begin for begin in starts if low - _DAY <= begin + length and begin <= high + _DAY]
    if not starts:
        return
    excluded = overridden | _exdates(master, clock, zone, all_day)
    summary, location = _texts(master)
    place = _place(location)
    for begin in starts:
        start = clock.utc(begin, zone)
        if start in excluded or start >= high:
            continue
        end = clock.utc(begin + length, zone)
        if end <= low and not (end == start and start >= low):
            continue
        out.append(Job(uid, start, end, all_day, summary, location, master.line, "", place))


def _instances(
    master: _Event,
    rrule: ContentLine | None,
    wall: datetime,
    zone: tzinfo | None,
    clock: _Clock,
    high: datetime,
    budget: values.RecurrenceBudget,
) -> list[datetime]:
    """Occurrence starts in wall time: DTSTART, the rule's starts up to the window end, RDATEs."""
    horizon = high + timedelta(days=2)  # wall time may run up to 14 hours ahead of UTC
    found = {wall}
    if rrule is not None:
        found.update(values.rrule_starts(_wall_until(rrule.value, zone), wall, horizon, budget))
    for prop in master.rdates:
        for item in prop.value.split(","):
            moment = _when(item.partition("/")[0])
            if moment is None:
                continue
            item_zone = UTC if item.rstrip().upper().endswith("Z") else clock.zone_of(prop)
            if item_zone is not zone:
                utc = clock.utc(moment, item_zone)
                moment = utc if zone in (None, UTC) else _wall(utc, zone)
            found.add(moment)
    return sorted(found)


def _wall(utc: datetime, zone: tzinfo | None) -> datetime:
    return utc.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


def _wall_until(rrule: str, zone: tzinfo | None) -> str:
    """dateutil wants UNTIL as naive as DTSTART: a UTC UNTIL becomes the zone's wall time."""
    parts = []
    for part in rrule.split(";"):
        key, equals, value = part.partition("=")
        if key.upper() == "UNTIL" and value.upper().endswith("Z"):
            moment = _when(value)
            if moment is not None:
                if zone is not None and zone is not UTC:
                    moment = _wall(moment, zone)
                value = f"{moment:%Y%m%dT%H%M%S}"
        parts.append(f"{key}={value}" if equals else key)
    return ";".join(parts)


def _exdates(master: _Event, clock: _Clock, zone: tzinfo | None, all_day: bool) -> set[datetime]:
    found: set[datetime] = set()
    for prop in master.exdates:
        for item in prop.value.split(","):
            moment = _when(item)
            if moment is None:
                continue
            if all_day or values.is_date(item):
                found.add(clock.utc(moment, clock.local if all_day else zone))
            else:
                found.add(clock.read(prop, item) or moment)
    return found


def _single(
    uid: str,
    event: _Event,
    clock: _Clock,
    rules: ConflictRules,
    recurrence: str,
    low: datetime,
    high: datetime,
) -> Job | None:
    """An override or a standalone event as one job (its own RRULE, rare there, is ignored)."""
    if not _busy(event):
        return None
    start_prop = event.props.get("DTSTART")
    wall = _when(start_prop.value) if start_prop is not None else None
    if start_prop is None or wall is None:
        return None
    all_day = _is_date(start_prop)
    if all_day and rules.all_day == "ignore":
        return None
    length = _length(event, wall, all_day)
    if wall + length < low - _DAY or wall > high + _DAY:
        return None
    zone = clock.local if all_day else clock.zone_of(start_prop)
    start = clock.utc(wall, zone)
    end = clock.utc(wall + length, zone)
    summary, location = _texts(event)
    line = event.line
    return Job(uid, start, end, all_day, summary, location, line, recurrence, _place(location))


def _busy(event: _Event) -> bool:
    status = event.props.get("STATUS")
    transp = event.props.get("TRANSP")
    if status is not None and status.value.strip().upper() == "CANCELLED":
        return False
    return not (transp is not None and transp.value.strip().upper() == "TRANSPARENT")


def _is_date(prop: ContentLine) -> bool:
    kind = prop.param("VALUE")
    return (kind is not None and kind.upper() == "DATE") or values.is_date(prop.value)


def _length(event: _Event, wall: datetime, all_day: bool) -> timedelta:
    """DTEND − DTSTART in wall time (a 9–12 job stays 9–12 across a DST change), or DURATION."""
    end_prop = event.props.get("DTEND")
    if end_prop is not None:
        end = _when(end_prop.value)
        if end is not None and end > wall:
            return end - wall
    duration_prop = event.props.get("DURATION")
    if duration_prop is not None:
        duration = values.parse_duration(duration_prop.value)
        if duration is not None and duration > timedelta():
            return duration
    return timedelta(days=1) if all_day else timedelta()


def _texts(event: _Event) -> tuple[str, str]:
    summary = event.props.get("SUMMARY")
    location = event.props.get("LOCATION")
    return (
        unescape_text(summary.value) if summary is not None else "",
        unescape_text(location.value).strip() if location is not None else "",
    )


def _place(location: str) -> str:
    return " ".join(location.casefold().split())


# ------------------------------------------------------------------ presentation helpers


def internal_origin(job: Job, sources: Mapping[str, ParsedSource]) -> tuple[str, int] | None:
    """(source, line) of the internal VEVENT behind a job (standalone overrides included)."""
    base, _, derived = job.uid.rpartition("-R")
    candidates = [(job.uid, job.recurrence)]
    if base:
        candidates.append((base, derived))
    for name, parsed in sources.items():
        for uid, rid in candidates:
            series = parsed.series.get(uid)
            if series is None:
                continue
            key = values.recurrence_key(rid) if rid else ""
            if key and key in series.overrides:
                return name, series.overrides[key].line
            if series.master is not None:
                return name, series.master.line
            if series.overrides:
                return name, next(iter(series.overrides.values())).line
    return None


def local_text(job: Job, zone: tzinfo) -> str:
    """``Tue 2026-12-08 09:00–11:00`` in the feed's local time (all day: the dates)."""
    if job.all_day:
        last = job.end - timedelta(days=1)
        start = job.start.replace(tzinfo=UTC).astimezone(zone)
        end = last.replace(tzinfo=UTC).astimezone(zone)
        tail = f" to {end:%a %Y-%m-%d}" if end.date() > start.date() else ""
        return f"{start:%a %Y-%m-%d} (all day){tail}"
    start = job.start.replace(tzinfo=UTC).astimezone(zone)
    end = job.end.replace(tzinfo=UTC).astimezone(zone)
    until = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%a %Y-%m-%d %H:%M}"
    return f"{start:%a %Y-%m-%d %H:%M}–{until}"


Origin = Callable[[Job], tuple[str, int] | None]


def describe(conflict: Conflict, zone: tzinfo, origin: Origin) -> str:
    """One line: feed, kind, both jobs' local times, titles, sources and lines, the id."""

    def job_text(job: Job) -> str:
        found = origin(job)
        where = f"{found[0]}:{found[1]}" if found is not None else f"feed line {job.line}"
        return f"{local_text(job, zone)} {job.summary!r} ({where}, UID {job.uid})"

    parts = [job_text(job) for job in conflict.jobs]
    return f"{conflict.feed}: {conflict.kind}: {'  ×  '.join(parts)}  [id {conflict.id}]"


def as_dict(conflict: Conflict, zone: tzinfo, origin: Origin) -> dict[str, object]:
    jobs = []
    for job in conflict.jobs:
        found = origin(job)
        jobs.append(
            {
                "uid": job.uid,
                "recurrence_id": job.recurrence or None,
                "start": _iso(job.start, job.all_day, zone),
                "end": _iso(job.end, job.all_day, zone),
                "all_day": job.all_day,
                "summary": job.summary,
                "location": job.location,
                "source": found[0] if found is not None else None,
                "line": found[1] if found is not None else None,
            }
        )
    return {"id": conflict.id, "feed": conflict.feed, "kind": conflict.kind, "jobs": jobs}


def _iso(moment: datetime, all_day: bool, zone: tzinfo) -> str:
    local = moment.replace(tzinfo=UTC).astimezone(zone)
    return f"{local:%Y-%m-%d}" if all_day else local.isoformat()
