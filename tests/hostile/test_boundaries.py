"""Class 1: component boundaries are found on unfolded, case-normalised names; a dropped
sub-component takes all its lines with it at any depth; an unclosed one ends at its
parent's END. An alarm's SUMMARY never becomes the event's title."""

from __future__ import annotations

import pytest

from tests.hostile.markers import EVERY, assert_clean, calendar, event, render

ALARM_LINES = [
    "SUMMARY:SECRET alarm title",
    "DESCRIPTION:SECRET alarm text",
    "ACTION:DISPLAY",
    "TRIGGER:-PT15M",
]

CASES = {
    "begin folded inside the name": ["BEG\r\n IN:VALARM", *ALARM_LINES, "END:VALARM"],
    "begin folded inside the value": ["BEGIN:VAL\r\n ARM", *ALARM_LINES, "END:VALARM"],
    "end folded inside the name": ["BEGIN:VALARM", *ALARM_LINES, "EN\r\n D:VALARM"],
    "end folded inside the value": ["BEGIN:VALARM", *ALARM_LINES, "END:VA\r\n LARM"],
    "folded several times": ["B\r\n E\r\n GIN:V\r\n ALARM", *ALARM_LINES, "END:VALARM"],
    "empty line then a fold": ["", " BEGIN:VALARM", *ALARM_LINES, "END:VALARM"],
    "lower case names": ["begin:valarm", *[line.lower() for line in ALARM_LINES], "end:valarm"],
    "mixed case value": ["BEGIN:vAlArM", *ALARM_LINES, "END:VaLaRm"],
    "parameters on BEGIN": ["BEGIN;X-A=1:VALARM", *ALARM_LINES, "END;X-A=1:VALARM"],
    "alarm never closed": ["BEGIN:VALARM", *ALARM_LINES],
    "unknown sub-component": ["BEGIN:X-NOTES", "SUMMARY:SECRET note", "END:X-NOTES"],
    "unknown sub-component never closed": ["BEGIN:X-NOTES", "SUMMARY:SECRET note"],
    "alarm inside an unknown sub-component": [
        "BEGIN:X-WRAP",
        "BEGIN:VALARM",
        *ALARM_LINES,
        "END:VALARM",
        "END:X-WRAP",
    ],
    "nested deeper than the depth limit": [
        *[f"BEGIN:X-L{i}" for i in range(12)],
        "SUMMARY:SECRET deep",
        "LOCATION:SECRET deep place",
        *[f"END:X-L{i}" for i in reversed(range(12))],
    ],
    "nested too deep and never closed": [*[f"BEGIN:X-L{i}" for i in range(12)], "SUMMARY:SECRET deep"],
    "END of another name inside the alarm": ["BEGIN:VALARM", *ALARM_LINES, "END:X-OTHER", "END:VALARM"],
}


@pytest.mark.parametrize("lines", CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("before", [True, False], ids=["alarm-first", "summary-first"])
def test_sub_component_text_never_becomes_the_event_s(lines: list[str], before: bool) -> None:
    own = ["SUMMARY:Boiler service", "DESCRIPTION:Status: Scheduled"]
    body = [*lines, *own] if before else [*own, *lines]
    result = render(calendar(event(*body)))
    assert_clean(result, EVERY)
    for name in EVERY:
        text = result.feeds[name].body.decode()
        assert text.count("BEGIN:VEVENT") == 1, name
        # An unclosed sub-component ends at the event's END: lines after it are its own.
        swallowed = before and "END:" not in " ".join(lines[1:])
        if name != "busy" and not swallowed:
            assert "SUMMARY:Boiler service" in text, name


def test_an_event_without_own_summary_does_not_borrow_the_alarm_s() -> None:
    result = render(calendar(event("BEG\r\n IN:VALARM", *ALARM_LINES, "END:VALARM")))
    assert_clean(result, EVERY)


def test_an_unclosed_event_inside_a_closed_calendar_is_not_published() -> None:
    text = calendar("BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20261201T090000Z\r\nSUMMARY:SECRET half")
    assert_clean(render(text), EVERY)


@pytest.mark.parametrize(
    "begin", ["BEGIN:\x00VEVENT", "BEGIN:VEV\x01ENT", "BEGIN:\x7fVEVENT", "BEGIN:VEV\r\n \x00ENT"]
)
def test_a_component_name_with_a_control_character_is_no_event(begin: str) -> None:
    """Other readers see "\\x00VEVENT", not VEVENT: what it holds (a UID, a title) was never an
    event of the calendar, so none of it is published (found by the marker fuzzer)."""
    end = begin.replace("BEGIN", "END")
    text = calendar(f"{begin}\r\nUID:SECRET-uid\r\nDTSTART:20261201T090000Z\r\nSUMMARY:SECRET title\r\n{end}")
    result = render(text)
    assert_clean(result, EVERY)
    assert all(b"BEGIN:VEVENT" not in feed.body for feed in result.feeds.values())
