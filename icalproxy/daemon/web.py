"""HTTP: the secret feed URLs, health, readiness and metrics. Handlers stay small.

``GET``/``HEAD /feed/<token>.ics``: a token is looked up by its SHA-256 and compared in
constant time; unknown → 404, revoked → 410, with the same work done either way. Feeds are
served with a strong ETag (a hash of the bytes) and a Last-Modified that moves only when
the bytes change, so a 304 is never sent for changed content. No error text ever goes
into a feed body; no token ever reaches a log line.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate, parsedate_to_datetime

import structlog
from aiohttp import web

from icalproxy.config.model import Config
from icalproxy.daemon.metrics import Metrics
from icalproxy.daemon.push import PushManager
from icalproxy.daemon.service import FeedService, FeedVersion
from icalproxy.daemon.tokens import TokenStore

log = structlog.get_logger("icalproxy.http")

SERVICE = web.AppKey("service", FeedService)
TOKENS = web.AppKey("tokens", TokenStore)
METRICS = web.AppKey("metrics", Metrics)
PUSH = web.AppKey("push", PushManager)
TOKEN_PATTERN = r"[A-Za-z0-9_-]{16,128}"  # noqa: S105 - a URL pattern, not a secret
SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application) -> None:
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/feed/{token:" + TOKEN_PATTERN + "}.ics", serve_feed, name="feed")
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    app.router.add_get("/metrics", metrics, name="metrics")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response, just before its headers go out (streamed ones included)."""
    response.headers.update(SECURITY_HEADERS)


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request metrics and an access log that names routes, not paths."""
    started = time.perf_counter()
    route = request.match_info.route.name or "unmatched"
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    except Exception:
        log.exception("http_handler_crashed", route=route)
        response = web.Response(status=500, text="internal error\n")
    request.app[METRICS].requests[(route, response.status)] += 1
    log.info(
        "http_request",
        method=request.method,
        route=route,
        status=response.status,
        ms=round((time.perf_counter() - started) * 1000, 2),
    )
    if isinstance(response, web.HTTPException):
        raise response
    return response


async def serve_feed(request: web.Request) -> web.StreamResponse:
    verdict, feed_name = request.app[TOKENS].lookup(request.match_info["token"])
    if verdict == "unknown":
        return web.Response(status=404, text="not found\n")
    service = request.app[SERVICE]
    if verdict == "revoked" or feed_name not in service.config.rules.feeds:
        return web.Response(status=410, text="gone\n")  # revoked, or its feed was removed
    version = service.feeds.get(feed_name or "")
    if version is None:  # not rendered yet: the first pull is pending or failed
        return web.Response(status=503, text="not ready\n", headers={"Retry-After": "60"})
    return await _feed_response(request, version, request.app[SERVICE].config)


async def _feed_response(request: web.Request, version: FeedVersion, config: Config) -> web.StreamResponse:
    use_gzip = (
        config.server.gzip
        and version.gzipped is not None
        and "gzip" in request.headers.get("Accept-Encoding", "").lower()
    )
    etag = version.etag[:-1] + '-gzip"' if use_gzip else version.etag
    headers = {
        "Content-Type": "text/calendar; charset=utf-8",
        "ETag": etag,
        "Last-Modified": formatdate(version.last_modified, usegmt=True),
        "Cache-Control": f"private, max-age={config.server.max_age}",
        "Content-Disposition": f'inline; filename="{version.name}.ics"',
    }
    if config.server.gzip:
        headers["Vary"] = "Accept-Encoding"
    if _not_modified(request, version, etag):
        return web.Response(status=304, headers=headers)
    if use_gzip:
        headers["Content-Encoding"] = "gzip"
    body = version.gzipped if use_gzip and version.gzipped is not None else version.body
    if len(body) < _STREAM_FROM:
        return web.Response(body=body, headers=headers)
    return await _send_large(request, body, headers)


# Feeds are megabytes. Sent as one joined write, every request would copy the whole body two
# or three times in user space (header join, partial send, transport buffer). Instead: the
# headers with a small head of the body, then the rest as a view of the stored bytes, into a
# socket send buffer sized to take it in one go.
_STREAM_FROM = 64 * 1024
_HEAD = 4096
_MAX_SEND_BUFFER = 8 * 1024 * 1024  # the kernel caps it further at net.core.wmem_max


async def _send_large(request: web.Request, body: bytes, headers: dict[str, str]) -> web.StreamResponse:
    response = web.StreamResponse(headers=headers)
    response.content_length = len(body)
    _widen_send_buffer(request, len(body))
    try:
        await response.prepare(request)
        if request.method != "HEAD":
            view = memoryview(body)
            await response.write(view[:_HEAD])
            await response.write(view[_HEAD:])
        await response.write_eof()
    except ConnectionError:
        pass  # the client left mid-download: a normal event, not a server error
    return response


def _widen_send_buffer(request: web.Request, size: int) -> None:
    sock = request.transport.get_extra_info("socket") if request.transport is not None else None
    if sock is None:
        return
    try:
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < size:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, min(size, _MAX_SEND_BUFFER))
    except OSError:
        pass  # a smaller buffer only costs speed


def _not_modified(request: web.Request, version: FeedVersion, etag: str) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present; else If-Modified-Since."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        candidates = {item.strip().removeprefix("W/") for item in if_none_match.split(",")}
        return "*" in candidates or etag in candidates or version.etag in candidates
    if_modified_since = request.headers.get("If-Modified-Since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        return version.last_modified <= since
    return False


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    ready, body = request.app[SERVICE].readiness()
    if PUSH in request.app:  # per CalDAV target; a failing target does not make the feeds unready
        body["push"] = request.app[PUSH].readiness()
    return web.Response(
        status=200 if ready else 503,
        text=json.dumps(body, indent=2, sort_keys=True) + "\n",
        content_type="application/json",
    )


async def metrics(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    gauges = {
        "last_success": {n: s.last_success for n, s in service.sources.items() if s.last_success},
        "source_events": {n: float(s.events) for n, s in service.sources.items()},
        "shrink_held": {n: float(bool(s.held_pulls)) for n, s in service.sources.items()},
    }
    text = request.app[METRICS].render(gauges)  # type: ignore[arg-type]
    return web.Response(
        text=text, content_type="text/plain", charset="utf-8", headers={"X-Prometheus-Format": "0.0.4"}
    )
