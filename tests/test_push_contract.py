"""One contract for CalDAV push, run against real servers on 127.0.0.1: Radicale and Xandikos.

Each test starts its own server and drives one sync at a time (``TargetSync``), counting the
requests by method; what the server holds is read back through its own calendar-query REPORT.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import icalendar
import pytest
from structlog.testing import capture_logs

from icalproxy.config.model import CalDAVTarget
from icalproxy.core.split import Resource, content_hash, split_feed
from icalproxy.daemon.metrics import Metrics
from icalproxy.daemon.push import PushManager, SyncResult, TargetSync
from icalproxy.daemon.push_state import PushState
from icalproxy.errors import PushError
from tests.push_servers import KINDS, PASSWORD, USER, CalDAVServer
from tests.support import NOW, generated_feed, rules_from

OWN_EVENT = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//phone//EN\r\nBEGIN:VEVENT\r\nUID:my-dentist\r\n"
    b"DTSTAMP:20261101T000000Z\r\nDTSTART:20261203T080000Z\r\nSUMMARY:Dentist\r\nEND:VEVENT\r\n"
    b"END:VCALENDAR\r\n"
)


@pytest.fixture(params=KINDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CalDAVServer]:
    caldav_server = CalDAVServer(request.param, tmp_path / request.param).start()
    yield caldav_server
    caldav_server.stop()


@pytest.fixture
def state(tmp_path: Path) -> Iterator[PushState]:
    push_state = PushState.in_state_dir(tmp_path / "state")
    yield push_state
    push_state.close()


def technician_feed(events: int = 40, seed: int = 7) -> bytes:
    """A technician's feed from the shared Teamup-shaped generator (overrides, time zones)."""
    from icalproxy.core.pipeline import build_feeds

    data, _ = generated_feed(events, seed=seed)
    rules = rules_from("sources: {t: {url: t.ics}}\nfeeds:\n  tech: {title: Tech, profile: technician}\n")
    return build_feeds({"t": data}, rules, NOW).feeds["tech"].body


class Mirror:
    """The sync engine pointed at one server, with its state and a request count."""

    def __init__(self, server: CalDAVServer, state: PushState, password: str = PASSWORD) -> None:
        self.target = CalDAVTarget(url=server.url, username=USER, password=password)
        self.state = state
        self.requests: Counter[str] = Counter()  # by method; 423 Locked retries apart
        self.locked = 0

    def sync(self, resources: Mapping[str, Resource]) -> SyncResult:
        self.requests.clear()

        def count(method: str, status: str) -> None:
            if status == "423":
                self.locked += 1  # Xandikos: another PUT holds its git index; tried again
            else:
                self.requests[method] += 1

        return TargetSync("tech#0", "tech", self.target, self.state, resources, count=count).run()


def changed(resource: Resource, old: bytes, new: bytes) -> Resource:
    body = resource.body.replace(old, new, 1)
    assert body != resource.body
    return replace(resource, body=body, hash=content_hash(body))


def events_of(data: str | bytes) -> set[tuple[str, str, str, str]]:
    """What a calendar client shows of each VEVENT (servers may re-serialise the bytes)."""
    found = set()
    for event in icalendar.Calendar.from_ical(data).walk("VEVENT"):
        recurrence = event.get("RECURRENCE-ID")
        found.add(
            (
                str(event["UID"]),
                recurrence.to_ical().decode() if recurrence is not None else "",
                str(event.get("SUMMARY", "")),
                event["DTSTART"].to_ical().decode(),
            )
        )
    return found


def ours(server: CalDAVServer) -> dict[str, tuple[str, str]]:
    return {href: item for href, item in server.objects().items() if "my-dentist" not in item[1]}


def test_first_sync_creates_every_event_and_a_second_sync_sends_nothing(
    server: CalDAVServer, state: PushState
) -> None:
    resources = split_feed(technician_feed())
    mirror = Mirror(server, state)
    result = mirror.sync(resources)
    assert (result.created, result.updated, result.deleted, result.pending) == (len(resources), 0, 0, 0)
    assert mirror.requests == {"REPORT": 1, "PUT": len(resources)}
    stored = ours(server)
    assert len(stored) == len(resources)
    expected = set().union(*(events_of(r.body) for r in resources.values()))
    assert set().union(*(events_of(data) for _, data in stored.values())) == expected
    again = mirror.sync(resources)
    assert (again.created, again.updated, again.deleted) == (0, 0, 0)
    assert mirror.requests == {"REPORT": 1}


@pytest.mark.slow
def test_events_read_back_pass_the_real_parsers(
    server: CalDAVServer, tmp_path: Path, state: PushState
) -> None:
    import subprocess
    import sys

    from tests.support import FEEDCHECK, need_shared
    from tests.test_real_clients import _parsers_installed

    resources = split_feed(technician_feed(12))  # feedcheck starts its parsers once per file
    Mirror(server, state).sync(resources)
    files = []
    for number, (_, data) in enumerate(sorted(ours(server).values())):
        path = tmp_path / f"object-{number}.ics"
        # python-caldav turns the CRLFs of every response into LF; the servers keep CRLF.
        path.write_bytes(data.replace("\r\n", "\n").replace("\n", "\r\n").encode())
        files.append(path)
    need_shared(FEEDCHECK)
    run = [sys.executable, str(FEEDCHECK), "--from", "2026-11-01", "--years", "2", *map(str, files)]
    output = subprocess.run(run, capture_output=True, text=True, timeout=600).stdout
    _parsers_installed(output)
    # The parsers must read every object. feedcheck's byte-level checks (check:*) are not
    # asserted: the servers re-serialise what they store (Radicale folds some lines at 76
    # octets), and those bytes are theirs, not icalproxy's.
    for parser in ("ical.js", "icalendar"):
        assert len(re.findall(rf"^PASS {re.escape(parser)}", output, re.M)) == len(files), output
    assert not re.search(r"^FAIL (ical\.js|icalendar|libical)", output, re.M), output
    expected = set().union(*(events_of(r.body) for r in resources.values()))
    assert set().union(*(events_of(path.read_bytes()) for path in files)) == expected


def test_a_changed_event_updates_exactly_one_resource(server: CalDAVServer, state: PushState) -> None:
    resources = split_feed(technician_feed())
    mirror = Mirror(server, state)
    mirror.sync(resources)
    before = ours(server)
    uid = sorted(resources)[3]
    edited = {**resources, uid: changed(resources[uid], b"SUMMARY:", b"SUMMARY:Moved to 14:00 - ")}
    result = mirror.sync(edited)
    assert (result.created, result.updated, result.deleted, result.drift) == (0, 1, 0, 0)
    assert mirror.requests == {"REPORT": 1, "PUT": 1}
    after = ours(server)
    assert after.keys() == before.keys()
    moved = [href for href in after if after[href] != before[href]]
    assert len(moved) == 1 and "Moved to 14:00" in after[moved[0]][1]
    assert mirror.sync(edited).requests == 1  # settled: the next sync only asks what changed


def test_a_removed_event_is_deleted(server: CalDAVServer, state: PushState) -> None:
    resources = split_feed(technician_feed())
    mirror = Mirror(server, state)
    mirror.sync(resources)
    gone = sorted(resources)[0]
    result = mirror.sync({uid: r for uid, r in resources.items() if uid != gone})
    assert (result.created, result.updated, result.deleted) == (0, 0, 1)
    assert mirror.requests == {"REPORT": 1, "DELETE": 1}
    left = ours(server)
    assert len(left) == len(resources) - 1
    assert not any(f"UID:{gone}" in data for _, data in left.values())


def test_the_users_own_event_survives_every_sync(server: CalDAVServer, state: PushState) -> None:
    server.put("dentist.ics", OWN_EVENT)
    own = {href: item for href, item in server.objects().items() if "my-dentist" in item[1]}
    resources = split_feed(technician_feed())
    mirror = Mirror(server, state)
    mirror.sync(resources)
    uid = sorted(resources)[1]
    mirror.sync({**resources, uid: changed(resources[uid], b"SUMMARY:", b"SUMMARY:x")})
    result = mirror.sync({})  # the feed emptied: everything icalproxy put there goes
    assert result.deleted == len(resources)
    assert server.objects() == own  # same href, same ETag, same data


def test_resources_edited_or_deleted_on_the_server_are_restored(
    server: CalDAVServer, state: PushState
) -> None:
    resources = split_feed(technician_feed())
    mirror = Mirror(server, state)
    mirror.sync(resources)
    stored = ours(server)
    hrefs = sorted(stored)
    server.put(
        hrefs[0].rsplit("/", 1)[1], stored[hrefs[0]][1].replace("SUMMARY:", "SUMMARY:EDITED ").encode()
    )
    server.delete(hrefs[1])
    result = mirror.sync(resources)
    assert result.drift == 2 and (result.created, result.updated) == (1, 1)
    assert mirror.requests == {"REPORT": 1, "PUT": 2}
    restored = ours(server)
    assert restored.keys() == stored.keys()
    assert not any("EDITED" in data for _, data in restored.values())
    expected = set().union(*(events_of(r.body) for r in resources.values()))
    assert set().union(*(events_of(data) for _, data in restored.values())) == expected


def test_a_sync_interrupted_half_way_resumes_without_duplicates(
    server: CalDAVServer, state: PushState
) -> None:
    """The budget stops a sync after some creates, one intent row is left as a crash would
    leave it (the PUT went through, its answer was lost): the next sync adopts it."""
    resources = split_feed(technician_feed())
    mirror = Mirror(server, state)
    first = TargetSync(
        "tech#0", "tech", mirror.target, mirror.state, resources, count=lambda *_: None, budget=11
    )
    result = first.run()
    assert result.created in (10, 11) and result.pending == len(resources) - result.created
    key = first.key
    rows = mirror.state.rows(key)
    lost = next(iter(rows.values()))
    mirror.state.save(key, replace(lost, etag=None, hash=None))
    result = mirror.sync(resources)
    assert result.pending == 0 and result.drift == 0
    stored = ours(server)
    assert len(stored) == len(resources)
    uids = [re.search(r"^UID:(.*)$", data, re.M)[1].strip() for _, data in stored.values()]  # type: ignore[index]
    assert sorted(uids) == sorted(resources)  # each once


def test_a_name_taken_by_someone_else_is_left_alone(server: CalDAVServer, state: PushState) -> None:
    resources = split_feed(technician_feed())
    uid = sorted(resources)[0]
    server.put(resources[uid].name, OWN_EVENT)
    result = Mirror(server, state).sync(resources)
    assert result.conflicts == 1 and result.created == len(resources) - 1
    assert any("my-dentist" in data for _, data in server.objects().values())


def test_wrong_password_is_a_clear_error_without_the_password(server: CalDAVServer, state: PushState) -> None:
    wrong = "WRONG-pass-SECRET"
    mirror = Mirror(server, state, password=wrong)
    with pytest.raises(PushError) as caught:
        mirror.sync(split_feed(technician_feed()))
    assert "authentication failed" in str(caught.value) and caught.value.status == 401
    assert wrong not in str(caught.value) and PASSWORD not in str(caught.value)


async def test_server_down_backs_off_then_recovers(server: CalDAVServer, state: PushState) -> None:
    body = technician_feed()
    config = SimpleNamespace(
        rules=SimpleNamespace(
            feeds={"tech": SimpleNamespace(name="tech", push=(CalDAVTarget(server.url, USER, PASSWORD),))}
        )
    )
    metrics = Metrics()
    manager = PushManager(config, state, metrics, backoff=0.3)  # type: ignore[arg-type]
    server.kill()
    with capture_logs() as logs:
        manager.start({"tech": SimpleNamespace(body=body)})
        status = manager.runners["tech#0"].status
        await _until(lambda: status.failures >= 2, "two failed attempts")
        assert status.last_error and "failed" in status.last_error and status.next_attempt is not None
        assert status.last_success is None
        await asyncio.to_thread(server.start)
        await _until(lambda: status.last_success is not None, "recovery", timeout=30)
    await manager.stop()
    assert status.failures == 0 and status.last_error is None and status.pending == 0
    assert len(ours(server)) == len(split_feed(body))
    failures = [entry for entry in logs if entry["event"] == "push_failed"]
    assert (
        len(failures) >= 2 and failures[1]["retry_in"] >= failures[0]["retry_in"] * 0.6
    )  # grows (with jitter)
    assert any(status == "error" for (_, _, status) in metrics.push_requests)
    assert metrics.push_pending["tech#0"] == 0 and "tech#0" in metrics.push_last_success
    readiness = json.dumps(manager.readiness())
    assert PASSWORD not in readiness and PASSWORD not in json.dumps(logs, default=str)


async def _until(check, what: str, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_hanging_target_delays_neither_other_targets_nor_the_caller(
    server: CalDAVServer, state: PushState
) -> None:
    """One target accepts connections and never answers; the other is synced meanwhile, and
    handing a changed feed over returns at once."""
    import socket

    body = technician_feed()  # first: it may skip, and the socket below must not be left open
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(8)  # never accepted: requests wait for an answer that does not come
    stuck = CalDAVTarget(f"http://127.0.0.1:{hang.getsockname()[1]}/cal/", USER, PASSWORD)
    good = CalDAVTarget(server.url, USER, PASSWORD)
    feed = SimpleNamespace(name="tech", push=(stuck, good))
    config = SimpleNamespace(rules=SimpleNamespace(feeds={"tech": feed}))
    manager = PushManager(config, state, Metrics(), backoff=0.2)  # type: ignore[arg-type]
    started = time.perf_counter()
    manager.start({"tech": SimpleNamespace(body=body)})
    manager.feed_changed("tech", body)
    assert time.perf_counter() - started < 0.1
    hung, fine = manager.runners["tech#0"].status, manager.runners["tech#1"].status
    try:
        await _until(lambda: fine.last_success is not None, "the healthy target", timeout=30)
        assert hung.last_success is None and hung.last_sync is not None
        assert len(ours(server)) == len(split_feed(body))
    finally:
        hang.close()  # the waiting request ends with a reset
        await _until(lambda: hung.failures >= 1, "the hanging target's error", timeout=40)
        await manager.stop()
