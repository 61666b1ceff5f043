"""Outputs that every strict client reads (review with seven parsers): parameters inside
VTIMEZONE, a feed that selects nothing, Windows zone names, values of the wrong type, period
RDATEs. The named corpus files and hand-written cases also go through feedcheck's parsers."""

from __future__ import annotations

from pathlib import Path

import pytest

from icalproxy.core.pipeline import build_feeds
from tests.support import CORPUS, NOW, calendar, need_shared, rules_from, structure_problems, unfolded
from tests.test_real_clients import feedcheck

RULES = rules_from(
    "sources: {s: {url: s.ics}}\n"
    "feeds:\n"
    "  all: {title: All}\n"
    "  none: {title: None, where: {subcalendar: 'Nobody'}}\n"
    "  busy: {title: Busy, profile: busy}\n"
)
CUSTOM_ZONE = (
    "BEGIN:VTIMEZONE\nTZID:Office Zone\nBEGIN:STANDARD\nDTSTART;VALUE=DATE:20170101\n"
    "TZOFFSETFROM:+0100\nTZOFFSETTO:+0100\nRDATE;VALUE=PERIOD:20170401T000000/20170402T000000\n"
    "TZNAME:OZT\nEND:STANDARD\nEND:VTIMEZONE"
)


def _render(text: bytes, feed: str = "all") -> tuple[str, list[str]]:
    result = build_feeds({"s": text}, RULES, NOW)
    body = result.feeds[feed].body
    assert structure_problems(body) == []
    return unfolded(body), [str(problem) for problem in result.report.problems]


def test_vtimezone_parameters_are_kept_typed() -> None:
    text = calendar("UID:a\nDTSTART;TZID=Office Zone:20261201T090000\nSUMMARY:A", extra=CUSTOM_ZONE)
    body, _ = _render(text)
    # A period onset is written as its start: libical drops a period RDATE without
    # VALUE=PERIOD, icalendar rejects one with it, every reader takes a date-time.
    assert "RDATE:20170401T000000\r\n" in body
    assert "DTSTART:20170101T000000" in body  # a date start written as the local midnight


def test_a_feed_that_selects_nothing_still_holds_a_component() -> None:
    body, _ = _render(calendar("UID:a\nDTSTART:20261201T090000Z\nSUMMARY:A"), feed="none")
    assert "BEGIN:VEVENT" not in body
    assert "BEGIN:VTIMEZONE\r\nTZID:UTC" in body


def test_windows_zone_without_vtimezone_maps_to_iana() -> None:
    body, _ = _render(calendar("UID:a\nDTSTART;TZID=W. Europe Standard Time:20261201T090000\nSUMMARY:A"))
    assert "DTSTART;TZID=Europe/Berlin:20261201T090000" in body
    assert "TZID:Europe/Berlin\r\n" in body


def test_until_takes_dtstart_s_type() -> None:
    zoned = calendar("UID:a\nDTSTART;TZID=America/New_York:20261201T090000\nRRULE:FREQ=WEEKLY;UNTIL=20261231")
    body, problems = _render(zoned)
    assert "RRULE:FREQ=WEEKLY;UNTIL=20261231T235959Z" in body
    assert any("UNTIL" in problem for problem in problems)
    dated = calendar("UID:b\nDTSTART;VALUE=DATE:20261201\nRRULE:FREQ=WEEKLY;UNTIL=20261231T100000Z")
    assert "RRULE:FREQ=WEEKLY;UNTIL=20261231\r\n" in _render(dated)[0]
    floating = calendar("UID:c\nDTSTART:20261201T090000\nRRULE:FREQ=WEEKLY;UNTIL=20261231T100000Z")
    assert "RRULE:FREQ=WEEKLY;UNTIL=20261231T100000\r\n" in _render(floating)[0]


def test_dtstamp_is_utc() -> None:
    body, problems = _render(calendar("UID:a\nDTSTAMP:20261101T080000\nDTSTART:20261201T090000Z"))
    # Published stamps follow the visible content (stamps.py), always in UTC.
    assert "DTSTAMP:19700101T000000Z" in body and "DTSTAMP:20261101T080000\r\n" not in body
    assert not any("DTSTAMP" in problem for problem in problems)  # never published: no repair to report


def test_dtend_before_dtstart_is_dropped() -> None:
    body, problems = _render(calendar("UID:a\nDTSTART:20261201T090000Z\nDTEND:20261201T080000Z\nSUMMARY:A"))
    assert "DTEND" not in body and "DTSTART:20261201T090000Z" in body
    assert any("DTEND before DTSTART" in problem for problem in problems)


def test_exdate_and_recurrence_id_take_dtstart_s_type() -> None:
    text = calendar(
        "UID:a\nDTSTART;TZID=Europe/Berlin:20261201T090000\nRRULE:FREQ=DAILY;COUNT=5\n"
        "EXDATE;VALUE=DATE:20261202\nSUMMARY:A",
        "UID:a\nRECURRENCE-ID;VALUE=DATE:20261203\nDTSTART;TZID=Europe/Berlin:20261203T100000\nSUMMARY:A",
    )
    body, _ = _render(text)
    assert "EXDATE;TZID=Europe/Berlin:20261202T090000" in body
    assert "RECURRENCE-ID;TZID=Europe/Berlin:20261203T090000" in body
    dated = calendar("UID:b\nDTSTART;VALUE=DATE:20261201\nRRULE:FREQ=DAILY;COUNT=5\nEXDATE:20261202T000000Z")
    assert "EXDATE;VALUE=DATE:20261202" in _render(dated)[0]


def test_period_rdates_become_what_clients_iterate() -> None:
    text = calendar(
        "UID:a\nDTSTART:20261201T090000Z\nDTEND:20261201T100000Z\nSUMMARY:A\n"
        "RDATE;VALUE=PERIOD:20261203T090000Z/PT1H,20261205T090000Z/20261205T120000Z"
    )
    body, _ = _render(text)
    assert "RDATE:20261203T090000Z" in body
    assert "VALUE=PERIOD" not in body
    assert "UID:a-P20261205T090000Z" in body and "DURATION:PT3H" in body
    assert body.count("BEGIN:VEVENT") == 2


CORPUS_FILES = [
    "ical4j__ical4j/src__test__resources__samples__valid__bitfire1.ics",
    "collective__icalendar/src__icalendar__tests__calendars__issue_218_bad_tzid.ics",
    "ical4j__ical4j/src__test__resources__samples__valid__evolution2.ics",
    "allenporter__ical/tests__compat__testdata__office_365_invalid_timezone.ics",
    "allenporter__ical/tests__compat__testdata__google_dtstart_until_mismatch.ics",
    "pimutils__khal/tests__ics__invalid_tzoffset.ics",
]


@pytest.mark.slow
def test_named_corpus_files_and_own_cases_pass_real_parsers(tmp_path: Path) -> None:
    need_shared(CORPUS)
    inputs = {name: (CORPUS / name).read_bytes() for name in CORPUS_FILES if (CORPUS / name).exists()}
    assert len(inputs) >= 5
    inputs["own-zone"] = calendar(
        "UID:a\nDTSTART;TZID=Office Zone:20261201T090000\nSUMMARY:A", extra=CUSTOM_ZONE
    )
    inputs["own-period"] = calendar(
        "UID:a\nDTSTART:20261201T090000Z\nDTEND:20261201T100000Z\n"
        "RDATE;VALUE=PERIOD:20261203T090000Z/PT1H,20261205T090000Z/PT3H"
    )
    inputs["own-types"] = calendar(
        "UID:a\nDTSTAMP:20261101T080000\nDTSTART;TZID=America/New_York:20261201T090000\n"
        "DTEND;TZID=America/New_York:20261201T080000\nRRULE:FREQ=WEEKLY;UNTIL=20261231\n"
        "EXDATE;VALUE=DATE:20261208"
    )
    paths = []
    for index, (name, data) in enumerate(sorted(inputs.items())):
        for feed in build_feeds({"s": data}, RULES, NOW).feeds.values():
            path = tmp_path / f"{index:02d}-{Path(name).stem[-40:]}-{feed.name}.ics"
            path.write_bytes(feed.body)
            paths.append(path)
    output = feedcheck(*paths)
    assert " 0 failed" in output.splitlines()[-1], output[-3000:]
