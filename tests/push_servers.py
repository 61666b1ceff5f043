"""Real CalDAV servers on 127.0.0.1 for the push tests and benchmark: Radicale (its own
htpasswd auth) and Xandikos (no auth of its own, so a small Basic-auth proxy stands in front,
as a reverse proxy would in production). Both run as subprocesses in a temporary folder."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiohttp import ClientSession, web

from tests.harness import free_port

USER, PASSWORD = "jo", "S3CRET-caldav-pw"
_QUERY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
    '<C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>'
)
KINDS = ("radicale", "xandikos")


def _installed(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed: CI must run the CalDAV push tests")
        pytest.skip(f"{module} is not installed (bash scripts/test.sh installs it)")


def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"CalDAV server exited: {log.read_text(errors='replace')[-2000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("CalDAV server did not start listening")


class CalDAVServer:
    """One calendar collection on a real server; ``url`` is what a push target names."""

    def __init__(self, kind: str, folder: Path) -> None:
        _installed(kind)
        self.kind = kind
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()  # what clients connect to (the proxy's port for Xandikos)
        self._backend = free_port() if kind == "xandikos" else self.port
        self.process: subprocess.Popen[bytes] | None = None
        self._proxy: _AuthProxy | None = None
        path = "/jo/jobs/" if kind == "radicale" else "/user/calendars/calendar/"
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self.path = path

    # ------------------------------------------------------------ lifecycle

    def start(self) -> CalDAVServer:
        log = self.folder / "server.log"
        if self.kind == "radicale":
            (self.folder / "users").write_text(f"{USER}:{PASSWORD}\n")
            (self.folder / "radicale.conf").write_text(
                f"[server]\nhosts = 127.0.0.1:{self.port}\n"
                f"[auth]\ntype = htpasswd\nhtpasswd_filename = {self.folder / 'users'}\n"
                "htpasswd_encryption = plain\ndelay = 0\n"
                f"[storage]\nfilesystem_folder = {self.folder / 'data'}\n"
                "[rights]\ntype = owner_only\n[logging]\nlevel = warning\n"
            )
            command = [sys.executable, "-m", "radicale", "--config", str(self.folder / "radicale.conf")]
        else:
            command = [
                sys.executable,
                "-m",
                "xandikos.web",
                "--defaults",
                "-d",
                str(self.folder / "data"),
                "--state-dir",
                str(self.folder / "state"),
                "-l",
                "127.0.0.1",
                "-p",
                str(self._backend),
            ]
        with log.open("ab") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        _wait_port(self._backend, self.process, log)
        if self.kind == "xandikos" and self._proxy is None:
            self._proxy = _AuthProxy(self.port, self._backend).start()
        if self.kind == "radicale":
            with self.client() as client:
                if client.request(self.url, "PROPFIND", "", {"Depth": "0"}).status == 404:
                    assert client.request(self.url, "MKCALENDAR", "").status == 201
        return self

    def kill(self) -> None:
        """The server goes away at once (connections refused until ``start``)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.folder / "data", ignore_errors=True)

    # ------------------------------------------------------------ the test's own view

    @contextlib.contextmanager
    def client(self, password: str = PASSWORD) -> Iterator[Any]:
        import caldav

        client = caldav.DAVClient(
            url=self.url,
            username=USER,
            password=password,
            auth_type="basic",
            enable_rfc6764=False,
            timeout=30,
        )
        client.session.trust_env = False
        try:
            yield client
        finally:
            client.close()

    def objects(self) -> dict[str, tuple[str, str]]:
        """href → (ETag, calendar data), read through the server's own calendar-query REPORT."""
        with self.client() as client:
            response = client.report(self.url, _QUERY, depth=1)
        assert response.status == 207, response.status
        return {
            item.href: (str(item.etag), str(item.calendar_data))
            for item in response.parse_calendar_query()
            if item.calendar_data
        }

    def put(self, name: str, body: bytes) -> None:
        with self.client() as client:
            status = client.put(self.url + name, body.decode(), {"Content-Type": "text/calendar"}).status
        assert status in (201, 204), status

    def delete(self, href: str) -> None:
        with self.client() as client:
            assert client.delete(self.url.split(self.path)[0] + href).status in (200, 204)


class _AuthProxy:
    """Basic auth in front of Xandikos (which leaves authentication to a reverse proxy)."""

    _HOP: ClassVar[set[str]] = {"host", "authorization", "content-length", "transfer-encoding", "connection"}

    def __init__(self, port: int, backend: int) -> None:
        self.port, self.backend = port, backend
        self._expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None

    def start(self) -> _AuthProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._session = ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _forward(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self._expected:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="xandikos"'})
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in self._HOP}
        async with self._session.request(
            request.method,
            f"http://127.0.0.1:{self.backend}{request.rel_url}",
            headers=headers,
            data=await request.read(),
        ) as answer:
            body = await answer.read()
            keep = {k: v for k, v in answer.headers.items() if k.lower() not in self._HOP}
            return web.Response(status=answer.status, body=body, headers=keep)

    def stop(self) -> None:
        async def close() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
            if self._session is not None:
                await self._session.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
