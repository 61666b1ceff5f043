"""Class 9: a category value is published only as a plain one-line name: no control
character, no escaped line break, no backslash, no comma or semicolon unless the rules name it
exactly, nothing the link scrubber would touch; globs cannot let more through."""

from __future__ import annotations

import pytest

from tests.hostile.markers import calendar, event, leaks, render
from tests.support import rules_from

RULES = rules_from(
    "sources: {s: {url: s.ics}}\n"
    "profiles:\n"
    "  shared-master: {extends: client, categories: client-facing, client_facing: ['Client: *']}\n"
    "  all-categories: {extends: client, categories: all}\n"
    "feeds:\n"
    "  shared-master: {title: S, profile: shared-master}\n"
    "  all: {title: A, profile: all-categories}\n"
    "  named: {title: N, profile: shared-master, where: {subcalendar: 'Client: Smith, Jones'}}\n"
)
VALUES = {
    "escaped newline": "Client: Acme\\nInternal: SECRET debt collection",
    "escaped comma": "Client: Acme\\, Internal: SECRET debt collection",
    "escaped semicolon": "Client: Acme\\; Internal: SECRET",
    "backslash": "Client: Acme\\\\SECRET",
    "link": "Client: https://SECRET.example/acme",
    "e-mail": "Client: SECRET@example.com",
    "NEL": "Client: Acme\u0085Internal: SECRET",
}


@pytest.mark.parametrize("value", VALUES.values(), ids=VALUES.keys())
@pytest.mark.parametrize("feed", ["shared-master", "all"])
def test_unplain_category_values_are_never_published(value: str, feed: str) -> None:
    result = render(calendar(event("SUMMARY:Job", f"CATEGORIES:{value},Client: Acme")), RULES)
    body = result.feeds[feed].body
    assert not leaks(body)
    assert "CATEGORIES:Client: Acme\r\n" in body.decode()


def test_a_comma_in_a_name_the_rules_spell_out_is_kept() -> None:
    result = render(calendar(event("SUMMARY:Job", "CATEGORIES:Client: Smith\\, Jones")), RULES)
    assert "CATEGORIES:Client: Smith\\, Jones\r\n" in result.feeds["named"].body.decode()
