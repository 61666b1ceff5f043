"""Rendered feeds through the real client parsers of ../shared/tools/feedcheck:
ical.js, icalendar and libical (vdirsyncer is driven against the running daemon)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from icalproxy.config.load import load_config
from icalproxy.core.pipeline import build_feeds
from tests.support import FEEDCHECK, NOW, ROOT, generated_feed, need_shared, parser_missing, rules_from

pytestmark = pytest.mark.slow


def feedcheck(*inputs: Path | str) -> str:
    """feedcheck's output for files, or for a loopback URL (vdirsyncer subscribes to it)."""
    need_shared(FEEDCHECK)
    result = subprocess.run(
        [sys.executable, str(FEEDCHECK), "--from", "2026-11-01", "--years", "2", *map(str, inputs)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    _parsers_installed(result.stdout)
    assert result.returncode == 0, result.stdout[-3000:]
    return result.stdout


def _parsers_installed(output: str) -> None:
    """feedcheck reports a parser that is not installed as a failure (or a skip): that is a
    missing tool, not a bad feed."""
    missing = re.search(r"^(?:FAIL|SKIP) (ical\.js|icalendar|vdirsyncer): not installed", output, re.M)
    if missing:
        parser_missing(f"{missing[1]} is not installed")


def test_example_feeds_pass_real_parsers(tmp_path: Path) -> None:
    config = load_config(ROOT / "config.example.yaml", env={})
    snapshots = {name: Path(s.url).read_bytes() for name, s in config.sources.items()}
    for name, feed in build_feeds(snapshots, config.rules, NOW).feeds.items():
        (tmp_path / f"{name}.ics").write_bytes(feed.body)
    output = feedcheck(*sorted(tmp_path.iterdir()))
    assert "PASS ical.js" in output and "PASS icalendar" in output
    if not re.search(r"^PASS libical", output, re.M):
        assert re.search(r"^SKIP libical", output, re.M), output
        parser_missing("libical (Debian's gir1.2-ical-3.0) is not installed")


def test_recurrence_counts_agree_with_recurring_ical_events(tmp_path: Path) -> None:
    """ical.js's occurrence count equals recurring-ical-events' for the same window."""
    import datetime as dt

    import icalendar
    import recurring_ical_events

    data, _ = generated_feed(400, seed=3)
    text = (
        "sources: {t: {url: t.ics}}\nfeeds:\n  all: {title: All}\n"
        "  acme: {title: A, where: {subcalendar: 'Client: Acme Corp'}}\n"
    )
    bodies = {name: feed.body for name, feed in build_feeds({"t": data}, rules_from(text), NOW).feeds.items()}
    # Moved occurrences (EXDATEs, standalone overrides) and the example's time zones too.
    for path in sorted((ROOT / "tests" / "golden").glob("*/out/*.ics")):
        bodies[f"{path.parent.parent.name}-{path.stem}"] = path.read_bytes()
    counted = 0
    for name, body in bodies.items():
        path = tmp_path / f"{name}.ics"
        path.write_bytes(body)
        output = feedcheck(path)
        match = re.search(r"PASS ical\.js events=\d+ occurrences=(\d+)", output)
        assert match, output
        calendar = icalendar.Calendar.from_ical(body)
        start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        expected = len(recurring_ical_events.of(calendar).between(start, start.replace(year=2028)))
        assert int(match[1]) == expected, name
        counted += expected
    assert counted > 100


def test_vdirsyncer_subscribes_to_the_running_daemon(tmp_path: Path) -> None:
    import shutil

    from tests.harness import Daemon, create_token, http

    for name in ("config.example.yaml", "rules", "fixtures"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    config = tmp_path / "config.example.yaml"
    token = create_token(config, "acme", "vdirsyncer")
    daemon = Daemon(config, tmp_path).start()
    try:
        url = f"{daemon.base}/feed/{token}.ics"
        assert http(url)[0] == 200
        output = feedcheck(url)
        assert re.search(r"^PASS vdirsyncer", output, re.M), output
    finally:
        daemon.stop()
