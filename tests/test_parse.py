"""Parsing is tolerant: what cannot be used is skipped and reported with its line."""

from __future__ import annotations

import itertools

from icalproxy.core import values
from icalproxy.core.lines import ContentLine
from icalproxy.core.parse import (
    Component,
    ParsedSource,
    _check_start,
    _content_line,
    _Open,
    _plain_recurrence_key,
    _plain_start,
    parse,
    repair_date,
)
from tests.support import calendar

EVENT = "UID:{uid}\nDTSTAMP:20260101T000000Z\nDTSTART:20260110T090000Z\nSUMMARY:{uid}"


def test_several_vcalendars_and_bare_components() -> None:
    data = (
        calendar(EVENT.format(uid="a"))
        + calendar(EVENT.format(uid="b"))
        + b"BEGIN:VEVENT\r\n"
        + EVENT.format(uid="c").replace("\n", "\r\n").encode()
        + b"\r\nEND:VEVENT\r\n"
    )
    parsed = parse(data, "src")
    assert sorted(parsed.series) == ["a", "b", "c"]


def test_unknown_components_and_x_properties_are_carried_not_fatal() -> None:
    data = calendar(
        EVENT.format(uid="a") + "\nX-FOO;X-P=1:bar\nBEGIN:X-THING\nFOO:1\nEND:X-THING",
        extra="BEGIN:VTODO\nUID:t\nEND:VTODO",
    )
    parsed = parse(data, "src")
    assert list(parsed.series) == ["a"]
    assert parsed.problems == []


def test_malformed_component_is_skipped_and_located_rest_goes_on() -> None:
    data = calendar(
        "UID:no-start\nDTSTAMP:20260101T000000Z\nSUMMARY:no start",
        "UID:bad-start\nDTSTAMP:20260101T000000Z\nDTSTART:garbage",
        EVENT.format(uid="good"),
    )
    parsed = parse(data, "jobs")
    assert list(parsed.series) == ["good"]
    messages = [str(problem) for problem in parsed.problems]
    assert messages[0] == "jobs:4: VEVENT without DTSTART; skipped"
    assert messages[1].startswith("jobs:12: VEVENT with unreadable DTSTART")


def test_unclosed_and_stray_end_are_reported() -> None:
    data = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
    parsed = parse(data, "s")
    messages = [str(problem) for problem in parsed.problems]
    assert "s:4: END:VTODO without BEGIN" in messages
    assert "s:2: VEVENT not closed before END:VCALENDAR" in messages
    assert parsed.series == {}


def test_missing_uid_gets_a_stable_derived_one() -> None:
    data = calendar("DTSTART:20260110T090000Z\nSUMMARY:anonymous")
    first, second = parse(data, "s"), parse(data, "s")
    assert list(first.series) == list(second.series)
    assert next(iter(first.series)).startswith("icalproxy-")
    assert "VEVENT without UID" in str(first.problems[0])


def test_overrides_group_under_their_master_and_duplicates_keep_the_newer() -> None:
    data = calendar(
        EVENT.format(uid="r") + "\nRRULE:FREQ=DAILY;COUNT=3\nSEQUENCE:1",
        "UID:r\nRECURRENCE-ID:20260111T090000Z\nDTSTART:20260111T100000Z\nSEQUENCE:1\nSUMMARY:old",
        "UID:r\nRECURRENCE-ID:20260111T090000Z\nDTSTART:20260111T110000Z\nSEQUENCE:2\nSUMMARY:new",
    )
    series = parse(data, "s").series["r"]
    assert series.master is not None
    assert list(series.overrides) == ["20260111T090000Z"]
    assert series.overrides["20260111T090000Z"].first("SUMMARY").value == "new"  # type: ignore[union-attr]


def test_non_calendar_input_never_raises() -> None:
    for data in (
        b"",
        b"\x00\x01\x02",
        b"<html><body>login</body></html>",
        b"BEGIN:",
        b":::",
        b"END:X",
    ):
        parse(data, "junk")


def test_custom_vtimezone_with_non_olson_tzid_is_kept_by_name() -> None:
    data = calendar(
        "UID:a\nDTSTART;TZID=My Custom Zone:20260110T090000\nSUMMARY:x",
        extra="BEGIN:VTIMEZONE\nTZID:My Custom Zone\nBEGIN:STANDARD\nDTSTART:19700101T000000\n"
        "TZOFFSETFROM:+0100\nTZOFFSETTO:+0100\nEND:STANDARD\nEND:VTIMEZONE",
    )
    assert list(parse(data, "s").timezones) == ["My Custom Zone"]


def test_x_wr_timezone_applies_to_its_own_calendar_wherever_it_stands() -> None:
    data = (
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:late\r\nDTSTART:20261201T080000\r\nEND:VEVENT\r\n"
        b"X-WR-TIMEZONE:America/New_York\r\nEND:VCALENDAR\r\n"
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:none\r\nDTSTART:20261201T080000\r\nEND:VEVENT\r\n"
        b"END:VCALENDAR\r\n"
        b"BEGIN:VCALENDAR\r\nX-WR-TIMEZONE:Europe/Berlin\r\nBEGIN:VEVENT\r\nUID:open\r\n"
        b"DTSTART:20261201T080000\r\nEND:VEVENT\r\n"  # never closed: still its calendar's zone
    )
    parsed = parse(data, "s")
    zones = {uid: series.master.calendar_tz for uid, series in parsed.series.items() if series.master}
    assert zones == {"late": "America/New_York", "none": None, "open": "Europe/Berlin"}


def test_dtstarts_with_a_zone_or_a_date_are_kept_skipped_and_reported_as_before() -> None:
    starts = {
        "zoned": ("DTSTART;TZID=Europe/Berlin:20260110T090000", None),
        "zoned-utc": ("DTSTART;TZID=Etc/GMT+5:20260110T090000Z", None),
        "date": ("DTSTART;VALUE=DATE:20260110", None),
        "leap": ("DTSTART;VALUE=DATE:20240229", None),
        "zoned-leap": ("DTSTART;TZID=Europe/Berlin:20240229T090000", None),
        "no-feb-29": ("DTSTART;VALUE=DATE:20260229", "unreadable DTSTART '20260229'; skipped"),
        "no-apr-31": ("DTSTART;TZID=Europe/Berlin:20260431T090000", "unreadable DTSTART"),
        "year-0": ("DTSTART;VALUE=DATE:00000101", "unreadable DTSTART '00000101'; skipped"),
        "date-time": ("DTSTART;VALUE=DATE:20260110T090000", "VALUE=DATE with a time; time dropped"),
        "dashes": ("DTSTART;TZID=Europe/Berlin:2026-01-10", "unreadable DTSTART '2026-01-10'; skipped"),
        "date-in-zone": ("DTSTART;TZID=Europe/Berlin;VALUE=DATE:20260110", None),
        "quoted": ('DTSTART;TZID="Europe/Berlin":20260110T090000', None),
    }
    for uid, (line, expected) in starts.items():
        parsed = parse(calendar(f"UID:{uid}\n{line}\nSUMMARY:x"), "s")
        messages = [str(problem) for problem in parsed.problems]
        if expected is None:
            assert list(parsed.series) == [uid] and messages == [], uid
        else:
            assert len(messages) == 1 and messages[0].startswith("s:6: ") and expected in messages[0], uid
            assert (uid in parsed.series) == ("dropped" in expected), uid


def test_the_plain_start_shortcut_only_takes_what_the_full_check_accepts_silently() -> None:
    prefixes = [b"", b";TZID=Europe/Berlin", b";TZID=UPDATE", b";TZID=", b";tzid=X", b";X=1", b";TZID=A B"]
    prefixes += [b";VALUE=DATE", b";VALUE=date", b";VALUE=DATE-TIME", b";TZID=X;VALUE=DATE", b';TZID="X"']
    days = [b"20260110", b"20240229", b"20260229", b"19000229", b"20000229", b"20260431", b"00000101"]
    days.append(b"20261301")
    times = [b"", b"T000000", b"T235960", b"T240000", b"T100000Z", b"T1000", b"t100000"]
    for prefix, day, time, end in itertools.product(prefixes, days, times, [b"", b"\r", b" "]):
        raw = prefix + b":" + day + time + end
        if _plain_start(raw):
            parsed = ParsedSource("s", {}, {}, [])
            assert _check_start(_Open(Component("VEVENT", 1, b"", 0, 0), dtstart=raw), parsed), raw
            assert parsed.problems == [], raw


def test_the_plain_recurrence_id_shortcut_gives_the_full_path_key() -> None:
    prefixes = [b"", b";TZID=Europe/Berlin", b";TZID=", b";VALUE=DATE", b";TZID=X;VALUE=DATE", b';TZID="X"']
    days = [b"20260110", b"20240229", b"20260229", b"20260431", b"00000101", b"20261301", b"00010101"]
    times = [b"", b"T000000", b"T240000", b"T100000Z", b"T100000z", b"t100000"]
    taken = 0
    for prefix, day, time, end in itertools.product(prefixes, days, times, [b"", b"\r", b" "]):
        raw = prefix + b":" + day + time + end
        key = _plain_recurrence_key(raw)
        if key is not None:
            taken += 1
            line = _content_line("RECURRENCE-ID", raw, 0)
            assert isinstance(line, ContentLine), raw
            assert key == values.recurrence_key(repair_date(line).value), raw
    assert taken >= 24  # plain ones, with or without a zone or a time


def test_uids_and_recurrence_ids_read_the_quick_or_the_full_way_alike() -> None:
    data = calendar(
        "UID: spaced \nDTSTART:20260110T090000Z",
        "UID:a\x01b\nDTSTART:20260110T090000Z",
        "UID;X-P=1:param\nDTSTART:20260110T090000Z",
        "UID:r\nDTSTART:20260110T090000Z\nRRULE:FREQ=DAILY;COUNT=3",
        "UID:r\nRECURRENCE-ID;TZID=Europe/Berlin:20260111T090000\nDTSTART:20260111T100000Z",
        "UID:r\nRECURRENCE-ID:20260229T090000Z\nDTSTART:20260112T100000Z",
        "UID:r\nRECURRENCE-ID;VALUE=DATE:20260113\nDTSTART:20260113T100000Z",
    )
    parsed = parse(data, "s")
    assert list(parsed.series) == ["spaced", "ab", "param", "r"]
    assert list(parsed.series["r"].overrides) == ["20260111T090000", "20260113"]
    assert [str(problem) for problem in parsed.problems] == [
        "s:28: unreadable RECURRENCE-ID; override skipped"
    ]


def _late(odd_line: str) -> bytes:
    """A feed whose only odd line comes after many clean events: the scan meets it late."""
    clean = [EVENT.format(uid=f"clean-{n}") for n in range(50)]
    return calendar(*clean, "UID:late\nDTSTART:20260110T090000Z\nSUMMARY:late\n" + odd_line)


def test_a_lowercase_name_met_late_in_the_scan_is_still_read_as_its_name() -> None:
    """The one-pass scan finds odd names itself; a hit normalises the names and scans again,
    so a lowercase CLASS deep in a feed still makes its event private."""
    parsed = parse(_late("class:PRIVATE"), "src")
    assert len(parsed.series) == 51
    late = parsed.series["late"].master
    assert late is not None and [prop.value for prop in late.all("CLASS")] == ["PRIVATE"]


def test_a_fold_right_after_a_scanned_name_is_unfolded_like_any_folded_name() -> None:
    data = _late("CATEGORIES:x").replace(b"UID:late", b"UID\r\n :late")
    parsed = parse(data, "src")
    assert "late" in parsed.series and len(parsed.series) == 51
    assert parsed.problems == []
    same = parse(data.replace(b"UID\r\n :late", b"UID:late"), "src")
    assert parsed.series["late"].master.data == same.series["late"].master.data  # type: ignore[union-attr]


def test_valid_utf8_skips_only_the_check_a_caller_has_made() -> None:
    bad = calendar(EVENT.format(uid="a").replace("SUMMARY:a", "SUMMARY:caf#")).replace(b"caf#", b"caf\xff")
    assert [p.message for p in parse(bad, "s").problems][:1] == [
        "invalid UTF-8 (replaced by U+FFFD where it occurs)"
    ]
    trusted = parse(bad, "s", valid_utf8=True)
    assert trusted.problems == [] and sorted(trusted.series) == ["a"]
