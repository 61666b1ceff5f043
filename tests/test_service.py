"""FeedService in process, on the bundled example (file sources, real state folder): renders and
pulls requested in bursts are merged instead of queued, and nobody is told "done" too early."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import aiohttp
import pytest

from icalproxy.config.load import load_config
from icalproxy.config.model import Source
from icalproxy.core import pipeline
from icalproxy.core.parse import ParsedSource
from icalproxy.daemon.metrics import Metrics
from icalproxy.daemon.service import FeedService
from icalproxy.daemon.store import FeedBody, Store, open_sql_store
from icalproxy.fetch import Fetched, SourceFetcher, Validators
from icalproxy.records import replace
from tests.support import ROOT


def _service(tmp_path: Path, session: aiohttp.ClientSession) -> FeedService:
    config = replace(load_config(ROOT / "config.example.yaml", env={}), state_dir=tmp_path)
    return FeedService(config, Store(open_sql_store("sqlite", tmp_path)), SourceFetcher(session), Metrics())


def _retitled(service: FeedService, suffix: str) -> None:
    rules = service.config.rules
    feeds = {name: replace(feed, title=feed.title + suffix) for name, feed in rules.feeds.items()}
    service.config = replace(service.config, rules=replace(rules, feeds=feeds))


def test_a_burst_of_render_requests_costs_at_most_two_renders(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[list[str]], bytes]:
        async with aiohttp.ClientSession() as session:
            service = _service(tmp_path, session)
            await service.restore()
            await service.pull_all()
            renders: list[list[str]] = []
            original = service._render

            async def counted(wanted: list[str]) -> None:
                renders.append(wanted)
                await original(wanted)

            service._render = counted  # type: ignore[method-assign]
            first = asyncio.ensure_future(service.render(["acme"]))
            await asyncio.sleep(0)  # the first render is now running
            _retitled(service, " (rev 2)")
            burst = [service.render([name]) for _ in range(10) for name in service.config.rules.feeds]
            await asyncio.gather(first, *burst)
            return renders, service.feeds["acme"].body

    renders, acme = asyncio.run(scenario())
    assert len(renders) == 2, renders
    assert renders[0] == ["acme"]
    assert sorted(renders[1]) == sorted(load_config(ROOT / "config.example.yaml", env={}).rules.feeds)
    assert b"(rev 2)" in acme, "a request made during a render is served by a later render"


def test_pull_requests_in_a_burst_fetch_at_most_twice(tmp_path: Path) -> None:
    async def scenario() -> int:
        async with aiohttp.ClientSession() as session:
            service = _service(tmp_path, session)
            fetches = 0
            original = service.fetcher.fetch

            async def counted(*args: object) -> object:
                nonlocal fetches
                fetches += 1
                await asyncio.sleep(0.05)
                return await original(*args)  # type: ignore[arg-type]

            service.fetcher.fetch = counted  # type: ignore[method-assign]
            await asyncio.gather(*(service.pull("jobs") for _ in range(20)))
            assert service.sources["jobs"].parsed is not None
            return fetches

    assert asyncio.run(scenario()) == 2


def test_a_queued_pull_fetches_the_source_as_configured_when_it_starts(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        async with aiohttp.ClientSession() as session:
            service = _service(tmp_path, session)
            urls: list[str] = []
            original = service.fetcher.fetch

            async def recorded(source: Source, validators: Validators) -> Fetched:
                urls.append(source.url)
                await asyncio.sleep(0.05)
                return await original(source, validators)

            service.fetcher.fetch = recorded  # type: ignore[method-assign]
            running = asyncio.ensure_future(service.pull("jobs"))
            await asyncio.sleep(0.01)  # the first pull is fetching
            queued = asyncio.ensure_future(service.pull("jobs"))
            await asyncio.sleep(0)
            office = service.config.sources["office"].url
            sources = {
                **service.config.sources,
                "jobs": replace(service.config.sources["jobs"], url=office),
            }
            service.config = replace(service.config, sources=sources)
            await asyncio.gather(running, queued)
            return urls

    first, second = asyncio.run(scenario())
    assert first.endswith("teamup-jobs.ics") and second.endswith("teamup-office.ics")


def test_readiness_and_metrics_describe_a_feed_before_its_state_is_written(tmp_path: Path) -> None:
    """A subscriber can fetch a new version while it is still being written to the store:
    /readyz notes and /metrics must already describe that version, not the one before."""

    async def scenario() -> list[tuple[str, bool]]:
        async with aiohttp.ClientSession() as session:
            service = _service(tmp_path, session)
            await service.restore()
            seen: list[tuple[str, bool]] = []
            install_feeds = service.store.install_feeds

            async def observing(feeds: list[FeedBody], *history: object) -> list[int]:
                for feed in feeds:
                    described = (
                        service.feeds[feed.feed].body == feed.body
                        and service.metrics.feed_bytes.get(feed.feed) == len(feed.body)
                        and feed.feed in service.feed_notes
                    )
                    seen.append((feed.feed, described))
                return await install_feeds(feeds, *history)  # type: ignore[arg-type]

            service.store.install_feeds = observing  # type: ignore[method-assign]
            await service.pull_all()
            return seen

    seen = asyncio.run(scenario())
    assert {name for name, _ in seen} == set(load_config(ROOT / "config.example.yaml", env={}).rules.feeds)
    assert all(described for _, described in seen), seen


def test_feed_etags_are_hashed_in_the_render_thread_never_on_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FeedOutput hashes its bytes when first asked for its ETag; the daemon asks in the
    worker thread that rendered, so serving never waits on hashing megabytes of feeds."""
    hashed_in: list[str] = []
    original = pipeline.etag_of

    def recorded(body: bytes) -> str:
        hashed_in.append(threading.current_thread().name)
        return original(body)

    monkeypatch.setattr(pipeline, "etag_of", recorded)

    async def scenario() -> str:
        async with aiohttp.ClientSession() as session:
            service = _service(tmp_path, session)
            await service.restore()
            await service.pull_all()
            await service.render(list(service.config.rules.feeds))
            return threading.current_thread().name

    loop_thread = asyncio.run(scenario())
    assert len(hashed_in) >= len(load_config(ROOT / "config.example.yaml", env={}).rules.feeds)
    assert loop_thread not in hashed_in


def test_a_held_shrink_is_never_shown_without_its_reason(tmp_path: Path) -> None:
    """/readyz reads a source's status at any await of a pull: while the shrink guard takes an
    ops acceptance or saves its count, a source shown as held already says why."""
    seen: list[dict[str, object]] = []

    async def scenario() -> bool:
        async with aiohttp.ClientSession() as session:
            service = _service(tmp_path, session)
            await service.restore()
            await service.pull_all()
            status = service.sources["jobs"]
            store = service.store
            take, save = store.take_shrink_acceptance, store.save_shrink_guard

            async def taking(source: str) -> bool:
                seen.append(status.as_dict(0.0))
                return await take(source)

            async def saving(name: str, held_pulls: int, held_events: int | None) -> None:
                seen.append(status.as_dict(0.0))
                await save(name, held_pulls, held_events)

            store.take_shrink_acceptance = taking  # type: ignore[method-assign]
            store.save_shrink_guard = saving  # type: ignore[method-assign]
            shrunk = ParsedSource("jobs", {}, {}, [], vevents=1)
            return await service._held_by_shrink_guard(status, shrunk)

    assert asyncio.run(scenario()) is True
    assert len(seen) == 2
    for snapshot in seen:
        guard = snapshot["shrink_guard"]
        assert isinstance(guard, dict)
        if guard["held"]:
            assert "shrink guard" in str(snapshot["last_error"])
