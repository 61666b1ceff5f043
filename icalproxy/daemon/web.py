"""HTTP: the secret feed URLs, health, readiness and metrics. Handlers stay small.

``GET``/``HEAD /feed/<token>.ics``: a token is looked up by its SHA-256 and compared in
constant time; unknown → 404, revoked → 410, with the same work done either way. Feeds are
served with a strong ETag (a hash of the bytes) and a Last-Modified that moves only when
the bytes change, so a 304 is never sent for changed content. No error text ever goes
into a feed body; no token ever reaches a log line.

``/readyz`` and ``/metrics`` name every feed with its size and notes: they are for ops only.
The ops listener (``server.ops_listen``, loopback by default) serves them; the public
listener answers them only to ``Authorization: Bearer <server.ops_token>`` and with the same
404 as any unknown path otherwise, so a subscriber learns nothing from asking.
"""

from __future__ import annotations

import hmac
import json
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime

import structlog
from aiohttp import web

from icalproxy.config.model import Config
from icalproxy.daemon.metrics import Metrics
from icalproxy.daemon.push import PushManager
from icalproxy.daemon.service import FeedService, FeedVersion
from icalproxy.daemon.tokens import TokenIndex

log = structlog.get_logger("icalproxy.http")

SERVICE = web.AppKey("service", FeedService)
TOKENS = web.AppKey("tokens", TokenIndex)
METRICS = web.AppKey("metrics", Metrics)
PUSH = web.AppKey("push", PushManager)
MAIN = web.AppKey("main", web.Application)  # on the ops app: the public app that owns the service
TOKEN_ID = "icalproxy.token_id"  # noqa: S105 - request key: the token's id, for the access log
TOKEN_PATTERN = r"[A-Za-z0-9_-]{16,128}"  # noqa: S105 - a URL pattern, not a secret
SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _status_since(app: web.Application) -> dict[str, datetime]:
    """UID → when its client first saw the status it shows now (the daemon's status history)."""
    service = app.get(SERVICE)
    found: dict[str, datetime] = {}
    for (_, uid, occurrence), record in (service.status_history.items() if service is not None else ()):
        if record.shown is not None and not occurrence:
            try:
                found[uid] = datetime.strptime(record.since, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            except ValueError:
                continue
    return found


def add_routes(app: web.Application) -> None:
    """The public listener: feeds and /healthz; /readyz and /metrics only with the ops token."""
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/feed/{token:" + TOKEN_PATTERN + "}.ics", serve_feed, name="feed")
    add_page_routes(app)
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", _ops_only(readyz), name="readyz")
    app.router.add_get("/metrics", _ops_only(metrics), name="metrics")


def create_ops_app(main: web.Application) -> web.Application:
    """The ops listener: /healthz, /readyz and /metrics of ``main``'s service, no token asked."""
    ops = web.Application(middlewares=[observe])
    ops[MAIN] = main
    ops[METRICS] = main[METRICS]
    ops.on_response_prepare.append(_security_headers)
    ops.router.add_get("/healthz", healthz, name="ops_healthz")
    ops.router.add_get("/readyz", readyz, name="ops_readyz")
    ops.router.add_get("/metrics", metrics, name="ops_metrics")
    return ops


def _service(request: web.Request) -> FeedService:
    app = request.app.get(MAIN, request.app)
    return app[SERVICE]


def _ops_only(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        if not ops_authorized(request.headers.get("Authorization", ""), _service(request).config):
            return web.Response(status=404, text="not found\n")
        return await handler(request)

    return guarded


def ops_authorized(header: str, config: Config) -> bool:
    """``Bearer <ops_token>``, compared in constant time; never true without a configured token."""
    expected = config.server.ops_token
    scheme, _, offered = header.partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(offered.strip().encode(), expected.encode())


def add_page_routes(app: web.Application) -> None:
    """The client page at the feed's own secret (icalproxy/daemon/pages.py)."""
    from icalproxy.daemon.pages import PAGES, PageCache, serve_page  # noqa: PLC0415

    app[PAGES] = PageCache(since=lambda feed: _status_since(app))
    app.router.add_get("/c/{token:" + TOKEN_PATTERN + "}", serve_page, name="page")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response, just before its headers go out (streamed ones included)."""
    response.headers.update(SECURITY_HEADERS)


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request metrics and an access log that names routes and token ids, never paths or tokens."""
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
        token_id=request.get(TOKEN_ID),
        status=response.status,
        ms=round((time.perf_counter() - started) * 1000, 2),
    )
    if isinstance(response, web.HTTPException):
        raise response
    return response


async def serve_feed(request: web.Request) -> web.StreamResponse:
    tokens = request.app[TOKENS]
    verdict, record = await tokens.lookup(request.match_info["token"])
    if verdict == "unknown" or record is None:
        return web.Response(status=404, text="not found\n")
    request[TOKEN_ID] = record.id
    feed_name = record.feed
    service = request.app[SERVICE]
    if verdict == "revoked" or feed_name not in service.config.rules.feeds:
        return web.Response(status=410, text="gone\n")  # revoked, or its feed was removed
    tokens.seen(record, request.headers.get("User-Agent"), time.time())
    version = service.feeds.get(feed_name)
    if version is None:  # not rendered yet: the first pull is pending or failed
        return web.Response(status=503, text="not ready\n", headers={"Retry-After": "60"})
    return await _feed_response(request, version, request.app[SERVICE].config)


async def _feed_response(request: web.Request, version: FeedVersion, config: Config) -> web.StreamResponse:
    use_gzip = (
        config.server.gzip
        and version.gzipped is not None
        and prefers_gzip(request.headers.get("Accept-Encoding", ""))
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


def prefers_gzip(accept_encoding: str) -> bool:
    """RFC 9110 §12.5.3: gzip when its q-value (or that of ``*``) is above zero and not below
    identity's. ``gzip;q=0`` refuses it; ``identity;q=0`` alone does not make gzip acceptable."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = min(1.0, max(0.0, float(value.strip())))
                except ValueError:
                    weight = 0.0  # a q-value we cannot read: take it as a refusal
        weights[coding] = weight
    star = weights.get("*")
    gzip = weights.get("gzip", weights.get("x-gzip", star if star is not None else 0.0))
    identity = weights.get("identity", star if star is not None and "identity" not in weights else 1.0)
    return gzip > 0 and gzip >= identity


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
    ready, body = _service(request).readiness()
    owner = request.app.get(MAIN, request.app)
    if PUSH in owner:  # per CalDAV target; a failing target does not make the feeds unready
        body["push"] = owner[PUSH].readiness()
    return web.Response(
        status=200 if ready else 503,
        text=json.dumps(body, indent=2, sort_keys=True) + "\n",
        content_type="application/json",
    )


async def metrics(request: web.Request) -> web.Response:
    service = _service(request)
    gauges = {
        "last_success": {n: s.last_success for n, s in service.sources.items() if s.last_success},
        "source_events": {n: float(s.events) for n, s in service.sources.items()},
        "shrink_held": {n: float(bool(s.held_pulls)) for n, s in service.sources.items()},
        "feed_held": {n: float(n in service.emptying.held) for n in service.config.rules.feeds},
    }
    text = request.app[METRICS].render(gauges)  # type: ignore[arg-type]
    return web.Response(
        text=text, content_type="text/plain", charset="utf-8", headers={"X-Prometheus-Format": "0.0.4"}
    )
