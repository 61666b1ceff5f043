"""Golden outputs: tests/golden/<case>/{config.yaml, in/, out/<feed>.ics}.

Run ``pytest tests/test_golden.py --update-golden`` to rewrite out/ after an intended change,
then read the diff. Every case also runs on its sources with the VEVENTs in reverse order:
RFC 5545 fixes no order, so the output must not depend on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from icalproxy.config.load import load_config
from icalproxy.core.pipeline import build_feeds
from tests.support import NOW, ROOT, structure_problems, unfolded

CASES = sorted(path for path in (ROOT / "tests" / "golden").iterdir() if (path / "config.yaml").exists())


def _render(case: Path, reverse: bool = False) -> dict[str, bytes]:
    config = load_config(case / "config.yaml", env={})
    snapshots = {name: Path(source.url).read_bytes() for name, source in config.sources.items()}
    if reverse:
        snapshots = {name: _reversed_events(data) for name, data in snapshots.items()}
    result = build_feeds(snapshots, config.rules, NOW)
    assert not result.report.problems, result.report.problems
    return {name: feed.body for name, feed in result.feeds.items()}


def _reversed_events(data: bytes) -> bytes:
    text = data.decode()
    newline = "\r\n" if "\r\n" in text else "\n"
    head, _, rest = text.partition("BEGIN:VEVENT")
    body, _, tail = ("BEGIN:VEVENT" + rest).rpartition("END:VEVENT")
    events = [block + "END:VEVENT" for block in (body + "END:VEVENT").split("END:VEVENT")[:-1]]
    events = [event.strip() for event in events]
    return (head + newline.join(reversed(events)) + tail).encode()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_golden(case: Path, request: pytest.FixtureRequest) -> None:
    feeds = _render(case)
    out = case / "out"
    if request.config.getoption("--update-golden"):
        out.mkdir(exist_ok=True)
        for stale in out.glob("*.ics"):
            stale.unlink()
        for name, body in feeds.items():
            (out / f"{name}.ics").write_bytes(body)
    expected = {path.stem: path.read_bytes() for path in sorted(out.glob("*.ics"))}
    assert sorted(feeds) == sorted(expected)
    for name, body in feeds.items():
        assert body == expected[name], f"{case.name}/{name} differs from its golden file"
        assert structure_problems(body) == []
        assert "SECRET" not in unfolded(body) or name in ("jo",)  # technicians see job notes


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_golden_is_independent_of_event_order(case: Path) -> None:
    assert _render(case, reverse=True) == _render(case)
