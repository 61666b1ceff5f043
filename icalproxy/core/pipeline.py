"""parse → route → redact → render, for every feed of the rules. Pure: bytes in, bytes out.

Recurrence safety: a series (one UID) is routed per component. When the master goes to a
feed but an override does not (its occurrence was moved to another sub-calendar), the
override's RECURRENCE-ID becomes an EXDATE on the master in that feed. When an override
goes to a feed whose master does not, it is published as a standalone event with a
stable derived UID. Several sources in one feed are merged by UID: the newer version
(SEQUENCE, then LAST-MODIFIED) wins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from icalproxy.config.model import Feed, Rules
from icalproxy.core.facts import EventFacts
from icalproxy.core.lines import ContentLine
from icalproxy.core.parse import Component, ParsedSource, Series, parse, raw_is_date, version_key
from icalproxy.core.redact import RedactedEvent, Redactor
from icalproxy.core.render import etag_of, render_calendar
from icalproxy.core.report import FeedReport, Problem, RunReport
from icalproxy.core.route import Predicate, compile_where, named_subcalendars, required_subcalendars
from icalproxy.core.stamps import Parts, Stamp, StampKey, stamp_event
from icalproxy.core.status import StatusKey, StatusRecord
from icalproxy.core.timezones import UTC_TIMEZONE, ZoneTable
from icalproxy.core.unmatched import NameIndex, report_unmatched, unmatched_rules
from icalproxy.core.values import RecurrenceBudget
from icalproxy.records import field, record

GOOGLE_MAX_BYTES = 1_000_000  # Google Calendar gives up on subscribed feeds above about this size
_CANCELLED_LINE = b"\r\nSTATUS:CANCELLED\r\n"


class FeedOutput:
    """A rendered feed. Its ETag (a hash of every byte) is computed when first asked for:
    the daemon serves it, ``icalproxy render`` only writes files and never needs it."""

    __slots__ = ("_etag", "body", "events", "name")

    def __init__(self, name: str, body: bytes, etag: str | None, events: int) -> None:
        self.name, self.body, self.events = name, body, events
        self._etag = etag

    @property
    def etag(self) -> str:
        if self._etag is None:
            self._etag = etag_of(self.body)
        return self._etag

    def __repr__(self) -> str:
        return f"FeedOutput(name={self.name!r}, bytes={len(self.body)}, events={self.events})"


@record
class BuildResult:
    feeds: dict[str, FeedOutput]
    report: RunReport
    # The visible-content history after this run (see stamps.py): for the shell to keep.
    stamps: dict[StampKey, Stamp] = field(default_factory=dict)
    # Each job's client-facing status now, since when and why (see status.py).
    statuses: dict[StatusKey, StatusRecord] = field(default_factory=dict)
    # The feeds rendered (given to the sink, or in ``feeds``), in the rules' order.
    rendered: list[str] = field(default_factory=list)


def parse_sources(
    snapshots: Mapping[str, bytes], uid_key: bytes = b"", *, valid_utf8: bool = False
) -> dict[str, ParsedSource]:
    """``valid_utf8``: every snapshot passed fetch.check_calendar (see parse)."""
    return {name: parse(data, name, uid_key, valid_utf8=valid_utf8) for name, data in snapshots.items()}


def build_feeds(
    snapshots: Mapping[str, bytes],
    rules: Rules,
    now: datetime,
    only: Iterable[str] | None = None,
    uid_key: bytes = b"",
) -> BuildResult:
    """Parse every source once and render the feeds (all, or those named in ``only``)."""
    return render_feeds(parse_sources(snapshots, uid_key), rules, now, only)


def render_feeds(
    sources: Mapping[str, ParsedSource],
    rules: Rules,
    now: datetime,
    only: Iterable[str] | None = None,
    stamps: Mapping[StampKey, Stamp] | None = None,
    statuses: Mapping[StatusKey, StatusRecord] | None = None,
    sink: Callable[[FeedOutput], None] | None = None,
) -> BuildResult:
    """``stamps``: the visible-content history of earlier runs (None: none is kept, new
    content gets a fixed stamp); ``statuses``: what each job's client saw before (None:
    no history, a first render). ``sink``: given each feed as soon as it is rendered, which
    is then not kept in the result (``feeds`` stays empty: memory holds one feed at a time)."""
    plan = RenderPlan(sources, rules, now, only, stamps, statuses)
    return plan.finish([plan.render(plan.names, sink)])


@record
class FeedShare:
    """What rendering one feed found, kept apart from the run's other feeds: shares rendered
    in other places (processes, see icalproxy/render_jobs.py) then merge, feed by feed in
    the rules' order, into the result that rendering every feed in one go gives."""

    name: str
    report: FeedReport
    skipped: list[Problem]  # series no check foresaw, lost (the run report's problems)
    repaired: list[Problem]  # values repaired or dropped while redacting
    cut: list[tuple[str, int]]  # (source, line) of series whose RRULE was too costly


@record
class RenderShare:
    """Some feeds of a run, rendered: each one's share, and the history they wrote."""

    feeds: list[FeedShare]
    stamps: dict[StampKey, Stamp]
    statuses: dict[StatusKey, StatusRecord]


class RenderPlan:
    """A run planned once (the feeds to render, the series each may show, which series
    several feeds share), rendered in shares of its feeds, then finished with all of them.
    ``render_feeds`` renders one share of every feed; a share may as well be rendered by a
    copy of the plan in another process, and its RenderShare sent back (it pickles)."""

    def __init__(
        self,
        sources: Mapping[str, ParsedSource],
        rules: Rules,
        now: datetime,
        only: Iterable[str] | None = None,
        stamps: Mapping[StampKey, Stamp] | None = None,
        statuses: Mapping[StatusKey, StatusRecord] | None = None,
    ) -> None:
        self._run = run = _Run(sources, rules, now, stamps, statuses)
        wanted = set(only) if only is not None else None
        self._feeds: dict[str, Feed] = {}
        self._missing: dict[str, FeedReport] = {}
        for name, feed in rules.feeds.items():
            if wanted is not None and name not in wanted:
                continue
            missing = [source for source in feed.sources if source not in sources]
            if missing:
                report = self._missing[name] = FeedReport(name)
                report.notes.append(f"not rendered: no data yet from {', '.join(missing)}")
                continue
            self._feeds[name] = feed
        run.plan(list(self._feeds.values()))
        self._outputs: dict[str, FeedOutput] = {}

    @property
    def names(self) -> list[str]:
        """The feeds to render, in the rules' order (a feed whose sources have no data yet
        is not among them: its report says so)."""
        return list(self._feeds)

    def cost(self, name: str) -> int:
        """How much work a feed is, roughly: the series it may show."""
        return self._run.candidate_count(name)

    def render(self, names: Iterable[str], sink: Callable[[FeedOutput], None] | None = None) -> RenderShare:
        """Render these feeds, each given to ``sink`` as soon as it is done (without a sink,
        kept for the result: see finish)."""
        run = self._run
        shares = []
        for name in names:
            skipped, repaired, cut = len(run.report.problems), len(run.problems), len(run.recurrence.cut)
            output = run.render(self._feeds[name])
            if sink is None:
                self._outputs[name] = output
            else:
                sink(output)
            del output
            shares.append(
                FeedShare(
                    name,
                    run.report.feeds[name],
                    run.report.problems[skipped:],
                    run.problems[repaired:],
                    run.recurrence.cut[cut:],
                )
            )
        records: dict[StatusKey, StatusRecord] = {}
        for redactor in run.redactors():
            records.update(redactor.status_records)
        return RenderShare(shares, dict(run.new_stamps), records)

    def finish(self, shares: Iterable[RenderShare]) -> BuildResult:
        """The run's result from the shares that rendered its feeds, every one once."""
        run = self._run
        shares = list(shares)
        by_name = {feed.name: feed for share in shares for feed in share.feeds}
        if set(by_name) != set(self._feeds):
            raise ValueError(f"shares cover {sorted(by_name)}, not the planned {sorted(self._feeds)}")
        report = run.report = RunReport()
        report.feeds.update(self._missing)
        skipped: list[Problem] = []
        repaired: list[Problem] = []
        cut: list[tuple[str, int]] = []
        for name in self._feeds:
            done = by_name[name]
            report.feeds[name] = done.report
            skipped.extend(done.skipped)
            repaired.extend(done.repaired)
            cut.extend(done.cut)
        report.problems.extend(skipped)
        # No silent emptying (see unmatched.py); facts read only for this are not kept.
        sources = run.sources
        cut_before = len(run.recurrence.cut)
        names = NameIndex(
            sources, run.rules.custom_fields, lambda c, source: run.facts(c, source, keep=False)
        )
        for name, feed in self._feeds.items():
            report_unmatched(report.feeds[name], unmatched_rules(feed.where, feed.sources, names))
        cut.extend(run.recurrence.cut[cut_before:])
        for source in sources.values():
            report.problems.extend(source.problems)
            report.source_events[source.source] = source.vevents
        report.problems.extend(dict.fromkeys(repaired))
        report.problems.extend(
            Problem(source, line, "RRULE too costly to expand; `window` treats the series as open-ended")
            for source, line in cut
        )
        stamps: dict[StampKey, Stamp] = {}
        records: dict[StatusKey, StatusRecord] = {}
        for share in shares:
            stamps.update(share.stamps)
            records.update(share.statuses)
        return BuildResult(dict(self._outputs), report, stamps, records, list(self._feeds))


class _Run:
    """Caches shared by all feeds of one run: facts, redactions, indexes, time zones."""

    def __init__(
        self,
        sources: Mapping[str, ParsedSource],
        rules: Rules,
        now: datetime,
        stamps: Mapping[StampKey, Stamp] | None = None,
        statuses: Mapping[StatusKey, StatusRecord] | None = None,
    ) -> None:
        self.stamps = stamps
        self.statuses = dict(statuses) if statuses is not None else None
        self.new_stamps: dict[StampKey, Stamp] = {}
        self.stamp_now = now.strftime("%Y%m%dT%H%M%SZ")
        self.sources = sources
        self.rules = rules
        self.now = now
        self.report = RunReport()
        self.zones = ZoneTable({name: source.timezones for name, source in sources.items()})
        self.problems: list[Problem] = []  # found while redacting (repaired or dropped values)
        self._facts: dict[int, EventFacts] = {}  # of series that several feeds may show
        self._shared: set[int] = set()  # ids of those series (see plan)
        self.recurrence = RecurrenceBudget()
        self._redactors: dict[str, Redactor] = {}
        self._redacted: dict[str, dict[int, RedactedEvent | None]] = {}  # profile → id → event
        self._index: dict[str, dict[str, list[Series]]] = {}
        self._planned: dict[str, tuple[list[Series], int]] = {}
        # Per profile, the series several of its feeds may show: only those keep their
        # redacted bytes for reuse (memory stays near the output size).
        self._reused: dict[str, set[int]] = {}

    def plan(self, feeds: list[Feed]) -> None:
        seen: set[int] = set()
        seen_in_profile: dict[str, set[int]] = {}
        for feed in feeds:
            candidates, _ = self._planned[feed.name] = self._candidates(feed)
            in_profile = seen_in_profile.setdefault(feed.profile, set())
            reused = self._reused.setdefault(feed.profile, set())
            for series in candidates:
                key = id(series)
                if key in seen:
                    self._shared.add(key)
                    if key in in_profile:
                        reused.add(key)
                seen.add(key)
                in_profile.add(key)

    def candidate_count(self, name: str) -> int:
        planned = self._planned.get(name)
        return len(planned[0]) if planned is not None else 0

    # ------------------------------------------------------------ per feed

    def render(self, feed: Feed) -> FeedOutput:
        report = self.report.feeds[feed.name] = FeedReport(feed.name)
        predicate = compile_where(feed.where, self.now)
        redactor = self._redactor(feed.profile)
        planned = self._planned.pop(feed.name, None)
        candidates, total = planned if planned is not None else self._candidates(feed)
        report.events_in = total
        events: list[tuple[str, str, bytes]] = []
        tzids: set[str] = set()
        routed_series = 0
        cutoff = self.now - feed.keep_cancelled if feed.keep_cancelled is not None else None
        for series in candidates:
            try:
                emitted = self._route_series(series, predicate, redactor, report, events, tzids, cutoff)
            except (ValueError, TypeError, OverflowError, RecursionError) as exc:
                # A value no check foresaw: lose this series, never the feed.
                head = series.master or next(iter(series.overrides.values()))
                self.report.problems.append(
                    Problem(series.source, head.line, f"event skipped: {type(exc).__name__}: {exc}")
                )
                report.dropped["unreadable event"] += 1
                continue
            routed_series += emitted > 0
        report.dropped["not routed to this feed"] += total - routed_series
        timezones = [chunk for tzid in sorted(tzids) if (chunk := self.zones.definition(tzid)) is not None]
        if not events and not timezones:
            timezones = [UTC_TIMEZONE]  # RFC 5545 §3.6: a calendar holds at least one component
        events.sort(key=lambda item: (item[0], item[1]))
        parts: list[bytes] = []
        for event in events:
            parts.extend(self._stamped(feed.name, event))
        body = render_calendar(feed.title, self.rules.publish.refresh_interval, timezones, parts)
        report.events_out = len(events)
        report.series_out = len({uid for uid, _, _ in events})
        if len(body) > GOOGLE_MAX_BYTES:
            report.notes.append(
                f"{len(body) / 1e6:.1f} MB: Google Calendar rejects subscribed feeds over about 1 MB; "
                "a `window` in `where` keeps a feed smaller"
            )
        return FeedOutput(feed.name, body, None, len(events))

    def _candidates(self, feed: Feed) -> tuple[list[Series], int]:
        """Series that may match, and the number of distinct UIDs in the feed's sources."""
        merged: dict[str, Series] = {}
        total_uids: set[str] = set()
        needed = required_subcalendars(feed.where)
        for source_name in feed.sources:
            source = self.sources[source_name]
            if len(feed.sources) > 1:
                total_uids.update(source.series)
            if needed is None:
                pool: Iterable[Series] = source.series.values()
            else:
                index = self._category_index(source)
                pool = dict.fromkeys(series for name in needed for series in index.get(name, ())).keys()
            for series in pool:
                current = merged.get(series.uid)
                if current is None or _series_version(series) > _series_version(current):
                    merged[series.uid] = series
        total = len(total_uids) if len(feed.sources) > 1 else len(self.sources[feed.sources[0]].series)
        return list(merged.values()), total

    def _category_index(self, source: ParsedSource) -> dict[str, list[Series]]:
        index = self._index.get(source.source)
        if index is None:
            index = {}
            for series in source.series.values():
                if series.overrides:
                    names: Iterable[str] = {n for c in series.components() for n in c.categories}
                else:
                    names = series.master.categories if series.master is not None else ()
                for name in names:  # a name listed twice adds the series twice: candidates dedupe
                    index.setdefault(name, []).append(series)
            self._index[source.source] = index
        return index

    def _route_series(
        self,
        series: Series,
        predicate: Predicate,
        redactor: Redactor,
        report: FeedReport,
        events: list[tuple[str, str, bytes]],
        tzids: set[str],
        cancelled_before: datetime | None = None,
    ) -> int:
        """``cancelled_before``: a cancelled job that ended before this is no longer shown."""
        master = series.master
        keep = id(series) in self._shared  # facts read again by another feed: cached
        master_facts = self.facts(master, series.source, keep) if master is not None else None
        master_in = master_facts is not None and predicate(master_facts)
        # Overrides of a private series are private unless they say otherwise (RFC 5545).
        private = master is not None and bool(series.overrides) and _is_private(master)
        excluded: list[ContentLine] = []
        kept_overrides: list[tuple[str, Component, EventFacts]] = []
        for key, override in sorted(series.overrides.items()) if series.overrides else ():
            override_facts = self.facts(override, series.source, keep)
            if predicate(override_facts):
                kept_overrides.append((key, override, override_facts))
            elif master_in:
                rid = override.first("RECURRENCE-ID")
                if rid is not None:
                    excluded.append(ContentLine("EXDATE", rid.params, rid.value, rid.line))
                report.dropped["moved occurrence excluded (EXDATE)"] += 1
        emitted = 0
        if master_in and master_facts is not None:
            result = self._redact(master_facts, series, redactor, excluded, None)
            if result is None:
                report.dropped["dropped by profile"] += 1
            elif _CANCELLED_LINE in result.chunk and self._ended_before(master_facts, cancelled_before):
                report.dropped["cancelled, past keep_cancelled"] += 1
            else:
                events.append((series.uid, "", result.chunk))
                if result.extra:
                    events.extend((uid, "", chunk) for uid, chunk in result.extra)
                tzids |= result.tzids
                emitted += 1
        for key, override, override_facts in kept_overrides:
            standalone = None if master_in else f"{series.uid}-R{key}"
            # The master's DTSTART fixes the type of RECURRENCE-ID; needed when they differ.
            differs = master is not None and raw_is_date(override.rid) != raw_is_date(master.dtstart)
            reference = master if differs else None
            result = self._redact(override_facts, series, redactor, (), standalone, private, reference)
            if result is None:
                report.dropped["dropped by profile"] += 1
                continue
            if _CANCELLED_LINE in result.chunk and self._ended_before(override_facts, cancelled_before):
                report.dropped["cancelled, past keep_cancelled"] += 1
                continue
            if result.extra:
                events.extend((uid, "", chunk) for uid, chunk in result.extra)
            if standalone is not None:
                events.append((standalone, "", result.chunk))
                report.standalone += 1
            else:
                events.append((series.uid, key, result.chunk))
            tzids |= result.tzids
            emitted += 1
        return emitted

    def _ended_before(self, facts: EventFacts, before: datetime | None) -> bool:
        """Of a job shown as cancelled (its own STATUS or the catalogue's: the caller has seen
        the line): it ended before ``before``. Phones showed it struck through for the feed's
        keep_cancelled; now it goes. The line is looked for inline, not here: most events are
        not cancelled, and a call per event costs more than the look."""
        if before is None:
            return False
        _, end = facts.span(self.now)
        return end is not None and end < before

    def _redact(
        self,
        facts: EventFacts,
        series: Series,
        redactor: Redactor,
        exdates: list[ContentLine] | tuple[()],
        standalone: str | None,
        private: bool = False,
        master: Component | None = None,
    ) -> RedactedEvent | None:
        problems = self.problems
        if exdates or standalone is not None or private or master is not None:
            return redactor.redact(
                facts,
                standalone or series.uid,
                standalone=standalone is not None,
                extra_exdates=exdates,
                inherit_private=private,
                problems=problems,
                master=master,
            )
        reused = self._reused.get(redactor.profile.name)
        if reused is None or id(series) not in reused:
            return redactor.redact(facts, series.uid, problems=problems)
        cache = self._redacted.setdefault(redactor.profile.name, {})
        key = id(facts.component)
        if key not in cache:
            cache[key] = redactor.redact(facts, series.uid, problems=problems)
        return cache[key]

    def _stamped(self, feed: str, event: tuple[str, str, bytes]) -> Parts:
        uid, key, chunk = event
        stamp_key = (feed, uid, key)
        parts, entry = stamp_event(chunk, stamp_key, self.stamps, self.stamp_now)
        if entry is not None:
            self.new_stamps[stamp_key] = entry
        return parts

    # ------------------------------------------------------------ shared

    def facts(self, component: Component, source: str, keep: bool = True) -> EventFacts:
        """``keep``: cache them for later readers (another feed, the unmatched-rule check);
        facts of a series only one feed may show are not kept (memory stays near the output)."""
        key = id(component)
        facts = self._facts.get(key)
        if facts is None:
            facts = EventFacts(component, source, self.rules.custom_fields, self.recurrence)
            if keep:
                self._facts[key] = facts
        return facts

    def redactors(self) -> list[Redactor]:
        return list(self._redactors.values())

    def _redactor(self, profile_name: str) -> Redactor:
        redactor = self._redactors.get(profile_name)
        if redactor is None:
            profile = self.rules.profiles[profile_name]
            feeds = self.rules.feeds.values()
            named = frozenset().union(*(named_subcalendars(feed.where) for feed in feeds))
            redactor = self._redactors[profile_name] = Redactor(
                profile,
                self.rules.statuses,
                self.rules.custom_fields,
                self.zones,
                named,
                self.statuses,
                self.stamp_now,
            )
        return redactor


def _is_private(component: Component) -> bool:
    """RFC 5545: any CLASS but PUBLIC (unknown and malformed values included) is private."""
    data, start, end = component.data, component.start, component.end + 1  # with its last newline
    lines = data.count(b"\nCLASS", start, end)
    if not lines:
        return False
    public = data.count(b"\nCLASS:PUBLIC\r\n", start, end)
    folded = data.count(b"\nCLASS:PUBLIC\r\n ", start, end) + data.count(b"\nCLASS:PUBLIC\r\n\t", start, end)
    if public == lines and not folded:
        return False  # every CLASS line, its children's too, is a plain unfolded PUBLIC
    return any(prop.value.strip().upper() != "PUBLIC" for prop in component.all("CLASS"))


def _series_version(series: Series) -> tuple[int, str]:
    head = series.master or next(iter(series.overrides.values()), None)
    return version_key(head) if head is not None else (0, "")


__all__ = [
    "GOOGLE_MAX_BYTES",
    "BuildResult",
    "FeedOutput",
    "FeedShare",
    "Problem",
    "RenderPlan",
    "RenderShare",
    "build_feeds",
    "parse_sources",
    "render_feeds",
]
