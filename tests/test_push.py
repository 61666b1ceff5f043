"""CalDAV push, the parts without a server: push: config, the per-UID split, the sync state."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from icalproxy.config.load import parse_yaml
from icalproxy.config.validate import validate
from icalproxy.core.split import content_hash, resource_name, split_feed
from icalproxy.daemon.push_state import MIGRATIONS, PushState, Row
from icalproxy.errors import ConfigError, StateError
from tests.support import NOW, build, calendar

BASE = "sources: {s: {url: s.ics}}\nfeeds:\n  jo:\n    title: Jo\n    push:\n"


def load(text: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return validate(parse_yaml(text, "test.yaml", env or {}), [], Path("/nowhere/test.yaml"))


# ---------------------------------------------------------------- config


def test_push_targets_are_validated_into_frozen_types() -> None:
    config = load(
        BASE + '      - caldav: {url: "https://cal.example.com/calendars/jo/jobs", username: jo, '
        'password: "${JO_CALDAV_PASSWORD}"}\n'
        '      - caldav: {url: "https://caldav.example.net/jo/", bearer_token: "${TOKEN}"}\n',
        {"JO_CALDAV_PASSWORD": "pw-SECRET", "TOKEN": "tok-SECRET"},
    )
    first, second = config.rules.feeds["jo"].push
    assert first.url == "https://cal.example.com/calendars/jo/jobs/"  # a collection ends in "/"
    assert (first.username, first.password, first.bearer_token) == ("jo", "pw-SECRET", None)
    assert (second.username, second.bearer_token) == (None, "tok-SECRET")
    assert first.line == "test.yaml:6"
    assert "SECRET" not in repr(config.rules.feeds["jo"])  # secrets never print


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("{caldav: {username: jo}}", "test.yaml:6: caldav needs 'url'"),
        ("{caldav: {url: 'ftp://x/'}}", "test.yaml:6: caldav url must be an http(s) URL"),
        ("{caldav: {url: 'https://jo:pw@x/c/'}}", "test.yaml:6: caldav url must not carry credentials"),
        ("{caldav: {url: 'https://x/c/', usr: jo}}", "test.yaml:6: unknown key 'usr' in caldav"),
        ("{caldav: {url: 'https://x/c/', username: jo}}", "test.yaml:6: caldav username and password go"),
        (
            "{caldav: {url: 'https://x/c/', username: jo, password: p, bearer_token: t}}",
            "test.yaml:6: caldav takes either username and password or bearer_token",
        ),
        (
            "{caldav: {url: 'http://cal.example.com/c/', bearer_token: t}}",
            "test.yaml:6: caldav url must be https",
        ),
        ("{webdav: {url: 'https://x/c/'}}", "test.yaml:6: unknown key 'webdav' in a push target"),
    ],
)
def test_bad_push_targets_report_file_and_line(target: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(BASE + f"      - {target}\n")
    assert any(problem.startswith(message) for problem in caught.value.problems), caught.value.problems


def test_push_must_be_a_list_and_a_target_is_named_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load(BASE.replace("    push:\n", "    push: {caldav: {url: 'https://x/c/'}}\n"))
    assert caught.value.problems == [
        "test.yaml:5: feed 'jo' push must be a non-empty list of {caldav: {url: …}} targets"
    ]
    with pytest.raises(ConfigError) as caught:
        load(BASE + "      - {caldav: {url: 'https://x/c/'}}\n      - {caldav: {url: 'https://x/c'}}\n")
    assert caught.value.problems == [
        "test.yaml:7: feed 'jo' pushes to https://x/c/ twice (first at test.yaml:6)"
    ]


def test_plain_http_with_credentials_is_allowed_on_loopback_only() -> None:
    config = load(BASE + "      - {caldav: {url: 'http://127.0.0.1:5232/jo/', username: jo, password: p}}\n")
    assert config.rules.feeds["jo"].push[0].url == "http://127.0.0.1:5232/jo/"


# ---------------------------------------------------------------- split

SERIES = calendar(
    """UID:series-1
DTSTAMP:20261101T000000Z
DTSTART;TZID=Europe/Berlin:20261201T090000
RRULE:FREQ=DAILY;COUNT=5
SUMMARY:Daily""",
    """UID:series-1
DTSTAMP:20261101T000000Z
RECURRENCE-ID;TZID=Europe/Berlin:20261202T090000
DTSTART;TZID=Europe/Berlin:20261202T110000
SUMMARY:Moved""",
    """UID:other@example.com/with spaces
DTSTAMP:20261101T000000Z
DTSTART;TZID=America/New_York:20261203T090000
SUMMARY:Elsewhere""",
    """UID:utc
DTSTAMP:20261101T000000Z
DTSTART:20261204T090000Z
SUMMARY:Plain""",
)
RULES = "sources: {s: {url: s.ics}}\nfeeds:\n  all: {title: All, profile: technician}\n"


def _feed(source: bytes = SERIES) -> bytes:
    return build(RULES, NOW, s=source).feeds["all"].body


def test_one_resource_per_uid_with_its_overrides_and_only_its_time_zones() -> None:
    resources = split_feed(_feed())
    assert sorted(resources) == ["other@example.com/with spaces", "series-1", "utc"]
    series = resources["series-1"].body
    assert series.count(b"BEGIN:VEVENT") == 2  # master and override travel together
    assert series.count(b"BEGIN:VTIMEZONE") == 1 and b"TZID:Europe/Berlin" in series
    assert b"America/New_York" not in series
    assert b"TZID:America/New_York" in resources["other@example.com/with spaces"].body
    assert b"BEGIN:VTIMEZONE" not in resources["utc"].body
    for resource in resources.values():
        assert resource.body.startswith(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:")
        assert resource.body.endswith(b"END:VCALENDAR\r\n")
        assert b"METHOD:" not in resource.body  # RFC 4791 §4.1: no METHOD in stored objects
        assert b"X-WR-CALNAME" not in resource.body


def test_resources_pass_the_structure_checks() -> None:
    from tests.support import structure_problems

    for resource in split_feed(_feed()).values():
        assert structure_problems(resource.body) == []


def test_content_hash_ignores_dtstamp_but_nothing_else() -> None:
    first = split_feed(_feed())
    restamped = split_feed(_feed(SERIES.replace(b"DTSTAMP:20261101T000000Z", b"DTSTAMP:20261130T070000Z")))
    assert {uid: r.hash for uid, r in first.items()} == {uid: r.hash for uid, r in restamped.items()}
    stamped = first["utc"].body.replace(b"DTSTAMP:19700101T000000Z", b"DTSTAMP:20261130T070000Z")
    assert stamped != first["utc"].body and content_hash(stamped) == first["utc"].hash
    edited = split_feed(_feed(SERIES.replace(b"SUMMARY:Plain", b"SUMMARY:Plainer")))
    assert edited["utc"].hash != first["utc"].hash
    assert edited["series-1"].hash == first["series-1"].hash
    assert content_hash(b"A:1\r\nDTSTAMP:1\r\n") == content_hash(b"A:1\r\nDTSTAMP:2\r\n")


def test_resource_names_are_safe_and_distinct() -> None:
    assert resource_name("TU1001") == "TU1001.ics"
    odd = [resource_name(uid) for uid in ("a/b", "a b", "a?b", "../x", "ü", "a" * 200, ".hidden")]
    assert len(set(odd)) == len(odd)
    for name in odd:
        stem = name.removesuffix(".ics")
        assert stem and all(c.isascii() and (c.isalnum() or c in "-_") for c in stem), name


# ---------------------------------------------------------------- state


def test_push_state_survives_reopening_and_uses_wal(tmp_path: Path) -> None:
    state = PushState.in_state_dir(tmp_path)
    state.save("t", Row("u1", "/c/u1.ics", None, None))
    state.save("t", Row("u1", "/c/u1.ics", '"e1"', "h1"))
    state.save("t", Row("u2", "/c/u2.ics", None, None))
    state.save_seen("t", [Row("u2", "/c/u2.ics", '"e2"', None)], "token-1", state.mark())
    state.save("other", Row("u1", "/d/u1.ics", '"x"', "h"))
    state.forget("other", "u1")
    state.close()
    again = PushState(tmp_path / "push.db")
    assert again.rows("t") == {
        "u1": Row("u1", "/c/u1.ics", '"e1"', "h1"),
        "u2": Row("u2", "/c/u2.ics", '"e2"', None),
    }
    assert again.rows("t")["u1"].intent is False
    assert again.sync_token("t") == "token-1" and again.sync_token("other") is None
    assert again.rows("other") == {}
    assert again.schema_version == len(MIGRATIONS)
    again.close()
    with sqlite3.connect(tmp_path / "push.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_rows_written_after_a_listing_was_asked_for_are_fresh(tmp_path: Path) -> None:
    state = PushState(tmp_path / "push.db")
    state.save("t", Row("old", "/c/old.ics", '"1"', "h"))
    mark = state.mark()
    state.save("t", Row("new", "/c/new.ics", '"2"', "h"))  # while the listing is under way
    state.save_seen("t", [], "token", mark)
    assert {uid: row.fresh for uid, row in state.rows("t").items()} == {"old": False, "new": True}
    state.close()
    again = PushState(tmp_path / "push.db")  # the sequence goes on after a restart
    assert again.mark() >= mark + 1
    again.save_seen("t", [], "token-2", again.mark())
    again.save("t", Row("old", "/c/old.ics", '"3"', "h"))
    assert {uid: row.fresh for uid, row in again.rows("t").items()} == {"old": True, "new": False}
    again.close()


def test_push_state_refuses_a_newer_schema(tmp_path: Path) -> None:
    PushState(tmp_path / "push.db").close()
    with sqlite3.connect(tmp_path / "push.db") as db:
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StateError, match="schema 99 is newer"):
        PushState(tmp_path / "push.db")
