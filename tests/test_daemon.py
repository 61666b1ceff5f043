"""The daemon end to end: a real upstream on 127.0.0.1, ``icalproxy serve`` as a subprocess,
real files in a temporary state folder, real HTTP requests."""

from __future__ import annotations

import hashlib
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from email.utils import formatdate
from pathlib import Path

import pytest

from tests.harness import Daemon, Upstream, create_token, first_tenth, http, raw_get, wait_until
from tests.support import FIXTURES, ROOT, calendar, structure_problems, unfolded

JOBS = (FIXTURES / "teamup-jobs.ics").read_bytes()


@pytest.fixture
def setup(tmp_path: Path, upstream: Upstream) -> tuple[Path, Upstream]:
    upstream.state.mode = "ok"
    upstream.state.set_body(JOBS)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "feeds.yaml").write_text(
        "feeds:\n"
        "  acme: {title: Acme, from: [jobs], where: {subcalendar: 'Client: Acme Corp'}}\n"
        "  mueller: {title: Müller, from: [jobs], where: {subcalendar: 'Client: Bäckerei Müller'}}\n"
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        "state_dir: state\nrules: rules\n"
        "server: {public_url: 'https://cal.example.test'}\n"
        "sources:\n"
        f"  jobs: {{url: '{upstream.url}', every: 1h, timeout: 2, connect_timeout: 1, retries: 0,\n"
        "         max_bytes: 5MB, shrink_guard: {max_loss: 0.5, confirm_pulls: 2}}\n"
    )
    return config, upstream


@pytest.fixture
def daemon(setup: tuple[Path, Upstream], tmp_path: Path) -> Iterator[Daemon]:
    config, _ = setup
    process = Daemon(config, tmp_path)
    yield process
    if process.process is not None:
        process.stop()


def feed_url(daemon: Daemon, token: str) -> str:
    return f"{daemon.base}/feed/{token}.ics"


def source_status(daemon: Daemon) -> dict:
    return daemon.ready()[1]["sources"]["jobs"]


def test_subscribe_url_serves_the_client_feed_and_follows_upstream(
    setup: tuple[Path, Upstream], daemon: Daemon
) -> None:
    config, upstream = setup
    token = create_token(config, "acme", "Alice")
    daemon.start()
    status, headers, body = http(feed_url(daemon, token))
    assert status == 200
    assert headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert headers["Referrer-Policy"] == "no-referrer" and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"].startswith("private, max-age=")
    assert "Content-Encoding" not in headers  # no gzip unless configured
    assert b"SUMMARY:Install heat pump" in body and "SECRET" not in unfolded(body)
    assert structure_problems(body) == []
    etag, last_modified = headers["ETag"], headers["Last-Modified"]

    assert http(feed_url(daemon, token), {"If-None-Match": etag})[0] == 304
    assert http(feed_url(daemon, token), {"If-Modified-Since": last_modified})[0] == 304
    head = subprocess.run(["curl", "-sI", feed_url(daemon, token)], capture_output=True, text=True)
    if head.returncode == 0:
        assert head.stdout.startswith("HTTP/1.1 200") and etag in head.stdout

    time.sleep(1.1)  # a change within the same second must still move Last-Modified
    upstream.state.set_body(JOBS.replace(b"Building B", b"Building C"))
    daemon.pull_now()
    wait_until(lambda: http(feed_url(daemon, token))[1]["ETag"] != etag, what="new version")
    status, new_headers, new_body = http(feed_url(daemon, token))
    assert b"Building C" in new_body
    assert http(feed_url(daemon, token), {"If-None-Match": etag})[0] == 200
    assert http(feed_url(daemon, token), {"If-Modified-Since": last_modified})[0] == 200
    assert new_headers["Last-Modified"] != last_modified

    upstream.state.conditional_hits = 0
    daemon.pull_now()
    wait_until(lambda: upstream.state.conditional_hits == 1, what="conditional GET")
    log = daemon.log()
    assert token not in log and "SECRETLINKKEY" not in log
    assert daemon.stop() == 0  # SIGTERM: graceful


def test_shrink_guard_holds_until_confirmed_or_accepted(setup: tuple[Path, Upstream], daemon: Daemon) -> None:
    config, upstream = setup
    token = create_token(config, "acme")
    daemon.start()
    good = http(feed_url(daemon, token))[2]
    shrunk = first_tenth(JOBS)
    upstream.state.set_body(shrunk)
    daemon.pull_now()
    wait_until(lambda: source_status(daemon)["shrink_guard"]["held"], what="shrink held")
    status = source_status(daemon)
    assert "shrink guard: 11 → 1 events" in status["last_error"]
    assert http(feed_url(daemon, token))[2] == good
    assert 'icalproxy_source_shrink_held{source="jobs"} 1' in daemon.metrics()

    daemon.pull_now()  # confirm_pulls: 2 → the shrink has persisted: accepted
    wait_until(lambda: http(feed_url(daemon, token))[2] != good, what="shrink accepted")
    assert source_status(daemon)["events"] == 1

    upstream.state.set_body(JOBS)  # grows back: no guard needed
    daemon.pull_now()
    wait_until(lambda: http(feed_url(daemon, token))[2] == good, what="back to full")
    upstream.state.set_body(shrunk)
    subprocess.run(
        [sys.executable, "-m", "icalproxy.cli", "accept-shrink", "--config", str(config), "jobs"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    daemon.pull_now()
    wait_until(lambda: source_status(daemon)["events"] == 1, what="accepted by ops at once")


def test_restart_with_upstream_down_serves_from_state(
    setup: tuple[Path, Upstream], daemon: Daemon, tmp_path: Path
) -> None:
    config, upstream = setup
    token = create_token(config, "acme")
    daemon.start()
    _, headers, body = http(feed_url(daemon, token))
    daemon.stop()
    upstream.state.mode = "500"
    restarted = Daemon(config, tmp_path).start()
    try:
        again = http(feed_url(restarted, token))
        assert again[0] == 200 and again[2] == body
        assert (again[1]["ETag"], again[1]["Last-Modified"]) == (headers["ETag"], headers["Last-Modified"])
        wait_until(lambda: source_status(restarted)["last_error"] == "HTTP 500", what="error visible")
    finally:
        restarted.stop()


def test_corrupt_state_is_ignored_not_served(
    setup: tuple[Path, Upstream], daemon: Daemon, tmp_path: Path
) -> None:
    config, _ = setup
    token = create_token(config, "acme")
    daemon.start()
    body = http(feed_url(daemon, token))[2]
    daemon.stop()
    with closing(sqlite3.connect(tmp_path / "state" / "icalproxy.db")) as db, db:  # every version torn
        assert db.execute("UPDATE feed_versions SET body = substr(body, 1, 300) WHERE feed = 'acme'").rowcount
    restarted = Daemon(config, tmp_path).start()
    try:
        assert http(feed_url(restarted, token))[2] == body  # re-rendered from the source state
        assert "state_corrupt_ignored" in restarted.log()
    finally:
        restarted.stop()


def test_tokens_revoke_at_once_and_unknown_is_404(setup: tuple[Path, Upstream], daemon: Daemon) -> None:
    config, _ = setup
    alice = create_token(config, "acme", "Alice")
    bob = create_token(config, "acme", "Bob")
    mueller = create_token(config, "mueller")
    daemon.start()
    assert http(feed_url(daemon, alice))[0] == 200
    assert b"Site survey" in http(feed_url(daemon, mueller))[2]
    listing = subprocess.run(
        [sys.executable, "-m", "icalproxy.cli", "token", "list", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Alice" in listing and alice not in listing
    alice_id = next(line.split()[0] for line in listing.splitlines() if line.endswith("Alice"))
    subprocess.run(
        [sys.executable, "-m", "icalproxy.cli", "token", "revoke", "--config", str(config), alice_id],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert http(feed_url(daemon, alice))[0] == 410
    assert http(feed_url(daemon, bob))[0] == 200
    assert http(feed_url(daemon, "A" * 43))[0] == 404
    database = config.parent / "state" / "icalproxy.db"
    assert alice.encode() not in database.read_bytes() and oct(database.stat().st_mode)[-3:] == "600"


TRAVERSALS = (
    "/../state/tokens.json",
    "/{route}/../state/tokens.json",
    "/{route}/../../config.yaml",
    "/{route}/..%2f..%2fconfig.yaml",
    "/{route}/%2e%2e/%2e%2e/state/tokens.json",
    "/{route}/%252e%252e/state/tokens.json",
    "/{route}/..\\..\\state\\tokens.json",
    "/{route}%2f..%2fstate%2ftokens.json",
    "/{route}/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/{route}/....//....//etc/passwd",
    "//etc/passwd",
    "/{route}/%00/../state/tokens.json",
)


def test_path_traversal_on_every_route_is_404(setup: tuple[Path, Upstream], daemon: Daemon) -> None:
    """Sent byte for byte over a raw socket, so that no client tidies the path first."""
    config, _ = setup
    token = create_token(config, "acme")
    daemon.start()
    routes = ["healthz", "readyz", "metrics", "feed", f"feed/{token}.ics", "state", "rules"]
    secrets = [token, "SECRETLINKKEY", "root:", "sources:", "sha256"]
    tried = 0
    for route in routes:
        for pattern in TRAVERSALS:
            target = pattern.format(route=route)
            status, response = raw_get(daemon.port, target)
            assert status == 404, (target, response[:200])
            assert not any(secret.encode() in response for secret in secrets), target
            tried += 1
    assert raw_get(daemon.port, f"/feed/{token}.ics")[0] == 200  # the route itself still works
    assert tried == len(routes) * len(TRAVERSALS)


def test_bad_rules_edit_keeps_old_rules_and_shows_the_error(
    setup: tuple[Path, Upstream], daemon: Daemon
) -> None:
    config, _ = setup
    token = create_token(config, "acme")
    daemon.start()
    body = http(feed_url(daemon, token))[2]
    rules = config.parent / "rules" / "feeds.yaml"
    good_rules = rules.read_text()
    rules.write_text(good_rules.replace("subcalendar:", "subcalender:"))
    wait_until(lambda: daemon.ready()[1]["config"]["last_reload_error"] is not None, what="rejected")
    error = daemon.ready()[1]["config"]["last_reload_error"]
    assert "feeds.yaml:2: unknown key 'subcalender'" in error
    assert http(feed_url(daemon, token))[2] == body
    assert "icalproxy_config_last_reload_ok 0" in daemon.metrics()

    rules.write_text(good_rules.replace("title: Acme,", "title: Acme Corp (new title),"))
    daemon.send(signal.SIGHUP)
    wait_until(lambda: b"NAME:Acme Corp (new title)" in http(feed_url(daemon, token))[2], what="reload")
    assert daemon.ready()[1]["config"]["last_reload_error"] is None

    rules.write_text("\n".join(line for line in good_rules.splitlines() if "acme:" not in line) + "\n")
    daemon.send(signal.SIGHUP)
    wait_until(lambda: http(feed_url(daemon, token))[0] == 410, what="a removed feed's token is gone")


def test_readiness_before_first_pull_and_metrics(setup: tuple[Path, Upstream], daemon: Daemon) -> None:
    config, upstream = setup
    token = create_token(config, "acme")
    upstream.state.mode = "500"
    daemon.start(wait_ready=False)
    wait_until(lambda: source_status(daemon)["last_error"] == "HTTP 500", what="first pull failed")
    status, body = daemon.ready()
    assert status == 503 and body["feeds"]["acme"] == {"ready": False}
    assert http(feed_url(daemon, token))[0] == 503  # never an empty calendar
    upstream.state.mode = "ok"
    daemon.pull_now()
    wait_until(lambda: daemon.ready()[0] == 200, what="ready")
    metrics = daemon.metrics()
    for name in (
        "icalproxy_fetches_total",
        "icalproxy_source_last_success_timestamp_seconds",
        'icalproxy_feed_events{feed="acme"} 6',
        "icalproxy_render_seconds_count",
        "icalproxy_http_requests_total",
        "icalproxy_config_last_reload_ok 1",
    ):
        assert name in metrics


def test_if_modified_since_in_the_past_and_garbage(setup: tuple[Path, Upstream], daemon: Daemon) -> None:
    config, _ = setup
    token = create_token(config, "acme")
    daemon.start()
    old = formatdate(time.time() - 86400, usegmt=True)
    assert http(feed_url(daemon, token), {"If-Modified-Since": old})[0] == 200
    assert http(feed_url(daemon, token), {"If-Modified-Since": "yesterday-ish"})[0] == 200
    assert http(feed_url(daemon, token), {"If-None-Match": '"nope", *'})[0] == 304


def test_gzip_only_when_allowed_and_asked(setup: tuple[Path, Upstream], tmp_path: Path) -> None:
    import gzip as gz

    config, _ = setup
    config.write_text(config.read_text().replace("server: {", "server: {gzip: true, "))
    token = create_token(config, "acme")
    daemon = Daemon(config, tmp_path).start()
    try:
        plain = http(feed_url(daemon, token))
        assert "Content-Encoding" not in plain[1] and plain[1]["Vary"] == "Accept-Encoding"
        zipped = http(feed_url(daemon, token), {"Accept-Encoding": "gzip"})
        assert zipped[1]["Content-Encoding"] == "gzip"
        assert gz.decompress(zipped[2]) == plain[2]
        assert zipped[1]["ETag"] != plain[1]["ETag"]  # a different representation
        assert (
            http(feed_url(daemon, token), {"Accept-Encoding": "gzip", "If-None-Match": zipped[1]["ETag"]})[0]
            == 304
        )
    finally:
        daemon.stop()


def test_a_large_feed_is_sent_whole_to_concurrent_clients(
    setup: tuple[Path, Upstream], daemon: Daemon
) -> None:
    """Feeds above 64 KB are streamed from the stored bytes: same bytes, same headers. Above
    1 MB, readiness tells ops that Google Calendar will not take the feed."""
    config, upstream = setup
    jobs = [
        f"UID:big-{i}\nDTSTART:2026120{1 + i % 9}T080000Z\nSUMMARY:Job {i} {'x' * 300}\n"
        "CATEGORIES:Client: Acme Corp\nDESCRIPTION:SECRET note"
        for i in range(3000)
    ]
    upstream.state.set_body(calendar(*jobs))
    token = create_token(config, "acme")
    daemon.start()
    url = feed_url(daemon, token)
    status, headers, body = http(url)
    assert status == 200 and len(body) > 1_000_000 and int(headers["Content-Length"]) == len(body)
    assert headers["Referrer-Policy"] == "no-referrer" and headers["X-Content-Type-Options"] == "nosniff"
    assert body.endswith(b"END:VCALENDAR\r\n") and body.count(b"BEGIN:VEVENT") == 3000
    feeds = daemon.ready()[1]["feeds"]
    assert feeds["acme"]["bytes"] == len(body) and "Google Calendar" in " ".join(feeds["acme"]["notes"])
    assert not any("Google" in note for note in feeds["mueller"]["notes"])  # only its empty-rule notes
    assert f'icalproxy_feed_bytes{{feed="acme"}} {len(body)}' in daemon.metrics()
    assert '"' + hashlib.sha256(body).hexdigest()[:32] + '"' == headers["ETag"]
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _: http(url)[2], range(24)))
    assert all(other == body for other in bodies)
    # HEAD then GET on one connection: the HEAD answer must carry no body at all.
    path = url.removeprefix(daemon.base)
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as connection:
        connection.sendall(
            f"HEAD {path} HTTP/1.1\r\nHost: t\r\n\r\n"
            f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
        )
        received = b"".join(iter(lambda: connection.recv(1 << 20), b""))
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and f"Content-Length: {len(body)}".encode() in head
    assert rest.startswith(b"HTTP/1.1 200") and rest.endswith(body)
    assert http(url, {"If-None-Match": headers["ETag"]})[0] == 304
    for _ in range(5):  # clients that hang up mid-download are not server errors
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as connection:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            connection.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            assert connection.recv(12) == b"HTTP/1.1 200"
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset
    assert http(url)[2] == body
    assert 'status="500"' not in daemon.metrics()
    assert "http_handler_crashed" not in daemon.log()


def test_every_response_carries_the_security_headers(setup: tuple[Path, Upstream], daemon: Daemon) -> None:
    config, _ = setup
    token = create_token(config, "acme")
    daemon.start()
    etag = http(feed_url(daemon, token))[1]["ETag"]
    for status, headers, _ in (
        http(feed_url(daemon, token), {"If-None-Match": etag}),
        http(f"{daemon.base}/feed/{'A' * 43}.ics"),
        http(f"{daemon.base}/nothing"),
        http(f"{daemon.base}/healthz"),
        http(f"{daemon.base}/metrics"),
    ):
        assert status in (200, 304, 404)
        assert headers["Referrer-Policy"] == "no-referrer", status
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"


def test_no_secret_in_health_metrics_or_error_pages(setup: tuple[Path, Upstream], daemon: Daemon) -> None:
    config, upstream = setup
    token = create_token(config, "acme")
    daemon.start()
    upstream.state.mode = "500"
    daemon.pull_now()
    wait_until(lambda: source_status(daemon)["last_error"] == "HTTP 500", what="error")
    paths = ("/readyz", "/metrics", "/healthz", "/nope", "/feed/x.ics")
    pages = [http(base + path)[2] for base in (daemon.base, daemon.ops) for path in paths]
    pages.append(http(feed_url(daemon, "B" * 43))[2])
    for page in pages:
        text = page.decode()
        assert token not in text and "SECRETLINKKEY" not in text and "Traceback" not in text
    assert source_status(daemon)["from"] == "http://127.0.0.1/…"
    upstream.state.mode = "ok"
