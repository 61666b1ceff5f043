"""The command line, run as ops run it: a real subprocess on real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from icalproxy import __version__
from tests.support import ROOT, structure_problems

EXAMPLE = str(ROOT / "config.example.yaml")


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "icalproxy.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"icalproxy {__version__}"


def test_check_example_and_sources() -> None:
    result = run("check", "--config", EXAMPLE, "--sources")
    assert result.returncode == 0, result.stderr
    assert "OK — 2 source(s), 6 feed(s)" in result.stdout
    assert "source jobs: 11 VEVENT(s)" in result.stdout


def test_check_reports_file_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  s: {url: x.ics}\nfeeds:\n  a:\n    title: A\n    profile: nope\n")
    result = run("check", "--config", str(bad))
    assert result.returncode == 2
    assert f"{bad}:6: feed 'a' uses unknown profile 'nope'" in result.stderr


def test_render_writes_every_feed_atomically(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = run(
        "render",
        "--config",
        EXAMPLE,
        "--out",
        str(tmp_path / "out"),
        "--now",
        "2026-11-25",
        "--report",
        str(report),
    )
    assert result.returncode == 0, result.stderr
    written = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert written == [
        "acme-busy.ics",
        "acme.ics",
        "jo.ics",
        "mueller.ics",
        "shared-master.ics",
        "smith-jones.ics",
    ]
    for path in (tmp_path / "out").iterdir():
        assert structure_problems(path.read_bytes()) == []
    golden = ROOT / "tests" / "golden" / "example" / "out" / "acme.ics"
    assert (tmp_path / "out" / "acme.ics").read_bytes() == golden.read_bytes()
    data = json.loads(report.read_text())
    assert data["feeds"]["acme"]["events_out"] == 7
    assert "feed acme: 10 series in, 6 series out (7 VEVENTs)" in result.stdout


def test_render_one_feed_and_unknown_feed(tmp_path: Path) -> None:
    result = run("render", "--config", EXAMPLE, "--out", str(tmp_path), "--feed", "mueller")
    assert result.returncode == 0 and [p.name for p in tmp_path.iterdir()] == ["mueller.ics"]
    result = run("render", "--config", EXAMPLE, "--out", str(tmp_path), "--feed", "nope")
    assert result.returncode == 2 and "unknown feed 'nope'" in result.stderr


def test_preview_agenda_shows_client_view_beside_internal_event() -> None:
    result = run("preview", "--config", EXAMPLE, "--feed", "acme", "--now", "2026-11-25", "--days", "30")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert (
        "Wed 2026-12-09 13:00–15:00 Europe/Berlin  Weekly boiler service (moved to Wednesday) — Delayed"
        in out
    )
    assert "internal: 'Install heat pump – Building B' (jobs, line 28, UID TU1001)" in out
    assert "removed: ATTACH, ATTENDEE, CATEGORIES" in out
    assert "2026-12-15" not in out.split("feed acme:")[0]  # the occurrence moved to Müller


def test_preview_ics_prints_the_feed() -> None:
    result = run("preview", "--config", EXAMPLE, "--feed", "busy-nope")
    assert result.returncode == 2
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "icalproxy.cli",
            "preview",
            "--config",
            EXAMPLE,
            "--feed",
            "acme-busy",
            "--format",
            "ics",
            "--now",
            "2026-11-25",
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert result.stdout.startswith(b"BEGIN:VCALENDAR\r\n") and b"SUMMARY:Reserved" in result.stdout


def test_failing_source_is_reported_with_exit_1(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("sources:\n  gone: {url: missing.ics}\nfeeds:\n  a: {title: A}\n")
    result = run("render", "--config", str(config), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "source gone: file not found" in result.stderr
    assert "not rendered: no data yet from gone" in result.stdout


def test_preview_lists_at_most_500_occurrences(tmp_path: Path) -> None:
    """A rule with millions of occurrences in the window is read lazily and cut, with a note."""
    from tests.support import calendar

    (tmp_path / "s.ics").write_bytes(
        calendar(
            "UID:every-second\nDTSTAMP:20261101T000000Z\nDTSTART:20261126T100000Z\n"
            "RRULE:FREQ=SECONDLY;COUNT=100000000\nSUMMARY:Tick",
            "UID:later\nDTSTAMP:20261101T000000Z\nDTSTART:20261127T100000Z\nSUMMARY:Later",
        )
    )
    config = tmp_path / "c.yaml"
    config.write_text("sources:\n  s: {url: s.ics}\nfeeds:\n  a: {title: A}\n")
    result = run("preview", "--config", str(config), "--feed", "a", "--now", "2026-11-25", "--days", "30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("  Tick\n") == 500
    assert "only the first 500 are shown" in result.stdout
