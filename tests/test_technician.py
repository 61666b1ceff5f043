"""Technician feeds: the job details they need (listed custom fields, address, duration),
never the free-text description where costs hide; their own sub-calendar names only;
private jobs busy; cancellations shown struck through for keep_cancelled."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from icalproxy.config.load import load_config
from tests.support import build, calendar, structure_problems, unfolded

TECH = "sources: {s: {url: s.ics}}\nfeeds: {jo: {title: Jo, profile: technician}}\n"
# Costs in forms no word list catches (a hostile-input review got each through a cost filter).
COSTS = [
    "Gesamtkosten: 12.400 EUR SECRET",
    "Kostenvoranschlag SECRET",
    "Amount due: SECRET",
    "Total: €12,400 SECRET",
    "Quote SECRET",
    "Fee: 80 SECRET",
    "Margin 30% SECRET",
    "Cоst: 300 SECRET",  # Cyrillic о
    "Kosten:\\n12.400 EUR SECRET",
]


@pytest.mark.parametrize("cost", COSTS)
def test_no_cost_form_reaches_a_technician(cost: str) -> None:
    source = calendar(
        f"UID:t\nDTSTART:20261201T080000Z\nDTEND:20261201T100000Z\nSUMMARY:Fix\n"
        f"DESCRIPTION:Job type: Boiler\\n{cost}\\nAccess notes: side door\nCATEGORIES:Technician: Jo"
    )
    body = build(TECH, s=source).feeds["jo"].body
    text = unfolded(body)
    assert "SECRET" not in text
    assert "Job type: Boiler\\nAccess notes: side door" in text
    assert "DTEND:20261201T100000Z" in text


def test_a_status_line_with_a_space_is_the_status_not_free_text() -> None:
    rules = (
        "sources: {s: {url: s.ics}}\nstatuses: {field: Status, values: {Done: Completed}}\n"
        + TECH.split("\n", 1)[1]
    )
    source = calendar(
        "UID:t\nDTSTART:20261201T080000Z\nSUMMARY:Fix\nDESCRIPTION:Status : Done\\nJob type: Boiler"
    )
    text = unfolded(build(rules, s=source).feeds["jo"].body)
    assert (
        "DESCRIPTION:Completed\\nJob type: Boiler" in text and "Status" not in text.split("DESCRIPTION:")[1]
    )


def test_private_job_is_busy_for_a_technician() -> None:
    source = calendar(
        "UID:p\nDTSTART:20261201T080000Z\nSUMMARY:SECRET personal\nCLASS:PRIVATE\nLOCATION:SECRET"
    )
    text = unfolded(build(TECH, s=source).feeds["jo"].body)
    assert "SECRET" not in text and "SUMMARY:Reserved" in text


def test_geo_is_kept_typed_when_the_profile_says_so() -> None:
    rules = (
        "sources: {s: {url: s.ics}}\nprofiles: {tech-geo: {extends: technician, keep: [GEO]}}\n"
        "feeds: {jo: {title: Jo, profile: tech-geo}}\n"
    )
    source = calendar("UID:g\nDTSTART:20261201T080000Z\nSUMMARY:Fix\nGEO:53.5461;9.9661")
    assert "GEO:53.546100;9.966100" in unfolded(build(rules, s=source).feeds["jo"].body)


CANCEL_RULES = """
sources: {s: {url: s.ics}}
statuses:
  field: Status
  values:
    Scheduled: Scheduled
    Cancelled: {label: Cancelled, calendar_status: CANCELLED}
    Provisional: {label: Provisional, calendar_status: TENTATIVE}
feeds:
  client: {title: Client}
  jo: {title: Jo, profile: technician, keep_cancelled: 3d}
"""


def _job(uid: str, day: str, status: str, extra: str = "") -> str:
    return (
        f"UID:{uid}\nDTSTART:2026{day}T080000Z\nDTEND:2026{day}T100000Z\nSUMMARY:Job {uid}\n"
        f"STATUS:CONFIRMED\nX-TEAMUP-STATUS:{status}\nCATEGORIES:Technician: Jo{extra}"
    )


def test_cancelled_and_tentative_show_in_client_and_technician_feeds() -> None:
    source = calendar(
        _job("c", "1201", "Cancelled"), _job("t", "1202", "Provisional"), _job("s", "1203", "Scheduled")
    )
    result = build(CANCEL_RULES, now=datetime(2026, 11, 25, 12), s=source)
    for name in ("client", "jo"):
        body = result.feeds[name].body
        assert structure_problems(body) == []
        text = unfolded(body)
        chunks = {chunk.split("\r\n")[1]: chunk for chunk in text.split("BEGIN:VEVENT")[1:]}
        assert "STATUS:CANCELLED" in chunks["UID:c"] and "STATUS:CONFIRMED" not in chunks["UID:c"]
        assert "STATUS:TENTATIVE" in chunks["UID:t"]
        assert "STATUS:CONFIRMED" in chunks["UID:s"]


def test_a_cancelled_job_goes_keep_cancelled_after_its_end() -> None:
    source = calendar(
        _job("c", "1201", "Cancelled"),
        _job("x", "1201", "Scheduled").replace("STATUS:CONFIRMED", "STATUS:CANCELLED"),
    )
    soon = build(CANCEL_RULES, now=datetime(2026, 12, 3, 12), s=source)
    assert soon.feeds["jo"].events == 2
    later = build(CANCEL_RULES, now=datetime(2026, 12, 5, 12), s=source)
    assert later.feeds["jo"].events == 0
    assert later.report.feeds["jo"].dropped["cancelled, past keep_cancelled"] == 2
    assert later.feeds["client"].events == 2  # default keep_cancelled is 7 days


def test_check_warns_when_a_profile_publishes_the_free_text_description(tmp_path: Path) -> None:
    (tmp_path / "s.ics").write_bytes(b"")
    (tmp_path / "config.yaml").write_text(
        "sources: {s: {url: s.ics}}\n"
        "profiles:\n"
        "  tech-notes:\n"
        "    extends: technician\n"
        "    description: '{description}'\n"
        "feeds: {jo: {title: Jo, profile: tech-notes}}\n"
    )
    warnings = load_config(tmp_path / "config.yaml", env={}).rules.warnings
    assert (
        len(warnings) == 1
        and ":5: profile 'tech-notes' publishes the free-text job description" in warnings[0]
    )


def test_generated_technician_feeds_carry_no_secret_and_no_other_client() -> None:
    from icalproxy.core.pipeline import build_feeds
    from tests.support import NOW, generated_feed, rules_from

    data, manifest = generated_feed(1500, seed=5)
    names = [entry["name"] for entry in manifest["subcalendars"] if entry["name"].startswith("Technician: ")]
    assert names
    lines = ["sources: {s: {url: s.ics}}", "feeds:"]
    lines += [
        f'  t{i}: {{title: T, profile: technician, where: {{subcalendar: "{n}"}}}}'
        for i, n in enumerate(names)
    ]
    result = build_feeds({"s": data}, rules_from("\n".join(lines) + "\n"), NOW)
    for index, name in enumerate(names):
        text = unfolded(result.feeds[f"t{index}"].body)
        assert result.feeds[f"t{index}"].events > 0
        assert "SECRET" not in text, name
        categories = {
            c for line in text.split("\r\n") if line.startswith("CATEGORIES:") for c in line[11:].split(",")
        }
        assert categories <= set(names), categories  # never a client's or an internal sub-calendar


@pytest.mark.slow
def test_real_clients_accept_technician_feeds_with_cancelled_jobs(tmp_path: Path) -> None:
    from tests.test_real_clients import feedcheck

    source = calendar(
        _job("c", "1201", "Cancelled"), _job("t", "1202", "Provisional"), _job("s", "1203", "Scheduled")
    )
    for name, feed in build(CANCEL_RULES, now=datetime(2026, 11, 25, 12), s=source).feeds.items():
        (tmp_path / f"{name}.ics").write_bytes(feed.body)
    output = feedcheck(*sorted(tmp_path.iterdir()))
    assert " 0 failed" in output.splitlines()[-1], output[-2000:]
