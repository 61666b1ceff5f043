"""``GET``/``HEAD /c/<token>``: the client page, at the same secret as the feed.

The token rules are the feed's (unknown → 404, revoked or feed removed → 410, not rendered
yet → 503). The page is built from the feed version being served and kept until the feed's
ETag changes: the job list once per feed version, the HTML once per version and link (the
link holds the token), never per request. Strong ETag (a hash of the page's bytes), 304, HEAD.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from icalproxy.config.model import Config, Feed
from icalproxy.daemon.service import FeedVersion
from icalproxy.page import WorkInProgress, content_security_policy, render_page, work_in_progress

MAX_CACHED = 1024  # pages (feed version x link); the oldest go first

# uid → when its client-facing status was first shown; wired to the status history later.
SinceLookup = Callable[[str], Mapping[str, datetime]]


@dataclass(frozen=True, slots=True)
class Page:
    body: bytes
    etag: str


class PageCache:
    def __init__(self, since: SinceLookup | None = None) -> None:
        self.since = since
        self._work: dict[str, tuple[tuple[object, ...], WorkInProgress]] = {}  # feed → (key, jobs)
        self._pages: dict[tuple[str, str, str], Page] = {}  # (feed etag, link digest, texts)
        self._locks: dict[str, asyncio.Lock] = {}
        self.renders = 0  # HTML renders, for tests and the benchmark

    def work(self, feed: Feed, version: FeedVersion) -> WorkInProgress | None:
        cached = self._work.get(feed.name)
        return cached[1] if cached is not None and cached[0] == _work_key(feed, version) else None

    async def build_once(self, feed: Feed, version: FeedVersion) -> WorkInProgress:
        """One build per feed version, however many requests arrive while it runs."""
        async with self._locks.setdefault(feed.name, asyncio.Lock()):
            return self.work(feed, version) or await asyncio.to_thread(self.build_work, feed, version)

    def build_work(self, feed: Feed, version: FeedVersion) -> WorkInProgress:
        work = work_in_progress(
            version.body,
            datetime.now(UTC),
            past_days=feed.page_past_days,
            timezone=feed.timezone,
            since=self.since(feed.name) if self.since is not None else None,
        )
        self._work[feed.name] = (_work_key(feed, version), work)
        return work

    def page(self, feed: Feed, version: FeedVersion, work: WorkInProgress, feed_url: str) -> Page:
        key = (version.etag, hashlib.sha256(feed_url.encode()).hexdigest(), f"{feed.locale}:{feed.title}")
        page = self._pages.get(key)
        if page is None:
            body = render_page(
                title=feed.title, feed_url=feed_url, work=work, locale=feed.locale, now=datetime.now(UTC)
            )
            page = Page(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
            self.renders += 1
            stale = [k for k in self._pages if k[0] != version.etag and k[1] == key[1]]
            for old in stale:
                del self._pages[old]
            while len(self._pages) >= MAX_CACHED:
                del self._pages[next(iter(self._pages))]
            self._pages[key] = page
        return page


def _work_key(feed: Feed, version: FeedVersion) -> tuple[object, ...]:
    return (version.etag, feed.timezone, feed.page_past_days)


PAGES = web.AppKey("pages", PageCache)


def page_headers() -> dict[str, str]:
    return {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "private, no-cache",
        "Content-Security-Policy": content_security_policy(),
        "X-Robots-Tag": "noindex, nofollow",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def feed_url_for(config: Config, request: web.Request, token: str) -> str:
    base = config.server.public_url.rstrip("/") or f"{request.scheme}://{request.host}"
    return f"{base}/feed/{token}.ics"


async def serve_page(request: web.Request) -> web.StreamResponse:
    from icalproxy.daemon.web import SERVICE, TOKEN_ID, TOKENS  # noqa: PLC0415  (web imports this module)

    token = request.match_info["token"]
    tokens = request.app[TOKENS]
    verdict, record = await tokens.lookup(token)
    if verdict == "unknown" or record is None:
        return web.Response(status=404, text="not found\n")
    request[TOKEN_ID] = record.id
    service = request.app[SERVICE]
    feed = service.config.rules.feeds.get(record.feed)
    if verdict == "revoked" or feed is None:
        return web.Response(status=410, text="gone\n")
    tokens.seen(record, request.headers.get("User-Agent"), time.time())
    version = service.feeds.get(feed.name)
    if version is None:
        return web.Response(status=503, text="not ready\n", headers={"Retry-After": "60"})
    cache = request.app[PAGES]
    work = cache.work(feed, version) or await cache.build_once(feed, version)
    page = cache.page(feed, version, work, feed_url_for(service.config, request, token))
    headers = page_headers()
    headers["ETag"] = page.etag
    if _matches(request.headers.get("If-None-Match"), page.etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=page.body, headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match only: the page sends no Last-Modified (its text follows the config too)."""
    if if_none_match is None:
        return False
    candidates = {item.strip().removeprefix("W/") for item in if_none_match.split(",")}
    return "*" in candidates or etag in candidates
