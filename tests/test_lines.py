"""Content lines: decoding what real feeds send, folding what we send."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from icalproxy.core.lines import (
    decode,
    escape_text,
    fold,
    parse_params,
    split_line,
    split_text_list,
    unescape_text,
    unfold,
)


def texts(data: bytes) -> list[str]:
    return [text for _, text in decode(data).lines]


def test_crlf_lf_and_cr_endings_give_the_same_lines() -> None:
    lines = ["BEGIN:VCALENDAR", "SUMMARY:x", "END:VCALENDAR"]
    for ending in (b"\r\n", b"\n", b"\r"):
        assert texts(ending.join(line.encode() for line in lines) + ending) == lines


def test_bom_and_utf16_are_decoded() -> None:
    text = "BEGIN:VCALENDAR\r\nSUMMARY:Müller\r\nEND:VCALENDAR\r\n"
    assert texts(b"\xef\xbb\xbf" + text.encode()) == texts(text.encode())
    assert texts(text.encode("utf-16")) == texts(text.encode())  # with its BOM
    assert texts(text.encode("utf-16-le")) == texts(text.encode())  # without one


def test_fold_inside_a_multibyte_character_is_unfolded_on_bytes() -> None:
    raw = "SUMMARY:Bäckerei".encode()
    split = raw.index(b"\xa4")  # between the two bytes of "ä"
    data = raw[:split] + b"\r\n " + raw[split:] + b"\r\n"
    assert texts(data) == ["SUMMARY:Bäckerei"]
    assert decode(data).problems == []


def test_tab_fold_and_line_numbers_point_at_the_physical_line() -> None:
    data = b"BEGIN:VEVENT\r\nSUMMARY:a\r\n\tb\r\nUID:1\r\nEND:VEVENT\r\n"
    assert decode(data).lines == [
        (1, "BEGIN:VEVENT"),
        (2, "SUMMARY:ab"),
        (4, "UID:1"),
        (5, "END:VEVENT"),
    ]


def test_invalid_utf8_is_replaced_and_located() -> None:
    result = decode(b"A:ok\r\nB:bad \xff byte\r\n")
    assert result.lines[1] == (2, "B:bad \ufffd byte")
    assert result.problems == [(2, "invalid UTF-8 replaced by U+FFFD")]


def test_control_characters_are_removed_and_located() -> None:
    result = decode(b"SUMMARY:bell\x07 here\r\n")
    assert result.lines == [(1, "SUMMARY:bell here")]
    assert result.problems == [(1, "control characters removed")]


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
    assert texts(folded) == [line]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_text_escape_round_trip(value: str) -> None:
    value = value.replace("\r", "")
    assert unescape_text(escape_text(value)) == value
