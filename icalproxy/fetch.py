"""Pull one source: http(s) with aiohttp, or a local file. Polite and bounded.

Timeouts (connect and total), a body limit counted after decompression (so a gzip bomb
stops at the limit), at most a few redirects, conditional GET with the last validators,
retries with exponential backoff and jitter for transient failures only, and a check that
the body really is a complete iCalendar object: an HTML login page, an empty body or a
truncated download is an error, never an empty calendar.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from icalproxy import __version__
from icalproxy.config.model import Source
from icalproxy.core.lines import first_invalid_utf8
from icalproxy.errors import FetchError, NotCalendarError
from icalproxy.records import record

if TYPE_CHECKING:  # aiohttp is imported only when an http(s) source is pulled: `render` of
    import aiohttp  # file sources starts without the HTTP stack (see tests/test_startup.py)

USER_AGENT = f"icalproxy/{__version__} (calendar feed proxy)"
MAX_REDIRECTS = 5
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@record(frozen=True)
class Validators:
    etag: str | None = None
    last_modified: str | None = None


@record(frozen=True)
class Fetched:
    """``body`` is None for "not modified" (HTTP 304, or a file that did not change)."""

    body: bytes | None
    validators: Validators

    @property
    def not_modified(self) -> bool:
        return self.body is None


class Fetcher(Protocol):
    async def fetch(self, source: Source, validators: Validators) -> Fetched: ...


Sleep = Callable[[float], Awaitable[None]]


class SourceFetcher:
    """The real fetcher. ``session`` is owned by the caller (the app's cleanup context)."""

    def __init__(self, session: aiohttp.ClientSession, sleep: Sleep | None = None) -> None:
        import asyncio  # noqa: PLC0415  (only pulling over http needs the event loop)

        self.session = session
        self.sleep = sleep or asyncio.sleep

    async def fetch(self, source: Source, validators: Validators) -> Fetched:
        if source.is_file:
            return read_file_source(source, validators)
        attempt = 0
        while True:
            try:
                return await self._fetch_http(source, validators)
            except FetchError as exc:
                transient = exc.status is None or exc.status in _RETRY_STATUS
                if isinstance(exc, NotCalendarError) or not transient or attempt >= source.retries:
                    raise
            attempt += 1
            delay = min(60.0, 1.0 * 2 ** (attempt - 1))
            import random  # noqa: PLC0415  (imported when first needed: start-up)

            await self.sleep(delay * (0.5 + random.random()))  # full jitter around the delay

    async def _fetch_http(self, source: Source, validators: Validators) -> Fetched:
        import aiohttp  # noqa: PLC0415  (see the import at the top)

        headers = {"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5"}
        headers.update(source.headers)
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        timeout = aiohttp.ClientTimeout(total=source.timeout, sock_connect=source.connect_timeout)
        try:
            async with self.session.get(
                source.url, headers=headers, timeout=timeout, max_redirects=MAX_REDIRECTS
            ) as response:
                if response.status == 304:
                    return Fetched(None, validators)
                if response.status != 200:
                    raise FetchError(source.name, f"HTTP {response.status}", status=response.status)
                declared = response.content_length
                if declared is not None and declared > source.max_bytes:
                    raise FetchError(source.name, f"body of {declared} bytes is over the limit", status=413)
                body = await _read_limited(response, source)
                found = Validators(response.headers.get("ETag"), response.headers.get("Last-Modified"))
        except aiohttp.TooManyRedirects as exc:
            raise FetchError(source.name, "too many redirects", status=310) from exc
        except TimeoutError as exc:
            raise FetchError(source.name, "timed out") from exc
        except aiohttp.ClientResponseError as exc:
            raise FetchError(source.name, f"bad response: {exc.message}", status=exc.status) from exc
        except aiohttp.ClientError as exc:
            raise FetchError(source.name, connection_problem(source.url, exc)) from exc
        except (UnicodeError, ValueError) as exc:  # yarl/idna: a host that cannot be encoded
            raise FetchError(source.name, f"invalid host {_host(source.url)!r} in the URL") from exc
        check_calendar(source.name, body)
        return Fetched(body, found)


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def connection_problem(url: str, exc: aiohttp.ClientError) -> str:
    """What failed, with the host and the reason; never the URL (its path holds the link key)."""
    import aiohttp  # noqa: PLC0415

    host = _host(url)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate of {host} rejected: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve host {host}: {_os_reason(exc.os_error)}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port}: {_os_reason(exc.os_error)}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{host} closed the connection before answering"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"the body from {host} broke off (incomplete or badly encoded transfer)"
    if isinstance(exc, aiohttp.InvalidURL):
        return f"invalid URL for host {host} (a redirect to a non-http(s) or malformed address?)"
    if isinstance(exc, aiohttp.ClientOSError):
        return f"connection to {host} failed: {_os_reason(exc)}"
    return f"connection to {host} failed: {type(exc).__name__}"


def _os_reason(error: OSError) -> str:
    # asyncio's strerror is "Connect call failed (addr)"; the errno's own text says why.
    known = os.strerror(error.errno) if isinstance(error.errno, int) and error.errno > 0 else ""
    reason = known or error.strerror or type(error).__name__
    return reason[:1].lower() + reason[1:]


async def _read_limited(response: aiohttp.ClientResponse, source: Source) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > source.max_bytes:
            raise FetchError(source.name, f"body is over the limit of {source.max_bytes} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def read_file_source(source: Source, validators: Validators) -> Fetched:
    path = Path(source.url)
    try:
        stat = path.stat()
        stamp = f"{stat.st_mtime_ns}-{stat.st_size}"
        if validators.etag == stamp:
            return Fetched(None, validators)
        if stat.st_size > source.max_bytes:
            raise FetchError(source.name, f"file of {stat.st_size} bytes is over the limit", status=413)
        body = path.read_bytes()
    except FileNotFoundError as exc:
        written = f" {source.written!r}" if source.written else ""
        where = f" (url at {source.where}; looked for {path})" if source.where else f" ({path})"
        raise FetchError(source.name, f"file not found:{written}{where}", status=404) from exc
    except OSError as exc:
        raise FetchError(source.name, f"cannot read file: {exc.strerror}", status=403) from exc
    check_calendar(source.name, body)
    return Fetched(body, Validators(etag=stamp))


def check_calendar(source: str, body: bytes) -> None:
    """Accept only a complete iCalendar object (UTF-8, or UTF-16 with a byte order mark)."""
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            body = body.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotCalendarError(source, "body is not valid UTF-16") from exc
    head = body[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").upper()
    if not head:
        raise NotCalendarError(source, "empty body")
    if head.startswith((b"<!DOCTYPE", b"<HTML", b"<?XML", b"<")):
        raise NotCalendarError(source, "an HTML/XML page, not iCalendar")
    if not head.startswith(b"BEGIN:VCALENDAR"):
        raise NotCalendarError(source, "body does not start with BEGIN:VCALENDAR")
    tail = body[-4096:].rstrip(b" \t\r\n\x00")  # the tail only: no copy of the whole body
    if not tail[-64:].upper().endswith(b"END:VCALENDAR"):
        raise NotCalendarError(source, "truncated: body does not end with END:VCALENDAR")
    bad = first_invalid_utf8(body)  # a fold may split a character; that is valid
    if bad >= 0:
        raise NotCalendarError(source, f"invalid UTF-8 at byte {bad}")
