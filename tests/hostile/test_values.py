"""Class 2: every kept value is parsed into its typed form and written again. Free text in a
TZID, VALUE or RANGE parameter, in RRULE parts or in VTIMEZONE sub-properties never reaches
a subscriber; what does not parse is dropped with a report line."""

from __future__ import annotations

import re

import pytest

from tests.hostile.markers import EVERY, assert_clean, calendar, event, render

BERLIN = "\r\n".join(
    [
        "BEGIN:VTIMEZONE",
        "TZID:{tzid}",
        "{zone_extra}",
        "BEGIN:STANDARD",
        "DTSTART:19701025T030000",
        "TZOFFSETFROM:+0200",
        "TZOFFSETTO:+0100",
        "TZNAME:{tzname}",
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU{rrule_extra}",
        "{rule_extra}",
        "END:STANDARD",
        "BEGIN:DAYLIGHT",
        "DTSTART:19700329T020000",
        "TZOFFSETFROM:+0100",
        "TZOFFSETTO:+0200",
        "TZNAME:CEST",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
        "END:DAYLIGHT",
        "END:VTIMEZONE",
    ]
)


def zone(
    tzid: str = "Europe/Berlin",
    zone_extra: str = "X-LIC-LOCATION:Europe/Berlin",
    tzname: str = "CET",
    rrule_extra: str = "",
    rule_extra: str = "COMMENT:standard time",
) -> str:
    return BERLIN.format(
        tzid=tzid, zone_extra=zone_extra, tzname=tzname, rrule_extra=rrule_extra, rule_extra=rule_extra
    )


TZID_CASES = {
    "vendor path with text": "/SECRET-vendor/20250101_1/Europe/Berlin",
    "vendor path, two levels": "/example.org/SECRET/Europe/Berlin",
    "text before a zone": "SECRET Europe/Berlin",
    "zone with spaces around": " SECRET ",
    "quoted text": '"SECRET:Europe/Berlin"',
}


@pytest.mark.parametrize("tzid", TZID_CASES.values(), ids=TZID_CASES.keys())
def test_free_text_tzid_parameter(tzid: str) -> None:
    result = render(calendar(event("SUMMARY:Job", start=f"DTSTART;TZID={tzid}:20261201T090000")))
    assert_clean(result, EVERY)


def test_vendor_path_resolves_to_the_canonical_zone() -> None:
    result = render(
        calendar(event("SUMMARY:Job", start="DTSTART;TZID=/SECRET/1/Europe/Berlin:20261201T090000"))
    )
    body = result.feeds["client"].body.decode()
    assert "DTSTART;TZID=Europe/Berlin:20261201T090000" in body
    assert "TZID:Europe/Berlin" in body


def test_source_vtimezone_with_a_free_text_name_is_renamed() -> None:
    tzid = "SECRET internal zone (Berlin office)"
    text = calendar(zone(tzid=tzid), event("SUMMARY:Job", start=f"DTSTART;TZID={tzid}:20261201T090000"))
    result = render(text)
    assert_clean(result, EVERY)
    body = result.feeds["client"].body.decode()
    # Its X-LIC-LOCATION names an IANA zone: published under that name.
    assert "DTSTART;TZID=Europe/Berlin:20261201T090000" in body


def test_custom_zone_gets_a_derived_name_and_validated_lines() -> None:
    tzid = "SECRET custom zone"
    text = calendar(
        zone(tzid=tzid, zone_extra="X-SECRET-PROP:SECRET", rule_extra="X-SECRET:SECRET"),
        event("SUMMARY:Job", start=f"DTSTART;TZID={tzid}:20261201T090000"),
    )
    result = render(text)
    assert_clean(result, EVERY)
    body = result.feeds["client"].body.decode()
    found = re.search(r"DTSTART;TZID=(icalproxy-zone-[0-9a-f]{16}):20261201T090000", body)
    assert found is not None
    assert f"TZID:{found[1]}" in body


VTIMEZONE_CASES = {
    "X-LIC-LOCATION": {"zone_extra": "X-LIC-LOCATION:SECRET"},
    "LAST-MODIFIED text": {"zone_extra": "LAST-MODIFIED:SECRET"},
    "TZURL": {"zone_extra": "TZURL:http://SECRET.example/zone"},
    "TZNAME free text": {"tzname": "SECRET standard time"},
    "RRULE extra part": {"rrule_extra": ";X-NOTE=SECRET"},
    "RRULE lowercase part": {"rrule_extra": ";note=SECRET"},
    "RDATE with text": {"rule_extra": "RDATE:SECRET"},
    "RDATE with a parameter": {"rule_extra": "RDATE;X-P=SECRET:19801025T030000"},
    "X- in a rule": {"rule_extra": "X-SECRET:SECRET"},
    "COMMENT in a rule": {"rule_extra": "COMMENT:SECRET"},
}


@pytest.mark.parametrize("parts", VTIMEZONE_CASES.values(), ids=VTIMEZONE_CASES.keys())
def test_vtimezone_sub_properties_are_never_copied(parts: dict[str, str]) -> None:
    text = calendar(zone(**parts), event("SUMMARY:Job", start="DTSTART;TZID=Europe/Berlin:20261201T090000"))
    result = render(text)
    assert_clean(result, EVERY)
    assert "TZID:Europe/Berlin" in result.feeds["client"].body.decode()


def test_x_wr_timezone_with_text_is_not_a_zone() -> None:
    result = render(
        calendar(event("SUMMARY:Job", start="DTSTART:20261201T090000"), extra="X-WR-TIMEZONE:SECRET")
    )
    assert_clean(result, EVERY)


def test_x_wr_timezone_vendor_path_resolves() -> None:
    text = calendar(
        event("SUMMARY:Job", start="DTSTART:20261201T090000"), extra="X-WR-TIMEZONE:/SECRET/Europe/Paris"
    )
    result = render(text)
    assert_clean(result, EVERY)
    assert "DTSTART;TZID=Europe/Paris:20261201T090000" in result.feeds["client"].body.decode()


PARAMETER_CASES = {
    "VALUE text": 'DTEND;VALUE="SECRET text":20261201T100000Z',
    "VALUE unquoted": "DTEND;VALUE=SECRET:20261201T100000Z",
    "RANGE text on RECURRENCE-ID": None,
    "X- parameter": "DTEND;X-NOTE=SECRET:20261201T100000Z",
    "CN on a time": 'DTEND;CN="SECRET":20261201T100000Z',
    "EXDATE VALUE text": 'EXDATE;VALUE="SECRET":20261208T090000Z',
    "RDATE VALUE text": "RDATE;VALUE=SECRET:20261208T090000Z",
    "EXDATE with text": "EXDATE:20261208T090000Z,SECRET",
    "DURATION with text": "DURATION:PT1H SECRET",
    "SEQUENCE with text": "SEQUENCE:1 SECRET",
    "STATUS with text": "STATUS:SECRET",
    "TRANSP with text": "TRANSP:OPAQUE SECRET",
    "DTSTAMP with text": "DTSTAMP:SECRET",
    "LAST-MODIFIED with a parameter": "LAST-MODIFIED;X-A=SECRET:20261101T000000Z",
}


PARAMETER_LINES = {name: line for name, line in PARAMETER_CASES.items() if line}


@pytest.mark.parametrize("line", PARAMETER_LINES.values(), ids=PARAMETER_LINES.keys())
def test_parameters_and_values_of_kept_properties(line: str) -> None:
    result = render(calendar(event("SUMMARY:Job", "RRULE:FREQ=WEEKLY;COUNT=3", line)))
    assert_clean(result, EVERY)


def test_range_with_text_on_an_override() -> None:
    text = calendar(
        event("SUMMARY:Job", "RRULE:FREQ=WEEKLY;COUNT=3"),
        event(
            "SUMMARY:Moved", "RECURRENCE-ID;RANGE=SECRET:20261208T090000Z", start="DTSTART:20261209T090000Z"
        ),
    )
    result = render(text)
    assert_clean(result, EVERY)
    assert "RECURRENCE-ID:20261208T090000Z" in result.feeds["client"].body.decode()


def test_range_thisandfuture_is_kept() -> None:
    text = calendar(
        event("SUMMARY:Job", "RRULE:FREQ=WEEKLY;COUNT=3"),
        event(
            "SUMMARY:Moved",
            "RECURRENCE-ID;RANGE=thisandfuture:20261208T090000Z",
            start="DTSTART:20261209T090000Z",
        ),
    )
    assert "RECURRENCE-ID;RANGE=THISANDFUTURE:20261208T090000Z" in render(text).feeds["client"].body.decode()


RRULE_CASES = {
    "NOTE part": "RRULE:FREQ=WEEKLY;COUNT=3;NOTE=SECRET",
    "lowercase x part": "RRULE:freq=weekly;count=3;x=SECRET",
    "X- part": "RRULE:FREQ=WEEKLY;X-NAME=SECRET;COUNT=3",
    "text in BYDAY": "RRULE:FREQ=WEEKLY;BYDAY=MO,SECRET",
    "text in UNTIL": "RRULE:FREQ=WEEKLY;UNTIL=SECRET",
    "RSCALE": "RRULE:RSCALE=SECRET;FREQ=WEEKLY;COUNT=3",
}


@pytest.mark.parametrize("rrule", RRULE_CASES.values(), ids=RRULE_CASES.keys())
def test_rrule_keeps_only_rfc_parts(rrule: str) -> None:
    result = render(calendar(event("SUMMARY:Job", rrule)))
    assert_clean(result, EVERY)


def test_rrule_is_written_in_canonical_order_and_reported() -> None:
    result = render(calendar(event("SUMMARY:Job", "RRULE:count=3;byday=mo;x-a=1;freq=weekly")))
    body = result.feeds["client"].body.decode()
    assert "RRULE:FREQ=WEEKLY;COUNT=3;BYDAY=MO\r\n" in body
    assert any("RRULE parts" in str(problem) and "X-A" in str(problem) for problem in result.report.problems)
    assert all("x-a=1" not in str(problem) for problem in result.report.problems)
