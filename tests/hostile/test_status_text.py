"""Class 5: a status value reaches a client only through the same scrubber as every other
text, whatever its origin: without a catalogue, with `unlisted: show`, or from the
catalogue's own texts."""

from __future__ import annotations

import pytest

from tests.hostile.markers import assert_clean, calendar, event, render
from tests.support import rules_from

STATUSES = [
    "Call https://SECRET.example/job",
    "mail SECRET@example.com",
    "see www.SECRET.example",
]
CATALOGUES = {
    "no catalogue": "",
    "unlisted show": "statuses: {field: Status, unlisted: show, values: {Done: Completed}}\n",
}


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("catalogue", CATALOGUES.values(), ids=CATALOGUES.keys())
@pytest.mark.parametrize("where", ["property", "description"])
def test_raw_status_is_scrubbed(status: str, catalogue: str, where: str) -> None:
    rules = rules_from("sources: {s: {url: s.ics}}\n" + catalogue + "feeds: {client: {title: C}}\n")
    line = f"X-TEAMUP-STATUS:{status}" if where == "property" else f"DESCRIPTION:Status: {status}"
    result = render(calendar(event("SUMMARY:Job", line)), rules)
    assert_clean(result, ("client",))


def test_catalogue_texts_are_scrubbed_too() -> None:
    rules = rules_from(
        "sources: {s: {url: s.ics}}\n"
        "statuses: {field: Status, values: {Done: {label: 'Done, see https://SECRET.example',"
        " description: 'Questions: SECRET@example.com'}}}\n"
        "feeds: {client: {title: C}}\n"
    )
    result = render(calendar(event("SUMMARY:Job", "X-TEAMUP-STATUS:Done")), rules)
    assert_clean(result, ("client",))
    assert "Done" in result.feeds["client"].body.decode()
