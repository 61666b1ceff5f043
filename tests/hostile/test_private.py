"""Class 6: RFC 5545 — an unknown CLASS is PRIVATE; malformed values count as private; an
override of a private series inherits the master's privacy unless it says otherwise."""

from __future__ import annotations

import pytest

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
