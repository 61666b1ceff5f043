"""What one pipeline run did: per-feed counts, drops by reason, located parse problems."""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

from icalproxy.records import field, record


class Problem(NamedTuple):
    """Something in a source that could not be used as it was, with where it is."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


@record
class FeedReport:
    feed: str
    events_in: int = 0  # series (distinct UIDs) in the feed's sources
    events_out: int = 0  # VEVENTs written (a series with moved occurrences writes several)
    series_out: int = 0  # distinct UIDs written: the same unit as events_in
    standalone: int = 0  # overrides published as their own event (master not in this feed)
    dropped: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)  # for ops anywhere: never quote event values
    details: dict[str, str] = field(default_factory=dict)  # note → terminal form (may name values)
    unmatched: int = 0  # rule values that appear in no source, + 1 if nothing matched at all

    def as_dict(self) -> dict[str, object]:
        return {
            "feed": self.feed,
            "events_in": self.events_in,
            "events_out": self.events_out,
            "series_in": self.events_in,
            "series_out": self.series_out,
            "standalone_overrides": self.standalone,
            "dropped": dict(sorted(self.dropped.items())),
            "notes": list(self.notes),
            "warnings": [self.details[note] for note in self.notes if note in self.details],
            "unmatched_rules": self.unmatched,
        }


@record
class RunReport:
    feeds: dict[str, FeedReport] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    source_events: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "sources": dict(self.source_events),
            "feeds": {name: report.as_dict() for name, report in sorted(self.feeds.items())},
            "problems": [str(problem) for problem in self.problems],
        }

    def summary_lines(self, max_problems: int = 20) -> list[str]:
        lines = []
        for name, report in sorted(self.feeds.items()):
            dropped = ", ".join(f"{reason}: {count}" for reason, count in sorted(report.dropped.items()))
            lines.append(
                f"feed {name}: {report.events_in} series in, {report.series_out} series out "
                f"({report.events_out} VEVENTs)" + (f"; dropped {dropped}" if dropped else "")
            )
            lines.extend(
                f"  warning: {report.details[note]}" if note in report.details else f"  note: {note}"
                for note in report.notes
            )
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s) in sources:")
            lines.extend(f"  {problem}" for problem in self.problems[:max_problems])
            if len(self.problems) > max_problems:
                lines.append(f"  … and {len(self.problems) - max_problems} more")
        return lines
