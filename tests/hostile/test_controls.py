"""Class 3: TEXT and parameter values never carry CR, LF, NEL, line or paragraph separators or
other C0/C1 controls (only escaped newlines), so no reader sees an injected property."""

from __future__ import annotations

import re

import pytest

from tests.hostile.markers import EVERY, calendar, event, leaks, render

# A control followed by what a reader would take for a new property.
INJECTIONS = {
    "bare CR": "\r",
    "NEL": "\u0085",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "vertical tab": "\x0b",
    "form feed": "\x0c",
    "C1 control": "\u009b",
    "NUL": "\x00",
    "escape": "\x1b",
}
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def _physical_lines_are_content_lines(body: bytes) -> None:
    text = body.decode()
    assert "\r\n" in text
    assert not CONTROLS.search(text.replace("\r\n", "")), "a control character in the output"
    for line in text.split("\r\n")[:-1]:
        assert line.startswith(" ") or re.match(r"[A-Z0-9-]+[;:]", line), repr(line)


@pytest.mark.parametrize("control", INJECTIONS.values(), ids=INJECTIONS.keys())
@pytest.mark.parametrize("prop", ["SUMMARY", "X-TEAMUP-STATUS", "LOCATION", "CATEGORIES"])
def test_controls_in_text_values(control: str, prop: str) -> None:
    value = f"Client: Acme{control}ATTENDEE:mailto:x@SECRET.example"
    lines = ["SUMMARY:Job", f"{prop}:{value}"] if prop != "SUMMARY" else [f"SUMMARY:{value}"]
    result = render(calendar(event(*lines)).encode("utf-8", "surrogatepass"))
    for name in EVERY:
        body = result.feeds[name].body
        _physical_lines_are_content_lines(body)
        logical = body.decode().replace("\r\n ", "").split("\r\n")
        assert not any(line.startswith("ATTENDEE") for line in logical), name
        assert not leaks(body), name


@pytest.mark.parametrize("control", INJECTIONS.values(), ids=INJECTIONS.keys())
def test_controls_in_parameter_values(control: str) -> None:
    start = f"DTSTART;TZID=Europe/Berlin{control}X-INJECTED=1:20261201T090000"
    result = render(calendar(event("SUMMARY:Job", start=start)).encode("utf-8", "surrogatepass"))
    for name in EVERY:
        _physical_lines_are_content_lines(result.feeds[name].body)


def test_feed_title_with_controls() -> None:
    from tests.support import rules_from

    rules = rules_from('sources: {s: {url: s.ics}}\nfeeds: {f: {title: "A\\u2028B\\u0085C"}}\n')
    result = render(calendar(event("SUMMARY:Job")), rules)
    _physical_lines_are_content_lines(result.feeds["f"].body)
