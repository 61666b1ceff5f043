"""Conflict detection: the technician fixture's double bookings, travel gaps and off-shift jobs,
the sweep against all pairs, stable ids, `who` routing, config errors and the CLI."""

from __future__ import annotations

import itertools
import json
import random
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icalproxy.config.model import ConflictRules
from icalproxy.core.conflicts import Job, all_pairs, find_conflicts, sweep
from icalproxy.core.pipeline import build_feeds
from icalproxy.errors import ConfigError
from tests.support import FIXTURES, ROOT, calendar, rules_from

CREW = FIXTURES / "teamup-technicians.ics"
NOW = datetime(2026, 12, 1, 6, 0)
SAM = """
    title: "Sam — my jobs"
    from: [crew]
    where: {{any: [{{who: Sam}}, {{subcalendar: "Technician: Sam"}}]}}
    profile: technician
    conflicts:
      window: {{past: 1d, future: 60d}}
      all_day: {all_day}
      travel_gap: 30m
      shift: {{mon-fri: "07:00-17:00", sat: "08:00-12:00"}}
"""


def config_text(all_day: str = "count", path: Path = CREW) -> str:
    return f"sources: {{crew: {{url: {path}}}}}\nfeeds:\n  sam:{SAM.format(all_day=all_day)}"


def sam_conflicts(all_day: str = "count", data: bytes | None = None, now: datetime = NOW):
    rules = rules_from(config_text(all_day))
    body = build_feeds({"crew": data or CREW.read_bytes()}, rules, now).feeds["sam"].body
    conflicts = rules.feeds["sam"].conflicts
    assert conflicts is not None
    return find_conflicts("sam", body, conflicts, now)


def found(report) -> set[tuple[str, str, ...]]:
    return {(c.kind, *(f"{job.uid}@{job.start:%m-%d %H:%M}" for job in c.jobs)) for c in report.conflicts}


# UTC times: Berlin is UTC+1 in December, New York UTC-5.
EXPECTED = {
    ("overlap", "TU5001@12-08 08:00", "TU5002@12-08 09:00"),  # double-booked; TU5002 by a Who: line
    ("overlap", "TU5003@12-11 08:00", "TU5005@12-11 08:30"),  # the series' moved occurrence
    ("overlap", "TU5008@12-14 09:00", "TU5009@12-14 09:30"),  # 04:00 New York = 10:00 Berlin
    ("travel", "TU5013@12-15 08:00", "TU5014@12-15 09:15"),  # 15 minutes to another address
    ("overlap", "TU5011@12-15 23:00", "TU5012@12-16 09:00"),  # all-day training (counted)
    ("outside_shift", "TU5016@12-19 12:00"),  # Saturday 13:00, the shift ends at 12:00
    ("overlap", "TU5007@12-24 11:30", "TU5003@12-24 12:00"),  # an occurrence of the weekly series
}


def test_fixture_conflicts_are_exactly_the_double_bookings() -> None:
    report = sam_conflicts()
    assert found(report) == EXPECTED
    assert report.zone == "Europe/Berlin"
    assert report.by_kind() == {"overlap": 5, "travel": 1, "outside_shift": 1}
    uids = {job.uid for c in report.conflicts for job in c.jobs}
    # EXDATE'd 12-17 (TU5004 then), the slot the occurrence moved away from (TU5006), a NY call at
    # 10:40 NY (naively 10:40 would hit TU5009), transparent, cancelled, Jo's job, same place.
    assert uids.isdisjoint({"TU5004", "TU5006", "TU5010", "TU5015", "TU5017", "TU5018", "TU5019"})


def test_all_day_ignored_by_default() -> None:
    report = sam_conflicts("ignore")
    assert found(report) == {item for item in EXPECTED if "TU5011@12-15 23:00" not in item}
    assert not any(job.all_day for c in report.conflicts for job in c.jobs)


def test_ids_are_stable_and_order_does_not_matter() -> None:
    data = CREW.read_bytes()
    head, *events = data.split(b"BEGIN:VEVENT")
    events[-1] = events[-1].replace(b"END:VCALENDAR\r\n", b"")
    reversed_data = b"BEGIN:VEVENT".join([head, *reversed(events)]) + b"END:VCALENDAR\r\n"
    first, again, turned = sam_conflicts(), sam_conflicts(), sam_conflicts(data=reversed_data)
    ids = [c.id for c in first.conflicts]
    assert len(set(ids)) == len(ids) == 7
    assert ids == [c.id for c in again.conflicts] == [c.id for c in turned.conflicts]
    # A day later the same conflicts keep their ids (the window moved, the jobs did not).
    later = sam_conflicts(now=NOW + timedelta(days=1))
    assert {c.id for c in later.conflicts} == set(ids)


def test_window_limits_the_check() -> None:
    # From 12-21 on only the Christmas Eve overlap is ahead (the past day holds no job).
    report = sam_conflicts(now=datetime(2026, 12, 21, 12))
    assert found(report) == {("overlap", "TU5007@12-24 11:30", "TU5003@12-24 12:00")}


def _job(index: int, start: int, length: int, place: int, all_day: bool = False) -> Job:
    base = datetime(2026, 12, 1)
    return Job(
        uid=f"J{index % 7}",
        start=base + timedelta(minutes=start),
        end=base + timedelta(minutes=start + length),
        all_day=all_day,
        summary="",
        location=str(place),
        line=index,
        place=str(place) if place else "",
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 600), st.integers(0, 120), st.integers(0, 3)), max_size=40),
    st.sampled_from([None, 15, 30, 90]),
)
def test_sweep_finds_exactly_what_all_pairs_finds(items: list[tuple[int, int, int]], gap: int | None) -> None:
    jobs = [_job(i, start, length, place) for i, (start, length, place) in enumerate(items)]
    travel = timedelta(minutes=gap) if gap is not None else None

    def canonical(pairs):
        return sorted((kind, *sorted([(a.start, a.line), (b.start, b.line)])) for kind, a, b in pairs)

    assert canonical(sweep(jobs, travel)) == canonical(all_pairs(jobs, travel))
    assert canonical(sweep(list(reversed(jobs)), travel)) == canonical(all_pairs(jobs, travel))


def test_sweep_is_not_quadratic_on_a_long_sequence() -> None:
    # 20,000 jobs, one an hour: all pairs would be 200 million comparisons, the sweep meets each
    # job with the one or two still open. A brute-force check of the first days agrees.
    rng = random.Random(4)
    jobs = [_job(i, i * 60 + rng.randint(0, 50), 30, rng.randint(1, 3)) for i in range(20_000)]
    started = time.perf_counter()
    pairs = sweep(jobs, timedelta(minutes=20))
    assert time.perf_counter() - started < 5
    assert pairs
    cut = datetime(2026, 12, 5)
    sample = [job for job in jobs if job.start < cut]
    assert len(all_pairs(sample, timedelta(minutes=20))) == sum(1 for _, _, b in pairs if b.start < cut)


def test_recurring_series_across_dst_and_cancelled_occurrence() -> None:
    # Weekly 09:00–10:00 Berlin from March to April 2027: the UTC start moves by an hour at the
    # DST change, yet every occurrence stays 09:00 local; a cancelled override frees its slot.
    data = calendar(
        """UID:S1
        DTSTAMP:20261130T070000Z
        DTSTART;TZID=Europe/Berlin:20270322T090000
        DTEND;TZID=Europe/Berlin:20270322T100000
        RRULE:FREQ=WEEKLY;UNTIL=20270412T235959Z
        SUMMARY:Series""",
        """UID:S1
        DTSTAMP:20261130T070000Z
        RECURRENCE-ID;TZID=Europe/Berlin:20270405T090000
        DTSTART;TZID=Europe/Berlin:20270405T090000
        DTEND;TZID=Europe/Berlin:20270405T100000
        STATUS:CANCELLED
        SUMMARY:Series""",
        """UID:X1
        DTSTAMP:20261130T070000Z
        DTSTART:20270329T073000Z
        DTEND:20270329T080000Z
        SUMMARY:After DST: 09:30 Berlin""",
        """UID:X2
        DTSTAMP:20261130T070000Z
        DTSTART:20270405T073000Z
        DTEND:20270405T080000Z
        SUMMARY:On the cancelled one""",
        """UID:X3
        DTSTAMP:20261130T070000Z
        DTSTART:20270322T083000Z
        DTEND:20270322T084500Z
        SUMMARY:Before DST: 09:30 Berlin""",
    )
    rules = rules_from(
        "sources: {s: {url: /x.ics}}\nfeeds:\n  t: {title: T, conflicts: {window: {future: 365d}}}"
    )
    now = datetime(2027, 3, 1)
    body = build_feeds({"s": data}, rules, now).feeds["t"].body
    conflicts = rules.feeds["t"].conflicts
    assert conflicts is not None
    report = find_conflicts("t", body, conflicts, now)
    assert {tuple(job.uid for job in c.jobs) for c in report.conflicts} == {("S1", "X3"), ("S1", "X1")}
    assert report.zone == "Europe/Berlin"


def test_who_routes_by_name_list_line_and_glob() -> None:
    data = calendar(
        "UID:W1\nDTSTAMP:20261130T070000Z\nDTSTART:20261202T080000Z\nSUMMARY:a\nX-TEAMUP-WHO:Jo\\, Sam",
        "UID:W2\nDTSTAMP:20261130T070000Z\nDTSTART:20261202T090000Z\nSUMMARY:b\nDESCRIPTION:Who: sam",
        "UID:W3\nDTSTAMP:20261130T070000Z\nDTSTART:20261202T100000Z\nSUMMARY:c\nX-TEAMUP-WHO:Samantha",
        "UID:W4\nDTSTAMP:20261130T070000Z\nDTSTART:20261202T110000Z\nSUMMARY:d\nX-TEAMUP-WHO:Anna & Sam",
    )
    rules = rules_from(
        "sources: {s: {url: /x.ics}}\nfeeds:\n"
        "  sam: {title: S, where: {who: Sam}}\n"
        "  glob: {title: G, where: {who: 'sam*'}}\n"
        "  nobody: {title: N, where: {who: [Lee, Kim]}}\n"
    )
    feeds = build_feeds({"s": data}, rules, NOW).feeds

    def uids(name: str) -> set[str]:
        return {line[4:] for line in feeds[name].body.decode().split("\r\n") if line.startswith("UID:")}

    assert uids("sam") == {"W1", "W2", "W4"}
    assert uids("glob") == {"W1", "W2", "W3", "W4"}
    assert uids("nobody") == set()


@pytest.mark.parametrize(
    ("conflicts", "message"),
    [
        ("{shift: {mon-fry: '07:00-17:00'}}", "test.yaml:3: shift day 'mon-fry' must be a weekday"),
        ("{shift: {mon: '17:00-07:00'}}", "test.yaml:3: shift 'mon' must be HH:MM-HH:MM"),
        ("{shift: {mon-fri: '07:00-17:00', fri: off}}", "test.yaml:3: shift: fri is in both"),
        ("{all_day: maybe}", "test.yaml:3: all_day must be one of ignore, count"),
        ("{travel_gap: soon}", "test.yaml:3: travel_gap must be a duration"),
        ("{timezone: Mars/Olympus}", "test.yaml:3: timezone 'Mars/Olympus' is not in the tz database"),
        ("{windows: {past: 1d}}", "test.yaml:3: unknown key 'windows' in conflicts"),
    ],
)
def test_bad_conflict_config_is_located(conflicts: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        rules_from(f"sources: {{s: {{url: /x.ics}}}}\nfeeds:\n  t: {{title: T, conflicts: {conflicts}}}")
    assert any(problem.startswith(message) for problem in caught.value.problems), caught.value.problems


def test_conflict_config_shift_and_defaults() -> None:
    rules = rules_from(
        "sources: {s: {url: /x.ics}}\nfeeds:\n"
        "  a: {title: A, conflicts: true}\n"
        "  b: {title: B, conflicts: {shift: {sat-mon: '08:00-12:00', wed: '06:30-24:00'}}}\n"
    )
    assert rules.feeds["a"].conflicts == ConflictRules()
    shift = rules.feeds["b"].conflicts.shift  # type: ignore[union-attr]
    assert shift == ((480, 720), None, (390, 1440), None, None, (480, 720), (480, 720))


# ------------------------------------------------------------------ the CLI


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "icalproxy.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_cli_text_json_and_exit_codes(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(config_text() + "  jo: {title: Jo, from: [crew], where: {who: Jo}, conflicts: true}\n")
    text = run_cli("conflicts", "--config", str(config), "--now", "2026-12-01T06:00")
    assert text.returncode == 1, text.stderr
    lines = text.stdout.splitlines()
    assert len(lines) == 7
    first = lines[0]
    assert first.startswith("sam: overlap: Tue 2026-12-08 09:00–11:00 'Boiler repair — Scheduled' (crew:")
    assert "UID TU5001)  ×  Tue 2026-12-08 10:00–12:00 'Pump check" in first
    assert "sam: 7 conflict(s) among 20 job(s)" in text.stderr
    assert "jo: 0 conflict(s) among 1 job(s)" in text.stderr
    travel = next(line for line in lines if ": travel: " in line)
    # Source lines point into the internal feed: the line of each job's VEVENT.
    source_lines = CREW.read_text().splitlines()
    for number in (int(part.split(",")[0]) for part in travel.split("(crew:")[1:]):
        assert source_lines[number - 1].startswith("BEGIN:VEVENT")

    as_json = run_cli("conflicts", "--config", str(config), "--now", "2026-12-01T06:00", "--format", "json")
    assert as_json.returncode == 1
    document = json.loads(as_json.stdout)["feeds"]
    assert document["sam"]["by_kind"] == {"overlap": 5, "travel": 1, "outside_shift": 1}
    moved = next(c for c in document["sam"]["conflicts"] if c["jobs"][0]["recurrence_id"])
    assert moved["jobs"][0]["start"] == "2026-12-11T09:00:00+01:00"
    assert moved["jobs"][0]["line"] == 143 and moved["jobs"][0]["source"] == "crew"
    assert document["jo"]["conflicts"] == []

    clean = run_cli("conflicts", "--config", str(config), "--feed", "jo", "--now", "2026-12-01T06:00")
    assert (clean.returncode, clean.stdout) == (0, "")

    config.write_text(config_text() + "  plain: {title: P, from: [crew]}\n")
    unmarked = run_cli("conflicts", "--config", str(config), "--feed", "plain")
    assert unmarked.returncode == 2
    assert "feed 'plain' has no `conflicts:` section" in unmarked.stderr
    config.write_text(config_text().replace("travel_gap: 30m", "travel_gap: later"))
    assert run_cli("conflicts", "--config", str(config)).returncode == 2


_RULE = st.one_of(
    st.builds(
        lambda interval, tail: f"FREQ=DAILY;INTERVAL={interval}{tail}",
        st.integers(1, 5),
        st.sampled_from(["", ";COUNT=7", ";UNTIL=20270301T000000", ";UNTIL=20270115"]),
    ),
    st.builds(
        lambda interval, days, wkst, tail: f"FREQ=WEEKLY;INTERVAL={interval};BYDAY={days}{wkst}{tail}",
        st.integers(1, 4),
        st.sampled_from(["MO", "TU,TH", "SU", "MO,WE,FR,SA", "SA,MO"]),
        st.sampled_from(["", ";WKST=SU", ";WKST=WE"]),
        st.sampled_from(["", ";COUNT=9", ";UNTIL=20270301T080000"]),
    ),
    st.builds(
        lambda interval, by, tail: f"FREQ=MONTHLY;INTERVAL={interval};{by}{tail}",
        st.integers(1, 13),
        st.sampled_from(
            ["BYMONTHDAY=31", "BYMONTHDAY=1", "BYMONTHDAY=29", "BYDAY=-1FR", "BYDAY=2TU", "BYDAY=4SU"]
        ),
        st.sampled_from(["", ";COUNT=5", ";UNTIL=20280101T000000"]),
    ),
    st.just("FREQ=MONTHLY"),
    st.just("FREQ=WEEKLY"),
)


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


@settings(max_examples=300, deadline=None)
@given(_RULE, st.datetimes(datetime(2026, 1, 1), datetime(2027, 6, 1)).map(_minute))
def test_stepped_rules_expand_like_dateutil(rule: str, start: datetime) -> None:
    from dateutil.rrule import rrulestr

    from icalproxy.core import values

    until = datetime(2028, 6, 1)
    occurrences = itertools.takewhile(lambda moment: moment <= until, rrulestr(rule, dtstart=start))
    expected = list(itertools.islice(occurrences, 500))
    stepped = values._simple_starts(rule, start, until, values._Steps(values.RecurrenceBudget()))
    assert stepped is not None
    assert stepped[:500] == expected


def test_preview_marks_the_conflicting_jobs(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(config_text())
    result = run_cli("preview", "--config", str(config), "--feed", "sam", "--now", "2026-12-01T06:00")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()

    def marks_under(title: str) -> list[str]:
        index = next(i for i, line in enumerate(lines) if line.endswith(title))
        following = []
        for line in lines[index + 1 :]:
            if not line.startswith("    "):
                break
            following.append(line.strip())
        return [line for line in following if line.startswith("!! CONFLICT")]

    boiler = marks_under("Boiler repair — Scheduled")
    assert len(boiler) == 1 and boiler[0].startswith("!! CONFLICT overlap with 'Pump check — Scheduled'")
    assert marks_under("Weekly maintenance (moved) — Scheduled")[0].startswith(
        "!! CONFLICT overlap with 'Acme emergency call-out"
    )
    assert marks_under("Training day — Scheduled")  # an all-day job, counted here
    assert marks_under("Saturday boiler start — Scheduled")[0].startswith("!! CONFLICT outside_shift [id ")
    for free in ("Site survey — Scheduled", "Late NY call — Scheduled", "Thermostat — Scheduled"):
        assert marks_under(free) == []
    assert "7 conflict(s) in the conflicts window (Europe/Berlin)" in result.stdout


def test_example_technician_feed_is_checked() -> None:
    result = run_cli("conflicts", "--config", str(ROOT / "config.example.yaml"), "--now", "2026-12-01")
    assert result.returncode == 0, result.stderr
    assert "jo: 0 conflict(s) among 2 job(s)" in result.stderr


def test_a_zone_known_only_from_its_vtimezone_and_floating_times() -> None:
    # "Site/Local" is in no tz database: its VTIMEZONE (UTC+3) decides. Floating times are read
    # in the configured zone (UTC+1 in winter), so 10:30 floating = 09:30 UTC overlaps 12:00+03.
    zone = (
        "BEGIN:VTIMEZONE\nTZID:Site/Local\nBEGIN:STANDARD\nDTSTART:19700101T000000\n"
        "TZOFFSETFROM:+0300\nTZOFFSETTO:+0300\nTZNAME:SITE\nEND:STANDARD\nEND:VTIMEZONE"
    )
    data = calendar(
        "UID:Z1\nDTSTAMP:20261130T070000Z\nDTSTART;TZID=Site/Local:20261202T120000\n"
        "DTEND;TZID=Site/Local:20261202T130000\nSUMMARY:site",
        "UID:Z2\nDTSTAMP:20261130T070000Z\nDTSTART:20261202T103000\nDTEND:20261202T110000\nSUMMARY:floating",
        "UID:Z3\nDTSTAMP:20261130T070000Z\nDTSTART:20261202T120000Z\nDTEND:20261202T123000Z\nSUMMARY:utc",
        extra=zone,
    )
    rules = rules_from(
        "sources: {s: {url: /x.ics}}\nfeeds:\n  t: {title: T, conflicts: {timezone: Europe/Berlin}}"
    )
    body = build_feeds({"s": data}, rules, NOW).feeds["t"].body
    # Not an IANA name: published under a name derived from its validated definition.
    assert re.search(rb"TZID:icalproxy-zone-[0-9a-f]{16}\r\n", body) and b"Site/Local" not in body
    conflicts = rules.feeds["t"].conflicts
    assert conflicts is not None
    report = find_conflicts("t", body, conflicts, NOW)
    assert [(c.first.uid, c.second.uid if c.second else None) for c in report.conflicts] == [("Z1", "Z2")]
    assert report.conflicts[0].first.start == datetime(2026, 12, 2, 9, 0)
    assert report.conflicts[0].second is not None
    assert report.conflicts[0].second.start == datetime(2026, 12, 2, 9, 30)
