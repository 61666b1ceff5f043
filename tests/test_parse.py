"""Parsing is tolerant: what cannot be used is skipped and reported with its line."""

from __future__ import annotations

from icalproxy.core.parse import parse
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
