"""The one-pass line pattern of redaction, grouped under the first byte of each name, finds
exactly the lines (kind, name and rest) that one flat alternation finds: simple valid lines
first, then lines only the templates read, then any other wanted line, longest names first.
Checked against that flat alternation, with the names a rules file may put in ``keep``."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from icalproxy.core.parse import LINE_REST, name_alternation
from icalproxy.core.redact import (
    _LIST_REST,
    _PUBLIC_CLASS,
    _TIME_REST,
    BASE_KEEP,
    INPUT_LINE,
    OTHER_LINE,
    SIMPLE_LINE,
    _combined_pattern,
)

_SIMPLE = (
    rb"(?:(?:DTSTART|DTEND|RECURRENCE-ID)(?:" + _TIME_REST + rb")"
    rb"|(?:EXDATE|RDATE)(?:" + _LIST_REST + rb")"
    rb"|TRANSP:(?:OPAQUE|TRANSPARENT)|STATUS:(?:TENTATIVE|CONFIRMED|CANCELLED))"
    rb"(?=\r?(?:\n(?![ \t])|\Z))"
)


def _flat(inputs: frozenset[str], others: frozenset[str], skip_public_class: bool) -> re.Pattern[bytes]:
    other = name_alternation(others - {"CLASS"})
    if "CLASS" in others:
        other += b"|CLASS" + (_PUBLIC_CLASS if skip_public_class else b"")
    template_only = rb"(" + name_alternation(inputs) + rb")" + LINE_REST
    return re.compile(
        rb"\n(?:(" + _SIMPLE + rb")|" + template_only + rb"|(" + other + rb")" + LINE_REST + rb")"
    )


def _flat_lines(pattern: re.Pattern[bytes], data: bytes) -> list[tuple[int, int, bytes, bytes]]:
    found = []
    for match in pattern.finditer(data):
        if match.lastindex == 1:
            simple = match[1]
            colon = simple.find(b":")
            semi = simple.find(b";", 0, colon)
            name = simple[:colon] if semi < 0 else simple[:semi]
            found.append((match.start(), SIMPLE_LINE, name, simple[len(name) :]))
        elif match.lastindex == 3:
            found.append((match.start(), INPUT_LINE, match[2], match[3]))
        else:
            found.append((match.start(), OTHER_LINE, match[4], match[5]))
    return found


def _grouped_lines(
    inputs: frozenset[str], others: frozenset[str], skip: bool, data: bytes
) -> list[tuple[int, int, bytes, bytes]]:
    pattern, kinds = _combined_pattern(inputs, others, skip)
    found = []
    for match in pattern.finditer(data):
        group = match.lastindex or 0
        kind, raw_name, _, _, _ = kinds[group]
        found.append((match.start(), kind, raw_name, match[group]))
    return found


BASE = (frozenset(BASE_KEEP) | {"CLASS"}) - {"UID"}  # wanted by every profile
NAMES = [
    *sorted(BASE),
    "SUMMARY",
    "DESCRIPTION",
    "LOCATION",
    "X-TEAMUP-STATUS",
    "X-TEAMUP-STAT",
    "STATUSX",
    "SUMMARY;X",
    "DTSTART;TZID=Europe/Berlin",
    "CLASSIFIED",
    "GEO",
    "G",
    "A:B",
    "A",
    "",
    "É",
]
RESTS = [
    b":20261201T080000Z",
    b":20261201T080000",
    b";TZID=Europe/Berlin:20261201T080000",
    b";TZID=Europe/Berlin:20261201T080000Z",
    b";VALUE=DATE:20261201",
    b";VALUE=DATE:20261201,20261202",
    b":20261201T080000Z,20261202T080000Z",
    b":20260229T080000Z",
    b":00001201T080000Z",
    b":20261201T246000Z",
    b":OPAQUE",
    b":opaque",
    b":TRANSPARENT",
    b":CANCELLED",
    b":PUBLIC",
    b":PRIVATE",
    b":PUBLIC\r\n X",
    b"\r\n :PUBLIC",
    b";X-NOTE=a:b",
    b":text\\, more",
    b":B:c",
    b";X:y",
    b":20261201T080000Z\r\n ",
    b"\r\n\t;TZID=X:1",
    b":value\r",
    b"X:not this name",
    b"",
]


@st.composite
def _events(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(RESTS)), max_size=12))
    ending = draw(st.sampled_from([b"\r\n", b"\n"]))
    return b"".join(ending + name.encode() + rest for name, rest in lines) + ending


_NAME_SETS = st.frozensets(st.sampled_from(NAMES), max_size=8)


@settings(max_examples=400, deadline=None)
@given(data=_events(), inputs=_NAME_SETS, keep=_NAME_SETS, skip=st.booleans())
def test_grouped_pattern_finds_what_the_flat_alternation_finds(
    data: bytes, inputs: frozenset[str], keep: frozenset[str], skip: bool
) -> None:
    others = (BASE | keep) - inputs
    assert _grouped_lines(inputs, others, skip, data) == _flat_lines(_flat(inputs, others, skip), data)


def test_the_usual_profile_lines() -> None:
    inputs = frozenset({"SUMMARY", "DESCRIPTION", "X-TEAMUP-STATUS"})
    others = BASE
    data = b"".join(b"\r\n" + name.encode() + rest for name in NAMES for rest in RESTS) + b"\r\n"
    for skip in (False, True):
        found = _grouped_lines(inputs, others, skip, data)
        assert found == _flat_lines(_flat(inputs, others, skip), data)
        assert {kind for _, kind, _, _ in found} == {SIMPLE_LINE, INPUT_LINE, OTHER_LINE}
