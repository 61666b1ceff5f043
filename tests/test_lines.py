"""Content lines: reading what real feeds send (through parse), folding what we send."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from icalproxy.core.facts import description_field
from icalproxy.core.lines import (
    escape_text,
    fold,
    parse_params,
    split_line,
    split_text_list,
    unescape_text,
    unfold,
)
from icalproxy.core.parse import parse
from icalproxy.core.typed import clean_text


def summaries(data: bytes) -> dict[str, str]:
    """UID → SUMMARY text, read the way the pipeline reads a source."""
    parsed = parse(data, "s")
    found = {}
    for uid, series in parsed.series.items():
        assert series.master is not None
        summary = series.master.first("SUMMARY")
        found[uid] = summary.text() if summary is not None else ""
    return found


EVENT = [
    "BEGIN:VCALENDAR",
    "BEGIN:VEVENT",
    "UID:1",
    "DTSTART:20261201T080000Z",
    "SUMMARY:Müller",
    "END:VEVENT",
    "END:VCALENDAR",
]


def test_crlf_lf_and_cr_endings_read_the_same() -> None:
    for ending in ("\r\n", "\n", "\r"):
        assert summaries((ending.join(EVENT) + ending).encode()) == {"1": "Müller"}


def test_bom_and_utf16_are_decoded() -> None:
    text = "\r\n".join(EVENT) + "\r\n"
    assert summaries(b"\xef\xbb\xbf" + text.encode()) == {"1": "Müller"}
    assert summaries(text.encode("utf-16")) == {"1": "Müller"}  # with its BOM
    assert summaries(text.encode("utf-16-le")) == {"1": "Müller"}  # without one


def test_fold_inside_a_multibyte_character_is_unfolded_on_bytes() -> None:
    raw = "\r\n".join(EVENT).replace("Müller", "Bäckerei").encode()
    split = raw.index(b"\xa4")  # between the two bytes of "ä"
    data = raw[:split] + b"\r\n " + raw[split:] + b"\r\n"
    assert summaries(data) == {"1": "Bäckerei"}
    assert parse(data, "s").problems == []


def test_tab_fold_and_line_numbers_point_at_the_physical_line() -> None:
    data = b"BEGIN:VEVENT\r\nSUMMARY:a\r\n\tb\r\nUID:1\r\nDTSTART:2026\r\nEND:VEVENT\r\n"
    parsed = parse(data, "jobs")
    assert [str(problem) for problem in parsed.problems] == [
        "jobs:5: VEVENT with unreadable DTSTART '2026'; skipped"
    ]
    good = data.replace(b"DTSTART:2026", b"DTSTART:20260101")
    assert summaries(good) == {"1": "ab"}


def test_invalid_utf8_is_replaced_and_located() -> None:
    data = "\r\n".join(EVENT).encode().replace(b"M\xc3\xbcller", b"bad \xff byte") + b"\r\n"
    parsed = parse(data, "s")
    assert summaries(data) == {"1": "bad \ufffd byte"}
    assert [str(problem) for problem in parsed.problems] == [
        "s:5: invalid UTF-8 (replaced by U+FFFD where it occurs)"
    ]


def test_control_characters_are_removed() -> None:
    data = "\r\n".join(EVENT).replace("Müller", "bell\x07 here").encode()
    assert summaries(data) == {"1": "bell here"}


def test_quoted_parameter_values_may_hold_colon_semicolon_comma() -> None:
    line = split_line('ATTENDEE;CN="Doe; John, Jr: CEO";ROLE=CHAIR:mailto:j@x.example', 1)
    assert line is not None
    assert line.name == "ATTENDEE"
    assert line.value == "mailto:j@x.example"
    assert parse_params(line.params) == [("CN", ["Doe; John, Jr: CEO"]), ("ROLE", ["CHAIR"])]


def test_lowercase_names_and_junk_lines() -> None:
    line = split_line("dtstart;tzid=Europe/Berlin:20260101T090000", 3)
    assert line is not None and line.name == "DTSTART" and line.param("TZID") == "Europe/Berlin"
    assert split_line("no colon here", 1) is None
    assert split_line("bad name!:x", 1) is None


def test_categories_list_keeps_escaped_commas() -> None:
    assert split_text_list(r"Client: Smith\, Jones & Partners,Technician: Jo") == [
        "Client: Smith, Jones & Partners",
        "Technician: Jo",
    ]


def test_fold_never_exceeds_75_octets_or_splits_a_character() -> None:
    line = "SUMMARY:" + "äöü🔥" * 40
    folded = fold(line)
    for physical in folded.split(b"\r\n")[:-1]:
        assert len(physical) <= 75
        physical.decode("utf-8")  # raises if a character was split
    assert unfold(folded).rstrip(b"\r\n").decode() == line


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=400))
def test_fold_unfold_round_trip(value: str) -> None:
    line = "DESCRIPTION:" + value
    folded = fold(line)
    assert folded.endswith(b"\r\n")
    assert all(len(part) <= 75 for part in folded.split(b"\r\n"))
    assert unfold(folded).rstrip(b"\r\n").decode() == line


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_text_escape_round_trip(value: str) -> None:
    """Text round-trips as its control-free form (line breaks of any kind become newlines)."""
    assert unescape_text(escape_text(value)) == clean_text(value)
    assert not CONTROLS.search(escape_text(value))


CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def test_invalid_utf8_after_folded_lines_is_located_on_its_physical_line() -> None:
    lines = [*EVENT[:4], "DESCRIPTION:long", " folded", " twice", "SUMMARY:bad \udcff byte", *EVENT[5:]]
    data = "\r\n".join(lines).encode("utf-8", "surrogateescape") + b"\r\n"
    assert [str(p) for p in parse(data, "s").problems] == [
        "s:8: invalid UTF-8 (replaced by U+FFFD where it occurs)"
    ]


_ESCAPES = st.text(alphabet="\\nN,;:a \t\nSstu", max_size=60)


@given(_ESCAPES)
def test_unescape_text_reads_like_the_one_regex_definition(value: str) -> None:
    reference = re.sub(r"\\(.)", lambda m: "\n" if m[1] in "nN" else m[1], value)
    assert unescape_text(value) == reference


@given(st.lists(st.tuples(st.text(alphabet="Sstau \t:", max_size=8), st.text(alphabet="ab :\t", max_size=6))))
def test_description_field_reads_the_first_matching_line(pairs: list[tuple[str, str]]) -> None:
    text = "\n".join(f"{key}:{value}" for key, value in pairs)
    found: dict[str, str] = {}
    for match in re.finditer(r"^[ \t]*([^:\n]{1,60}?)[ \t]*:[ \t]*(.*?)[ \t]*$", text, re.MULTILINE):
        found.setdefault(match[1].casefold(), match[2])
    assert description_field(text, "Status") == found.get("status")


@given(st.binary(max_size=80).map(lambda b: b.replace(b"\r", b"\r\n ")))
def test_unfold_removes_every_fold(data: bytes) -> None:
    assert unfold(data) == re.sub(rb"\r?\n[ \t]", b"", data)
