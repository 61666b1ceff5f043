"""Generated Teamup-shaped feeds: nothing marked SECRET ever reaches a client or busy feed,
and routing matches the generator's manifest, moved occurrences included."""

from __future__ import annotations

import icalendar
import pytest

from icalproxy.core.pipeline import build_feeds
from tests.support import NOW, generated_feed, rules_from, structure_problems, unfolded


def _feeds_yaml(subcalendars: list[str]) -> str:
    lines = ["sources: {teamup: {url: feed.ics}}", "feeds:"]
    lines.append("  everything: {title: All, profile: client}")
    lines.append("  everything-busy: {title: All busy, profile: busy}")
    for index, name in enumerate(subcalendars):
        quoted = name.replace('"', '\\"')
        lines.append(f'  sub{index}: {{title: "{quoted}", where: {{subcalendar: "{quoted}"}}}}')
        lines.append(
            f'  sub{index}-busy: {{title: "{quoted}", profile: busy, where: {{subcalendar: "{quoted}"}}}}'
        )
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def generated() -> tuple[dict, dict]:
    data, manifest = generated_feed(1500, seed=7)
    names = [entry["name"] for entry in manifest["subcalendars"]]
    result = build_feeds({"teamup": data}, rules_from(_feeds_yaml(names)), NOW)
    return manifest, {"names": names, "result": result}


def test_no_secret_in_any_client_or_busy_feed(generated: tuple[dict, dict]) -> None:
    manifest, built = generated
    feeds = built["result"].feeds
    assert len(feeds) == 2 + 2 * len(built["names"])
    assert manifest["marker"] == "SECRET"
    for name, feed in feeds.items():
        text = unfolded(feed.body)
        assert "SECRET" not in text, name
        assert manifest["link_key"] not in text


def test_outputs_pass_structure_checks(generated: tuple[dict, dict]) -> None:
    _, built = generated
    for name, feed in built["result"].feeds.items():
        assert structure_problems(feed.body) == [], name


def _index(body: bytes) -> dict[str, dict[str, icalendar.Event]]:
    found: dict[str, dict[str, icalendar.Event]] = {}
    for event in icalendar.Calendar.from_ical(body).walk("VEVENT"):
        rid = event.get("RECURRENCE-ID")
        key = rid.to_ical().decode() if rid is not None else ""
        found.setdefault(str(event["UID"]), {})[key] = event
    return found


def _exdates(event: icalendar.Event) -> set[str]:
    values = event.get("EXDATE", [])
    values = values if isinstance(values, list) else [values]
    return {part for item in values for part in item.to_ical().decode().split(",")}


def test_routing_matches_manifest_including_moved_overrides(generated: tuple[dict, dict]) -> None:
    manifest, built = generated
    moved_checked = 0
    for index, subcalendar in enumerate(built["names"]):
        output = _index(built["result"].feeds[f"sub{index}"].body)
        expected_uids: set[str] = set()
        for uid, entry in manifest["uids"].items():
            master_in = subcalendar in entry["subcalendars"]
            if master_in:
                expected_uids.add(uid)
                master = output[uid][""]
                excluded = _exdates(master)
                for override in entry["override_details"]:
                    rid = override["recurrence_id"]
                    if subcalendar in override["subcalendars"]:
                        assert any(rid in key for key in output[uid]), (uid, rid)
                    else:
                        assert any(rid in value for value in excluded), (uid, rid, excluded)
                        moved_checked += override["moved"]
            else:
                for override in entry["override_details"]:
                    if subcalendar in override["subcalendars"]:
                        standalone = f"{uid}-R{override['recurrence_id']}"
                        expected_uids.add(standalone)
                        assert "" in output[standalone]
                        assert output[standalone][""].get("RECURRENCE-ID") is None
                        moved_checked += 1
        assert set(output) == expected_uids, subcalendar
    assert moved_checked > 10  # the generated feed really exercised moved occurrences
