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


def test_check_warns_about_a_catalogue_text_with_a_link(tmp_path: object) -> None:
    from pathlib import Path

    from icalproxy.config.load import load_config

    folder = Path(str(tmp_path))
    (folder / "s.ics").write_bytes(b"")
    (folder / "config.yaml").write_text(
        "sources: {s: {url: s.ics}}\n"
        "statuses:\n"
        "  field: Status\n"
        "  values:\n"
        "    Done: {label: Done, description: 'See https://intranet.example/x'}\n"
        "feeds: {f: {title: F}}\n"
    )
    config = load_config(folder / "config.yaml", env={})
    assert [w.split(": ", 1)[1] for w in config.rules.warnings] == [
        "status 'Done': the description holds a link or e-mail address; clients see it removed"
    ]
    assert config.rules.warnings[0].startswith(f"{folder / 'config.yaml'}:5")
