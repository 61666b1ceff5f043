"""Every real-world file of ../shared/corpus goes through the whole pipeline.

No exception may escape, every output must pass feedcheck's structure checks, and at least
as many files keep their events as icalendar itself can read.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from icalproxy.core.pipeline import build_feeds
from tests.support import CORPUS, NOW, need_shared, rules_from, structure_problems

RULES = """
sources: {corpus: {url: corpus.ics}}
feeds:
  everything: {title: Everything}
  client: {title: Client, where: {any: [{subcalendar: "*"}, {summary: "(?i)e"}]}}
  busy: {title: Busy, profile: busy, where: {window: {past: 3650d, future: 3650d}}}
  tech: {title: Tech, profile: technician}
"""


def corpus_files() -> list[Path]:
    return sorted(path for path in CORPUS.rglob("*") if path.suffix.lower() == ".ics")


@pytest.mark.slow
def test_every_corpus_file_goes_through_the_pipeline() -> None:
    need_shared(CORPUS)
    rules = rules_from(RULES)
    files = corpus_files()
    assert len(files) > 3000
    failures: list[str] = []
    survived: set[str] = set()
    with_events: set[str] = set()
    for path in files:
        name = str(path.relative_to(CORPUS))
        data = path.read_bytes()
        try:
            result = build_feeds({"corpus": data}, rules, NOW)
        except Exception as exc:  # noqa: BLE001 - the point is that nothing escapes
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if result.report.source_events["corpus"]:
            with_events.add(name)
        if result.feeds["everything"].events:
            survived.add(name)
        for feed in result.feeds.values():
            problems = structure_problems(feed.body)
            if problems:
                failures.append(f"{name} [{feed.name}]: {problems[0]}")
        for problem in result.report.problems:
            assert problem.source == "corpus" and problem.line >= 0
    assert failures == [], f"{len(failures)} failures, first: {failures[:5]}"

    icalendar_ok = _icalendar_readable_with_events()
    print(
        f"\ncorpus: {len(files)} files, {len(with_events)} with VEVENTs, "
        f"{len(survived)} keep events; icalendar reads {len(icalendar_ok)} files with VEVENTs, "
        f"of which we keep {len(icalendar_ok & survived)}"
    )
    assert len(survived) >= len(icalendar_ok)
    assert sorted(icalendar_ok - survived) == [], "files whose events icalendar reads but we drop"


def _icalendar_readable_with_events() -> set[str]:
    """Files in which icalendar finds at least one VEVENT whose DTSTART decodes to a date or a
    date-time: the events a calendar app could show at all. (icalendar 7 hands back the raw text
    of a broken DTSTART such as ``INVALID-DATE``; that is not an event anyone can place.)"""
    import datetime as dt
    import warnings

    import icalendar

    with (CORPUS / "INVENTORY.tsv").open(newline="") as handle:
        rows = [
            row["path"]
            for row in csv.DictReader(handle, delimiter="\t")
            if row["icalendar"] == "ok" and int(row["n_vevent"] or 0) > 0
        ]
    readable = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in rows:
            try:
                calendars = icalendar.Calendar.from_ical((CORPUS / path).read_bytes(), multiple=True)
                for calendar in calendars:
                    for event in calendar.walk("VEVENT"):
                        if event.get("DTSTART") is not None and isinstance(
                            event.decoded("DTSTART"), dt.date
                        ):
                            readable.add(path)
            except Exception:  # noqa: BLE001 - icalendar failing on a file means "not readable"
                continue
    return readable
