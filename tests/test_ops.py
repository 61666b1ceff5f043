"""Operations endpoints: /readyz and /metrics name every feed, so a subscriber on the public
port gets the same 404 as for any unknown path; ops get them on the ops listener, or on the
public one with ``server.ops_token``. Notes and logs say counts and kinds, never event values."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from icalproxy.config.load import load_config
from icalproxy.core.pipeline import build_feeds
from icalproxy.errors import ConfigError
from tests.harness import (
    ACME_FEED,
    MUELLER_FEED,
    Daemon,
    Upstream,
    create_token,
    daemon_config,
    http,
    wait_until,
)
from tests.support import FIXTURES

OPS_TOKEN = "ops-0123456789abcdef-SECRETOPS"
JOBS = (FIXTURES / "teamup-jobs.ics").read_bytes()
FEEDS = ("acme", "mueller")
# An event whose TZID is free text with no VTIMEZONE: the note about it must not quote it.
ODD_ZONE = (
    b"BEGIN:VEVENT\r\nUID:odd-zone@test\r\nDTSTAMP:20261101T000000Z\r\n"
    b"DTSTART;TZID=SECRET Head Office Zone:20261201T090000\r\n"
    b"DTEND;TZID=SECRET Head Office Zone:20261201T100000\r\n"
    b"SUMMARY:Odd zone visit\r\nCATEGORIES:Client: Acme Corp\r\nEND:VEVENT\r\n"
)


def _config(tmp_path: Path, upstream: Upstream, server: str) -> Path:
    return daemon_config(
        tmp_path, upstream, feeds=ACME_FEED + MUELLER_FEED, server=server, source="every: 1h, retries: 0"
    )


@pytest.fixture
def started(tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    upstream.state.mode = "ok"
    upstream.state.set_body(JOBS.replace(b"END:VCALENDAR", ODD_ZONE + b"END:VCALENDAR"))
    monkeypatch.setenv("ICALPROXY_OPS_TOKEN", OPS_TOKEN)
    config = _config(tmp_path, upstream, "{ops_token: '${ICALPROXY_OPS_TOKEN}'}")
    daemon = Daemon(config, tmp_path).start()
    yield daemon
    daemon.stop()


@pytest.mark.parametrize("path", ["/readyz", "/metrics"])
def test_a_subscriber_asking_the_public_port_gets_404_and_no_feed_name(started: Daemon, path: str) -> None:
    unknown = http(started.base + "/no-such-page")
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Bearer {OPS_TOKEN}x"},
        {"Authorization": f"Basic {OPS_TOKEN}"},
        {"Authorization": OPS_TOKEN},
    ):
        status, _, body = http(started.base + path, headers)
        assert status == 404, headers
        assert body == b"not found\n"
        assert not any(name.encode() in body for name in FEEDS)
        assert status == unknown[0]


@pytest.mark.parametrize("path", ["/readyz", "/metrics"])
def test_ops_see_them_on_the_ops_port_and_with_the_token(started: Daemon, path: str) -> None:
    on_ops = http(started.ops + path)
    with_token = http(started.base + path, {"Authorization": f"Bearer {OPS_TOKEN}"})
    for status, _, body in (on_ops, with_token):
        assert status == 200
        assert all(name.encode() in body for name in FEEDS)
    assert http(started.ops + "/healthz")[0] == http(started.base + "/healthz")[0] == 200
    assert http(started.ops + "/feed/" + "A" * 43 + ".ics")[0] == 404  # no feeds on the ops port


def test_without_an_ops_token_the_public_port_never_serves_them(tmp_path: Path, upstream: Upstream) -> None:
    upstream.state.mode = "ok"
    upstream.state.set_body(JOBS)
    daemon = Daemon(_config(tmp_path, upstream, "{}"), tmp_path).start()
    try:
        for header in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}):
            assert http(daemon.base + "/readyz", header)[0] == 404
            assert http(daemon.base + "/metrics", header)[0] == 404
        assert http(daemon.ops + "/readyz")[0] == 200
    finally:
        daemon.stop()


def test_notes_and_the_feed_notes_log_never_quote_an_event_value(tmp_path: Path, upstream: Upstream) -> None:
    """A free-text TZID and a rule typo: the notes (and so /readyz and the `feed_notes` log
    line) say kinds and counts and quote only the rules, never a value from an event."""
    upstream.state.mode = "ok"
    upstream.state.set_body(JOBS.replace(b"END:VCALENDAR", ODD_ZONE + b"END:VCALENDAR"))
    typo = "  typo: {title: T, from: [jobs], where: {subcalendar: 'Client: Acme Crop'}}\n"
    config = daemon_config(tmp_path, upstream, feeds=ACME_FEED + typo)
    token = create_token(config, "acme")
    daemon = Daemon(config, tmp_path).start()
    try:
        assert b"Odd zone visit" in http(f"{daemon.base}/feed/{token}.ics")[2]
        ready = http(daemon.ops + "/readyz")[2].decode()
        notes = json.loads(ready)["feeds"]["typo"]["notes"]
        assert any("'Client: Acme Crop'" in note for note in notes)  # the rule, as ops wrote it
        wait_until(lambda: any(e.get("event") == "feed_notes" for e in daemon.events()), what="feed_notes")
        logged = [line for line in daemon.log().splitlines() if "feed_notes" in line]
        for text in [ready, http(daemon.ops + "/metrics")[2].decode(), *logged]:
            assert "SECRET" not in text and "Head Office" not in text
            assert "Client: Acme Corp" not in text.replace("Client: Acme Crop", "")  # no suggestion
    finally:
        daemon.stop()


def test_pipeline_notes_never_quote_a_tzid(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("sources: {s: {url: s.ics}}\nfeeds: {f: {title: F, from: [s]}}\nstate_dir: state\n")
    source = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n"
        + ODD_ZONE
        + ODD_ZONE.replace(b"odd-zone", b"berlin").replace(b"SECRET Head Office Zone", b"Europe/Berlin")
        + b"END:VCALENDAR\r\n"
    )
    result = build_feeds({"s": source}, load_config(config).rules, datetime(2026, 11, 25))
    assert result.feeds["f"].events == 2
    for note in result.report.feeds["f"].notes:
        assert "SECRET" not in note and "Head Office" not in note and "Berlin" not in note


@pytest.mark.parametrize(
    ("server", "message"),
    [
        (
            "{listen: '127.0.0.1:9000', ops_listen: '127.0.0.1:9000'}",
            "ops_listen must use another port than listen",
        ),
        ("{listen: '0.0.0.0:9090'}", "ops_listen must use another port than listen"),
        ("{ops_listen: 'nowhere'}", "ops_listen must be HOST:PORT, e.g. 127.0.0.1:9090"),
        ("{ops_token: short}", "ops_token must be at least 16 characters (or empty: none)"),
    ],
)
def test_ops_settings_are_checked(tmp_path: Path, server: str, message: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"sources: {{s: {{url: s.ics}}}}\nfeeds: {{f: {{title: F, from: [s]}}}}\nserver: {server}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert caught.value.problems == [f"{config}:3: {message}"]


def test_an_empty_ops_token_means_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ICALPROXY_OPS_TOKEN", raising=False)
    config = tmp_path / "config.yaml"
    config.write_text(
        "sources: {s: {url: s.ics}}\nfeeds: {f: {title: F, from: [s]}}\n"
        "server: {ops_token: '${ICALPROXY_OPS_TOKEN:-}', ops_listen: '127.0.0.1:9191'}\n"
    )
    server = load_config(config).server
    assert (server.ops_token, server.ops_host, server.ops_port) == ("", "127.0.0.1", 9191)
