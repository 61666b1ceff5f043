"""No silent emptying (issue 11, item 1): a typo (`Acme Crop`) or a case mismatch (`ACME corp`)
in a rule is a warning with "did you mean" in `check --sources` and `render`, a note in
/readyz, a metric; and a live reload that would empty a served feed is held for ops."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from icalproxy.config.load import load_config
from icalproxy.config.model import AllOf, CustomFields, FieldMatch, Not, Subcalendar
from icalproxy.core.parse import parse
from icalproxy.core.pipeline import build_feeds
from icalproxy.core.unmatched import NameIndex, Unmatched, unmatched_rules
from tests.harness import Daemon, Upstream, create_token, daemon_config, http, wait_until
from tests.support import FIXTURES, ROOT

JOBS = (FIXTURES / "teamup-jobs.ics").read_bytes()
INDEX = NameIndex({"jobs": parse(JOBS, "jobs")}, CustomFields())


def found(where: object) -> list[Unmatched]:
    return unmatched_rules(where, ["jobs"], INDEX)  # type: ignore[arg-type]


def subcalendar(*names: str) -> Subcalendar:
    return Subcalendar(frozenset(names))


def test_a_typo_gets_a_did_you_mean() -> None:
    [item] = found(subcalendar("Client: Acme Crop"))
    assert (item.kind, item.rule, item.suggestions, item.difference) == (
        "subcalendar",
        "Client: Acme Crop",
        ("Client: Acme Corp",),
        "",
    )
    assert item.warning() == (
        "rule subcalendar 'Client: Acme Crop' appears in no source, so it matches nothing; "
        "did you mean 'Client: Acme Corp'?"
    )


@pytest.mark.parametrize(
    ("rule", "difference"),
    [
        ("Client: ACME corp", "case"),
        ("Client:  Acme Corp ", "spacing"),
        (" client: acme  corp", "case and spacing"),
    ],
)
def test_case_and_spacing_differences_are_called_out(rule: str, difference: str) -> None:
    [item] = found(subcalendar(rule))
    assert item.suggestions == ("Client: Acme Corp",) and item.difference == difference
    assert f"(differs only in {difference}: sub-calendar names must match exactly)" in item.warning()


def test_notes_for_readyz_quote_only_the_rule_never_a_name_from_the_sources() -> None:
    for rule in ("Client: Acme Crop", "Client: ACME corp"):
        [item] = found(subcalendar(rule))
        assert "Acme Corp" not in item.note() and repr(rule) in item.note()
    [case] = found(subcalendar("Client: ACME corp"))
    assert "a name differing only in case appears" in case.note()


def test_names_that_appear_are_not_reported_and_absent_exclusions_are_fine() -> None:
    assert found(subcalendar("Client: Acme Corp")) == []
    assert found(Not(FieldMatch("Status", one_of=frozenset({"Cancelled"})))) == []  # none cancelled today
    assert found(FieldMatch("Status", equals="scheduled")) == []  # field values ignore case
    # … but a near miss inside `not` is a typo worth a word:
    [item] = found(Not(FieldMatch("Status", equals="Schedueld")))
    assert (
        item.negated and item.suggestions == ("Scheduled",) and "so `not` excludes nothing" in item.warning()
    )


def test_field_values_and_globs() -> None:
    [field] = found(AllOf((subcalendar("Client: Acme Corp"), FieldMatch("Status", equals="Schedueld"))))
    assert (field.kind, field.field, field.suggestions) == ("field", "Status", ("Scheduled",))
    # One status of an `in` list unused today is normal; all of them absent is not.
    assert found(FieldMatch("Status", one_of=frozenset({"Scheduled", "Postponed"}))) == []
    assert [i.rule for i in found(FieldMatch("Status", one_of=frozenset({"Postponed", "Moved"})))] == [
        "Moved",
        "Postponed",
    ]
    import fnmatch
    import re

    [glob] = found(Subcalendar(frozenset(), (re.compile(fnmatch.translate("Kunde: *")),)))
    assert glob.kind == "glob" and glob.rule == "Kunde: *"


def test_the_pipeline_report_notes_and_counts_them(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "sources: {jobs: {url: jobs.ics}}\nfeeds:\n"
        "  typo: {title: T, from: [jobs], where: {subcalendar: 'Client: Acme Crop'}}\n"
        "  good: {title: G, from: [jobs], where: {subcalendar: 'Client: Acme Corp'}}\n"
    )
    (tmp_path / "jobs.ics").write_bytes(JOBS)
    report = build_feeds({"jobs": JOBS}, load_config(config).rules, datetime(2026, 11, 25)).report
    typo, good = report.feeds["typo"], report.feeds["good"]
    assert typo.unmatched == 2 and good.unmatched == 0 and good.notes == []
    assert typo.notes[-1] == "its rules match none of the 8 series in its sources"
    assert "did you mean 'Client: Acme Corp'?" in typo.details[typo.notes[0]]
    assert "did you mean 'Client: Acme Corp'?" in "\n".join(report.summary_lines())


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "icalproxy.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_check_sources_and_render_warn_with_file_line_and_suggestions(tmp_path: Path) -> None:
    (tmp_path / "jobs.ics").write_bytes(JOBS)
    config = tmp_path / "c.yaml"
    config.write_text(
        "sources: {jobs: {url: jobs.ics}}\nstate_dir: state\nfeeds:\n"
        "  acme: {title: T, from: [jobs], where: {subcalendar: 'Client: Acme Crop'}}\n"
        "  acme2: {title: T, from: [jobs], where: {subcalendar: 'Client: ACME corp'}}\n"
    )
    check = cli("check", "--config", str(config), "--sources")
    assert check.returncode == 0, check.stderr
    assert (
        f"{config}:4: warning: feed acme: rule subcalendar 'Client: Acme Crop' appears in no source, so it "
        "matches nothing; did you mean 'Client: Acme Corp'?"
    ) in check.stderr
    assert f"{config}:5: warning: feed acme2: rule subcalendar 'Client: ACME corp'" in check.stderr
    assert "(differs only in case: sub-calendar names must match exactly)" in check.stderr
    assert (
        f"{config}:4: warning: feed acme: its rules match none of the 8 series in its sources" in check.stderr
    )
    render = cli("render", "--config", str(config), "--out", str(tmp_path / "out"))
    assert "  warning: rule subcalendar 'Client: Acme Crop' appears in no source" in render.stdout


@pytest.fixture
def live(tmp_path: Path, upstream: Upstream) -> tuple[Path, Daemon]:
    upstream.state.mode = "ok"
    upstream.state.set_body(JOBS)
    config = daemon_config(tmp_path, upstream)
    return config, Daemon(config, tmp_path)


def test_a_live_reload_with_a_typo_or_a_case_mismatch_holds_the_feed_never_empties_it(
    live: tuple[Path, Daemon],
) -> None:
    config, daemon = live
    token = create_token(config, "acme")
    daemon.start()
    try:
        url = f"{daemon.base}/feed/{token}.ics"
        status, headers, body = http(url)
        events = body.count(b"BEGIN:VEVENT")
        assert status == 200 and events > 0
        rules = config.parent / "rules" / "feeds.yaml"
        good = rules.read_text()
        for wrong, hint in (
            ("Client: Acme Crop", "1 similar name(s) appear"),
            ("Client: ACME corp", "only in case"),
        ):
            rules.write_text(good.replace("Client: Acme Corp", wrong))
            daemon.send(signal.SIGHUP)
            wait_until(
                lambda wrong=wrong: wrong in json.dumps(daemon.ready()[1]), what="reloaded with the typo"
            )
            feed = daemon.ready()[1]["feeds"]["acme"]
            assert any(
                note.startswith(f"held: this render would empty the feed ({events} → 0 events)")
                for note in feed["notes"]
            )
            assert any(repr(wrong) in note and hint in note for note in feed["notes"])
            assert feed["events"] == events and daemon.ready()[0] == 200
            assert http(url)[2] == body and http(url)[1]["ETag"] == headers["ETag"]  # never an empty calendar
            assert 'icalproxy_feed_unmatched_rules{feed="acme"} 2' in daemon.metrics()
            assert 'icalproxy_feed_emptying_held{feed="acme"} 1' in daemon.metrics()
            assert "Acme Corp" not in json.dumps(feed["notes"])  # notes quote only the rules

        accepted = cli("accept-shrink", "--config", str(config), "acme")
        assert accepted.returncode == 0 and "feed acme:" in accepted.stdout
        wait_until(lambda: http(url)[2].count(b"BEGIN:VEVENT") == 0, what="emptied once ops accepted")
        assert daemon.ready()[1]["feeds"]["acme"]["events"] == 0
        assert 'icalproxy_feed_emptying_held{feed="acme"} 0' in daemon.metrics()

        rules.write_text(good)
        daemon.send(signal.SIGHUP)
        wait_until(lambda: http(url)[2] == body, what="the fixed rule serves the feed again")
        assert 'icalproxy_feed_unmatched_rules{feed="acme"} 0' in daemon.metrics()
        assert any(e.get("event") == "feed_emptying_held" for e in daemon.events())
    finally:
        daemon.stop()


def test_accept_shrink_still_takes_a_source_and_rejects_unknown_names(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "sources: {jobs: {url: jobs.ics}}\nstate_dir: state\nfeeds: {acme: {title: T, from: [jobs]}}\n"
    )
    source = cli("accept-shrink", "--config", str(config), "jobs")
    assert source.returncode == 0 and source.stdout.startswith("source jobs: its next pull will be accepted")
    assert (tmp_path / "state" / "accept-shrink" / "jobs").exists()
    unknown = cli("accept-shrink", "--config", str(config), "nope")
    assert unknown.returncode == 2 and "'nope' is neither a source nor a feed" in unknown.stderr
