"""Real parts for integration tests: a controllable upstream on 127.0.0.1 (aiohttp, in a
thread) and the daemon itself as a subprocess, driven over HTTP and signals."""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

from aiohttp import web

from tests.support import ROOT


@functools.cache
def _BOMB() -> bytes:
    """60 MB of calendar-looking bytes, gzip-compressed to about 60 KB."""
    return gzip.compress(b"BEGIN:VCALENDAR\r\n" + b"X" * (60 * 1024 * 1024), compresslevel=9)


def first_tenth(body: bytes) -> bytes:
    """A valid calendar that lost nine tenths of the events of ``body`` (at least one is kept)."""
    head, *events = body.split(b"BEGIN:VEVENT")
    kept = b"BEGIN:VEVENT".join([head, *events[: max(1, len(events) // 10)]])
    return kept[: kept.rindex(b"END:VEVENT")] + b"END:VEVENT\r\nEND:VCALENDAR\r\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class UpstreamState:
    """What the upstream does next. Tests change it directly."""

    body: bytes = b""
    mode: str = "ok"  # ok, 500, 503, timeout, trickle, html, empty, truncated, invalid-utf8,
    #                   huge, gzip-bomb, redirect-loop, shrink-90 (tests switch to a dead port
    #                   for "connection refused")
    last_modified: float = field(default_factory=time.time)
    requests: int = 0
    conditional_hits: int = 0

    def set_body(self, body: bytes) -> None:
        self.body = body
        self.last_modified = time.time()


class Upstream:
    """An upstream calendar server on 127.0.0.1 with ETag/Last-Modified, failing on demand."""

    def __init__(self) -> None:
        self.state = UpstreamState()
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/feed/SECRETLINKKEY0123456789/0.ics"

    def start(self) -> Upstream:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/feed/{key}/0.ics", self._handle)
        app.router.add_get("/loop", self._loop_redirect)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        asyncio.run_coroutine_threadsafe(self._cancel_handlers(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _cancel_handlers(self) -> None:
        """Handlers still sleeping (timeout, trickle) end here rather than being destroyed pending."""
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop_redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        state.requests += 1
        mode = state.mode
        if mode in ("500", "503"):
            return web.Response(status=int(mode), text="upstream error")
        if mode == "timeout":
            await asyncio.sleep(30)
        if mode == "redirect-loop":
            raise web.HTTPFound("/loop")
        if mode == "html":
            return web.Response(
                text="<!DOCTYPE html><html><body>Please log in</body></html>", content_type="text/html"
            )
        if mode == "empty":
            return web.Response(body=b"", content_type="text/calendar")
        if mode == "truncated":
            return web.Response(body=state.body[: len(state.body) // 2], content_type="text/calendar")
        if mode == "shrink-90":
            return web.Response(body=first_tenth(state.body), content_type="text/calendar")
        if mode == "invalid-utf8":
            return web.Response(
                body=state.body.replace(b"SUMMARY:", b"SUMMARY:\xff\xfe", 1), content_type="text/calendar"
            )
        if mode == "huge":
            head = state.body.replace(b"END:VCALENDAR", b"")
            filler = b"X-FILLER:" + b"x" * 60 + b"\r\n"
            return web.Response(
                body=head + filler * (50 * 1024 * 1024 // len(filler)) + b"END:VCALENDAR\r\n",
                content_type="text/calendar",
            )
        if mode == "gzip-bomb":
            bomb = _BOMB()
            return web.Response(
                body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "text/calendar"}
            )
        if mode == "trickle":
            response = web.StreamResponse(headers={"Content-Type": "text/calendar"})
            await response.prepare(request)
            for _ in range(600):
                await response.write(b"X-TRICKLE:x\r\n")
                await asyncio.sleep(0.1)
            return response
        etag = '"' + hashlib.sha256(state.body).hexdigest()[:16] + '"'
        headers = {"ETag": etag, "Last-Modified": formatdate(state.last_modified, usegmt=True)}
        if request.headers.get("If-None-Match") == etag:
            state.conditional_hits += 1
            return web.Response(status=304, headers=headers)
        return web.Response(body=state.body, headers=headers, content_type="text/calendar")


def http(
    url: str, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # loopback only
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """GET ``target`` exactly as written (no client-side normalisation of ``..`` or escapes):
    the status and the whole response."""
    request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request.encode("latin-1"))
        response = b""
        while chunk := connection.recv(65536):
            response += chunk
    return int(response.split(b" ", 2)[1]), response


class Daemon:
    """``icalproxy serve`` as a subprocess; its log is kept for inspection."""

    def __init__(self, config: Path, workdir: Path) -> None:
        self.config = config
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ops_port = free_port()
        self.ops = f"http://127.0.0.1:{self.ops_port}"  # /readyz and /metrics live here
        self.log_path = workdir / f"daemon-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True, wait_up: bool = True) -> Daemon:
        """Spawn the daemon; wait until it listens (``wait_up``) and is ready (``wait_ready``)."""
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "icalproxy.cli",
                "serve",
                "--config",
                str(self.config),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--ops-listen",
                f"127.0.0.1:{self.ops_port}",
                "--log-format",
                "json",
            ],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        if not wait_up:
            return self
        wait_until(self._up, timeout=20, what="daemon listening")
        if wait_ready:
            wait_until(lambda: self.ready()[0] == 200, timeout=20, what="daemon ready")
        return self

    def _up(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"daemon exited: {self.log()[-2000:]}")
        try:
            return http(self.base + "/healthz", timeout=1)[0] == 200
        except OSError:
            return False

    def ready(self) -> tuple[int, dict]:
        status, _, body = http(self.ops + "/readyz")
        return status, json.loads(body)

    def metrics(self) -> str:
        return http(self.ops + "/metrics")[2].decode()

    def send(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def pull_now(self) -> None:
        self.send(signal.SIGUSR1)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self) -> list[dict]:
        found = []
        for line in self.log().splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found


def wait_until(check: Callable[[], bool], timeout: float = 15, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


ACME_FEED = "  acme: {title: Acme, from: [jobs], where: {subcalendar: 'Client: Acme Corp'}}\n"
MUELLER_FEED = "  mueller: {title: Müller, from: [jobs], where: {subcalendar: 'Client: Bäckerei Müller'}}\n"


def daemon_config(
    folder: Path, upstream: Upstream, *, feeds: str = ACME_FEED, server: str = "{}", source: str = "every: 1h"
) -> Path:
    """``folder/config.yaml`` with ``rules/feeds.yaml``: one source ``jobs`` on the upstream."""
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "rules" / "feeds.yaml").write_text("feeds:\n" + feeds)
    config = folder / "config.yaml"
    config.write_text(
        f"state_dir: state\nrules: rules\nserver: {server}\n"
        f"sources:\n  jobs: {{url: '{upstream.url}', {source}}}\n"
    )
    return config


def replica_config(
    folder: Path, upstream: Upstream, port: int, database: str, source: str, rest: str
) -> Path:
    """``folder/config.yaml`` of one replica: a state folder of its own, the PostgreSQL store
    on ``port`` that replicas share (password from ``PGPASSWORD``), the upstream as source
    ``source``, pulled when asked; ``rest`` is the YAML that follows (alerts, feeds)."""
    folder.mkdir()
    config = folder / "config.yaml"
    config.write_text(
        "state_dir: state\n"
        f"store: 'postgresql://icalproxy:${{PGPASSWORD}}@127.0.0.1:{port}/{database}'\n"
        "sources:\n"
        f"  {source}: {{url: '{upstream.url}', every: 1h, timeout: 2, connect_timeout: 1, retries: 0}}\n"
        + rest
    )
    return config


def create_token(config: Path, feed: str, label: str = "") -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "icalproxy.cli",
            "token",
            "new",
            "--config",
            str(config),
            feed,
            "--label",
            label,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    url = result.stdout.splitlines()[1].strip()
    return url.rsplit("/", 1)[1].removesuffix(".ics")


def run_cli(config: Path, *args: str) -> str:
    """``icalproxy ARGS… --config CONFIG`` in a subprocess; its output (it must succeed)."""
    command = [sys.executable, "-m", "icalproxy.cli", *args, "--config", str(config)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True, timeout=60).stdout


def store_problems(state_dir: Path) -> list[str]:
    """What is wrong in a SQLite state store, read as a second process would: SQLite's own
    integrity check, then every stored body against its checksum. Empty when all is whole."""
    import hashlib
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(state_dir / "icalproxy.db", timeout=30)) as db:
        problems = [row[0] for row in db.execute("PRAGMA integrity_check") if row[0] != "ok"]
        for table, key in (("sources", "name"), ("feed_versions", "feed || ':' || version")):
            for name, body, digest in db.execute(f"SELECT {key}, body, sha256 FROM {table}"):
                if hashlib.sha256(body).hexdigest() != digest:
                    problems.append(f"{table} {name}: checksum mismatch")
    return problems


def stored_feed(state_dir: Path, feed: str) -> tuple[int, bytes] | None:
    """(version, body) of the newest stored version of a feed, or None."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(state_dir / "icalproxy.db", timeout=30)) as db:
        row = db.execute(
            "SELECT version, body FROM feed_versions WHERE feed = ? ORDER BY version DESC LIMIT 1", (feed,)
        ).fetchone()
    return (int(row[0]), bytes(row[1])) if row else None
