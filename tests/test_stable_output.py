"""A feed's bytes change only when something its subscribers can see changes: source stamps
(DTSTAMP, LAST-MODIFIED, SEQUENCE) and internal edits never reach them."""

from __future__ import annotations

import re
from datetime import datetime

from icalproxy.config.load import load_config
from icalproxy.core.pipeline import build_feeds, parse_sources, render_feeds
from tests.support import NOW, ROOT

CONFIG = load_config(ROOT / "config.example.yaml", env={})
SNAPSHOTS = {name: (ROOT / source.url).read_bytes() for name, source in CONFIG.sources.items()}
REDACTING = [name for name, feed in CONFIG.rules.feeds.items() if feed.profile != "technician"]


def _restamped_and_edited(data: bytes) -> bytes:
    """A new export: every stamp rewritten (Google stamps all events with the export time),
    SEQUENCE bumped, internal notes and costs edited."""
    data = re.sub(rb"DTSTAMP:\d{8}T\d{6}Z", b"DTSTAMP:20261124T235959Z", data)
    data = re.sub(rb"LAST-MODIFIED:\d{8}T\d{6}Z", b"LAST-MODIFIED:20261124T235959Z", data)
    data = re.sub(rb"SEQUENCE:(\d+)", lambda m: b"SEQUENCE:" + str(int(m[1]) + 3).encode(), data)
    data = data.replace(b"SECRET-note", b"SECRET-edited-note").replace(b"12\\,400 EUR", b"13\\,900 EUR")
    return re.sub(rb"X-TEAMUP-JOB-COST:[^\r\n]*", b"X-TEAMUP-JOB-COST:999 EUR", data)


def _render(snapshots: dict[str, bytes], stamps: object = None, now: datetime = NOW) -> object:
    return render_feeds(parse_sources(snapshots), CONFIG.rules, now, stamps=stamps)  # type: ignore[arg-type]


def test_restamped_and_internally_edited_sources_give_the_same_bytes() -> None:
    before = build_feeds(SNAPSHOTS, CONFIG.rules, NOW)
    edited = {name: _restamped_and_edited(data) for name, data in SNAPSHOTS.items()}
    assert edited != SNAPSHOTS
    after = build_feeds(edited, CONFIG.rules, NOW)
    assert REDACTING
    for name in REDACTING:
        assert after.feeds[name].body == before.feeds[name].body, name
        assert after.feeds[name].etag == before.feeds[name].etag, name


def test_with_history_only_a_visible_change_gets_a_new_stamp_and_sequence() -> None:
    first = _render(SNAPSHOTS, stamps={})
    edited = {name: _restamped_and_edited(data) for name, data in SNAPSHOTS.items()}
    later = datetime(2026, 11, 26, 9, 30)
    same = _render(edited, stamps=first.stamps, now=later)  # type: ignore[attr-defined]
    for name in REDACTING:
        assert same.feeds[name].body == first.feeds[name].body, name  # type: ignore[attr-defined]
    retitled = dict(SNAPSHOTS)
    retitled["jobs"] = SNAPSHOTS["jobs"].replace(
        b"SUMMARY:Install heat pump", b"SUMMARY:Install new heat pump"
    )
    changed = _render(retitled, stamps=first.stamps, now=later)
    feeds = {name for name in CONFIG.rules.feeds if changed.feeds[name].body != first.feeds[name].body}  # type: ignore[attr-defined]
    shown_in = {name for name in CONFIG.rules.feeds if b"TU1001" in first.feeds[name].body}  # type: ignore[attr-defined]
    busy = {name for name in shown_in if CONFIG.rules.feeds[name].profile == "busy"}
    assert feeds == shown_in - busy  # a busy feed shows no title: its bytes stay
    body = changed.feeds["acme"].body.decode()  # type: ignore[attr-defined]
    event = body[body.index("UID:TU1001") :].split("END:VEVENT")[0]
    assert "DTSTAMP:20261126T093000Z" in event and "SEQUENCE:1" in event
    other = body[body.index("UID:TU1002") :].split("END:VEVENT")[0]
    assert "DTSTAMP:20261125T120000Z" in other and "SEQUENCE" not in other
