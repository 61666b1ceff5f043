"""Class 6: RFC 5545 — an unknown CLASS is PRIVATE; malformed values count as private; an
override of a private series inherits the master's privacy unless it says otherwise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icalproxy.core.parse import parse
from icalproxy.core.pipeline import _is_private
from tests.hostile.markers import REDACTING, assert_clean, calendar, event, render

VALUES = [
    "PRIVATE",
    "CONFIDENTIAL",
    "X-SECRET-CLASS",
    '"PRIVATE"',
    "PRIVATE,PUBLIC",
    "private",
    "",
    "PUB LIC",
]


@pytest.mark.parametrize("value", VALUES)
def test_anything_but_public_is_private(value: str) -> None:
    result = render(calendar(event("SUMMARY:SECRET private title", f"CLASS:{value}")))
    assert_clean(result, REDACTING)
    assert "SUMMARY:Reserved" in result.feeds["client"].body.decode()


def test_public_class_shows_the_title() -> None:
    result = render(calendar(event("SUMMARY:Open job", "CLASS:public")))
    assert "SUMMARY:Open job" in result.feeds["client"].body.decode()


def test_override_of_a_private_series_inherits_privacy() -> None:
    text = calendar(
        event("SUMMARY:SECRET series", "CLASS:PRIVATE", "RRULE:FREQ=WEEKLY;COUNT=3"),
        event("SUMMARY:SECRET moved", "RECURRENCE-ID:20261208T090000Z", start="DTSTART:20261209T090000Z"),
    )
    result = render(text)
    assert_clean(result, REDACTING)
    assert result.feeds["client"].body.decode().count("SUMMARY:Reserved") == 2


def test_override_saying_public_is_shown() -> None:
    text = calendar(
        event("SUMMARY:SECRET series", "CLASS:PRIVATE", "RRULE:FREQ=WEEKLY;COUNT=3"),
        event(
            "SUMMARY:Open day",
            "CLASS:PUBLIC",
            "RECURRENCE-ID:20261208T090000Z",
            start="DTSTART:20261209T090000Z",
        ),
    )
    body = render(text).feeds["client"].body.decode()
    assert "SUMMARY:Open day" in body and body.count("SUMMARY:Reserved") == 1


def test_override_moved_alone_into_a_feed_inherits_privacy() -> None:
    from tests.support import rules_from

    rules = rules_from(
        "sources: {s: {url: s.ics}}\nfeeds: {client: {title: C, where: {subcalendar: 'Client: B'}}}\n"
    )
    text = calendar(
        event("SUMMARY:SECRET series", "CLASS:PRIVATE", "CATEGORIES:Client: A", "RRULE:FREQ=WEEKLY;COUNT=3"),
        event(
            "SUMMARY:SECRET moved",
            "CATEGORIES:Client: B",
            "RECURRENCE-ID:20261208T090000Z",
            start="DTSTART:20261209T090000Z",
        ),
    )
    result = render(text, rules)
    assert_clean(result, ("client",))
    assert "SUMMARY:Reserved" in result.feeds["client"].body.decode()


_CLASS_LINES = [
    "CLASS:PUBLIC", "CLASS:PRIVATE", "CLASS:PUBLIC\r\n X", "CLASS:PUBLIC\r\n\tX", "CLASS:public",
    "CLASS;X=1:PUBLIC", "CLASSIFICATION:PUBLIC", "CLASS:PUBLIC ", "CLASS:\r\n PUBLIC", "SUMMARY:x",
    "BEGIN:VALARM\r\nCLASS:PRIVATE\r\nEND:VALARM", "BEGIN:VALARM\r\nCLASS:PUBLIC\r\nEND:VALARM",
]  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(_CLASS_LINES), max_size=5), st.booleans())
def test_the_quick_public_class_test_agrees_with_reading_every_class_line(lines: list[str], lf: bool) -> None:
    """A series is private by its master's CLASS lines; the common plain CLASS:PUBLIC is told
    from the bytes without reading the lines, and the answer is the same as reading them."""
    body = "\r\n".join(["BEGIN:VCALENDAR", "BEGIN:VEVENT", "UID:u", "DTSTART:20261201T080000Z", *lines])
    text = body + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    data = (text.replace("\r\n", "\n") if lf else text).encode()
    master = parse(data, "s").series["u"].master
    assert master is not None
    read = any(prop.value.strip().upper() != "PUBLIC" for prop in master.all("CLASS"))
    assert _is_private(master) == read
