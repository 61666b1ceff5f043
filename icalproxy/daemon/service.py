"""The daemon's state machine: pull sources, guard against shrinks, render, swap, persist.

Everything here runs on the event loop; parsing and rendering (CPU) go to a worker thread and
state writes to the store's thread, so requests keep being served meanwhile. Served feeds live
in an immutable mapping that is replaced whole, so a reader never sees half an update. A write
the store refuses (database down) is kept in memory and written when it answers again.

Replicas (a PostgreSQL store shared by several daemons): per source, the replica holding its
lease pulls it and renders the feeds that use it, from the newest snapshots of their other
sources, and installs the new versions in one transaction; every replica follows the store's
latest versions (``follow``) and serves them.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import structlog

from icalproxy.config.model import Config
from icalproxy.core.conflicts import find_conflicts
from icalproxy.core.parse import ParsedSource, parse
from icalproxy.core.pipeline import BuildResult, FeedOutput, render_feeds
from icalproxy.core.stamps import Stamp, StampKey
from icalproxy.core.status import StatusKey, StatusRecord
from icalproxy.daemon import history
from icalproxy.daemon.alerts import ConflictWatch
from icalproxy.daemon.emptying import EmptyingGuard
from icalproxy.daemon.metrics import Metrics
from icalproxy.daemon.store import FeedBody, SourceSnapshot, Store
from icalproxy.errors import FetchError, StateError
from icalproxy.fetch import Fetcher, Validators
from icalproxy.installation import installation_key
from icalproxy.logs import mask_url

log = structlog.get_logger("icalproxy.service")
LEASE_SECONDS = 10.0  # a pull lease outlasts its source's interval by this much


@dataclass(frozen=True, slots=True)
class FeedVersion:
    name: str
    body: bytes
    etag: str
    last_modified: int  # when these bytes first appeared (epoch seconds), not when fetched
    events: int
    gzipped: bytes | None = None
    version: int = 0  # the store's version number (monotonic per feed); 0 until written


@dataclass(slots=True)
class SourceStatus:
    name: str
    parsed: ParsedSource | None = None
    validators: Validators = field(default_factory=Validators)
    events: int = 0
    last_success: float | None = None
    last_change: float | None = None
    last_attempt: float | None = None
    last_error: str | None = None
    failures: int = 0
    held_pulls: int = 0  # consecutive pulls that would have shrunk the source too much
    held_events: int | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    queued: bool = False  # a pull is waiting for the lock
    sha256: str | None = None  # of the snapshot ``parsed`` came from (replicas compare it)

    def as_dict(self, now: float) -> dict[str, Any]:
        return {
            "events": self.events,
            "has_data": self.parsed is not None,
            "last_attempt": _iso(self.last_attempt),
            "last_success": _iso(self.last_success),
            "last_change": _iso(self.last_change),
            "age_seconds": round(now - self.last_success, 1) if self.last_success else None,
            "last_error": self.last_error,
            "consecutive_failures": self.failures,
            "shrink_guard": (
                {"held": True, "pulls": self.held_pulls, "events_offered": self.held_events}
                if self.held_pulls
                else {"held": False}
            ),
        }


class FeedService:
    def __init__(
        self,
        config: Config,
        store: Store,
        fetcher: Fetcher,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        watch: ConflictWatch | None = None,
    ) -> None:
        self.config = config
        self.watch = watch  # conflicts of feeds with `conflicts:`, checked after each render
        self.store = store
        self.fetcher = fetcher
        self.metrics = metrics
        self.clock = clock
        self.uid_key = installation_key(config.state_dir)  # keys derived UIDs (see installation.py)
        # Render history (see history.py): loaded at restore, kept in memory, written with installs.
        self.stamps: dict[StampKey, Stamp] = {}
        self.status_history: dict[StatusKey, StatusRecord] = {}
        self._unsaved_history: list[tuple[str, str, str]] = []
        self.sources: dict[str, SourceStatus] = {name: SourceStatus(name) for name in config.sources}
        self.feeds: Mapping[str, FeedVersion] = MappingProxyType({})
        self.feed_notes: dict[str, list[str]] = {}  # from each feed's last render: what ops should know
        self.emptying = EmptyingGuard(config.state_dir)  # a render that would empty a feed waits for ops
        self.config_loaded = clock()
        self.config_error: str | None = None
        # Renders run one at a time, each from the sources as they are when it starts, so an
        # older render can never finish after (and overwrite) a newer one. Requests that arrive
        # while one runs are merged into the next render, so a burst of pulls or reloads costs
        # at most one render in flight and one waiting, never a growing queue.
        self._render_lock = asyncio.Lock()
        self._render_pending: set[str] = set()
        self._render_requested = 0  # sequence number of the latest render request
        self._render_covered = 0  # the latest request a finished render has served
        # CalDAV push (daemon/push.py): told of every feed whose bytes changed; never blocks.
        self.on_feed_changed: Callable[[str, bytes], None] | None = None
        # Accepted pulls and rendered feeds the store has not taken yet (it was unreachable).
        self._unsaved_sources: dict[str, SourceSnapshot] = {}
        self._unsaved_feeds: dict[str, FeedVersion] = {}
        self.store_error: str | None = None
        self.shared = store.dialect == "postgresql"  # replicas may share this store
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        self._feeds_generation: int | None = None
        # Pulls in flight (scheduled or asked for by SIGUSR1): a stopping daemon lets them
        # finish for a moment, then cancels them (see stop_pulls); none starts after that.
        self._pulls: set[asyncio.Task[object]] = set()
        self._stopping = False

    # ------------------------------------------------------------ startup

    async def restore(self) -> None:
        """Serve from the store at once: stored feeds, then feeds re-rendered from stored sources."""
        if self.shared:  # replicas derive UIDs with one key, the first replica's
            try:
                shared = await self.store.call(
                    self.store.sql.shared_secret, "installation_key", self.uid_key.decode()
                )
                self.uid_key = shared.encode()
            except StateError as exc:
                self._store_failed(exc)
        try:  # what subscribers saw before: stamps and statuses carry on across restarts
            rows = await self.store.call(self.store.sql.render_state)
            self.stamps, self.status_history = history.decode(rows)
        except StateError as exc:
            self._store_failed(exc)
        restored: dict[str, FeedVersion] = {}
        for name, stored in (await self.store.latest_feeds(self.config.rules.feeds)).items():
            restored[name] = self._version(
                name, stored.body, stored.etag, stored.last_modified, stored.events, stored.version
            )
        self.feeds = MappingProxyType(restored)
        for name in self.config.sources:
            snapshot = await self.store.load_source(name)
            if snapshot is None:
                continue
            parsed = await asyncio.to_thread(parse, snapshot.body, name, self.uid_key)
            status = self.sources[name]
            status.parsed, status.events = parsed, parsed.vevents
            status.validators = Validators(snapshot.etag, snapshot.last_modified)
            status.last_change, status.last_success = snapshot.changed, snapshot.fetched
            status.held_pulls, status.held_events = snapshot.held_pulls, snapshot.held_events
            status.sha256 = hashlib.sha256(snapshot.body).hexdigest() if self.shared else None
        log.info(
            "state_restored",
            feeds=len(restored),
            sources=sum(1 for status in self.sources.values() if status.parsed is not None),
        )
        await self.render(self.config.rules.feeds)

    def _version(
        self, name: str, body: bytes, etag: str, last_modified: int, events: int, version: int = 0
    ) -> FeedVersion:
        gzipped = gzip.compress(body, mtime=0) if self.config.server.gzip else None
        return FeedVersion(name, body, etag, last_modified, events, gzipped, version)

    # ------------------------------------------------------------ pulling

    async def scheduled_pull(self, name: str) -> None:
        """The scheduler's job: a pull that a stopping daemon cancels ends quietly (the last
        good version stays; the next start pulls again), not as a crashed job."""
        try:
            await self.pull(name)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            log.info("source_pull_stopped", source=name)

    async def stop_pulls(self, grace: float) -> None:
        """No new pull starts; those in flight get ``grace`` seconds to finish (their new
        version is then saved like any other), the rest are cancelled and awaited."""
        self._stopping = True
        running = set(self._pulls)
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def pull(self, name: str) -> None:
        """One pull of one source. Never raises: failures are recorded."""
        task = asyncio.current_task()
        if self._stopping or task is None:
            return
        self._pulls.add(task)
        try:
            await self._pull(name)
        finally:
            self._pulls.discard(task)

    async def _pull(self, name: str) -> None:
        status = self.sources.get(name)
        if status is None or status.queued:
            return  # gone, or a pull is already waiting to start: it will fetch the newest state
        status.queued = True
        async with status.lock:
            status.queued = False
            source = self.config.sources.get(name)  # as configured now, after any wait
            if source is None or self.sources.get(name) is not status:
                return
            if self.shared and not await self._lease(name, source.every.total_seconds()):
                await self._sync_sources([name])  # another replica pulls it: follow its snapshot
                return
            status.last_attempt = self.clock()
            started = time.perf_counter()
            try:
                fetched = await self.fetcher.fetch(source, status.validators)
            except FetchError as exc:
                self._failed(status, exc.reason)
                return
            except Exception as exc:  # a bug must not stop the schedule
                log.exception("source_pull_crashed", source=name)
                self._failed(status, f"internal error: {type(exc).__name__}")
                return
            if fetched.not_modified or fetched.body is None:
                # Unchanged since the last good version: a shrink that was being held is gone.
                status.last_success, status.last_error, status.failures = self.clock(), None, 0
                await self._guard_state(status, 0, None)
                self.metrics.fetch(name, "not_modified", time.perf_counter() - started)
                log.info("source_not_modified", source=name)
                return
            parsed = await asyncio.to_thread(parse, fetched.body, name, self.uid_key)
            if await self._held_by_shrink_guard(status, parsed):
                self.metrics.fetch(name, "held", time.perf_counter() - started)
                return
            await self._accept(status, fetched.body, parsed, fetched.validators)
            self.metrics.fetch(name, "ok", time.perf_counter() - started)
        await self.render(self.feeds_using(name))

    def _failed(self, status: SourceStatus, reason: str) -> None:
        status.last_error, status.failures = reason, status.failures + 1
        self.metrics.fetch(status.name, "error", 0.0)
        log.warning("source_failed", source=status.name, reason=reason, failures=status.failures)

    async def _held_by_shrink_guard(self, status: SourceStatus, parsed: ParsedSource) -> bool:
        guard = self.config.sources[status.name].shrink_guard
        before, after = status.events, parsed.vevents
        shrunk = status.parsed is not None and before > 0 and after < before * (1 - guard.max_loss)
        if not shrunk:
            status.held_pulls, status.held_events = 0, None
            return False
        pulls = status.held_pulls + 1
        try:
            accepted = await self.store.take_shrink_acceptance(status.name)
        except StateError as exc:
            self._store_failed(exc)
            accepted = False
        if accepted or pulls >= guard.confirm_pulls:
            log.warning(
                "shrink_accepted",
                source=status.name,
                before=before,
                after=after,
                by="ops" if accepted else "persistence",
                pulls=pulls,
            )
            await self._guard_state(status, 0, None)
            return False
        # The reason first, then the count (which /readyz shows as held): no reader sees a
        # held source without its reason while the count is being saved.
        status.last_error = (
            f"shrink guard: {before} → {after} events; last good version kept "
            f"({pulls}/{guard.confirm_pulls} pulls)"
        )
        await self._guard_state(status, pulls, after)
        log.warning(
            "shrink_held",
            source=status.name,
            before=before,
            after=after,
            pulls=pulls,
            confirm=guard.confirm_pulls,
        )
        return True

    async def _accept(
        self, status: SourceStatus, body: bytes, parsed: ParsedSource, validators: Validators
    ) -> None:
        now = self.clock()
        status.parsed, status.events, status.validators = parsed, parsed.vevents, validators
        status.sha256 = hashlib.sha256(body).hexdigest() if self.shared else None
        status.last_success = status.last_change = now
        status.last_error, status.failures = None, 0
        self._unsaved_sources[status.name] = SourceSnapshot(
            status.name, body, validators.etag, validators.last_modified, now, now, parsed.vevents
        )
        await self.save_pending()
        log.info(
            "source_updated",
            source=status.name,
            events=parsed.vevents,
            bytes=len(body),
            problems=len(parsed.problems),
        )

    # ------------------------------------------------------------ replicas

    async def _lease(self, name: str, every: float) -> bool:
        """Whether this replica pulls ``name`` now. The lease outlasts the pull interval, so its
        holder keeps it from pull to pull; if the holder dies, another replica takes it once it
        has run out. With the store unreachable every replica pulls (and keeps the result)."""
        try:
            return await self.store.call(
                self.store.sql.take_lease, f"pull:{name}", self.replica, every + LEASE_SECONDS
            )
        except StateError as exc:
            self._store_failed(exc)
            return True

    async def release_leases(self) -> None:
        if not self.shared:
            return
        for name in list(self.sources):
            try:
                await self.store.call(self.store.sql.release_lease, f"pull:{name}", self.replica)
            except StateError:
                return

    async def _sync_sources(self, names: Iterable[str]) -> None:
        """Take over the snapshots other replicas stored for these sources, where they differ."""
        try:
            digests = await self.store.call(self.store.sql.source_digests)
            for name in names:
                status = self.sources.get(name)
                if status is None or digests.get(name) in (None, status.sha256):
                    continue
                snapshot = await self.store.load_source(name)
                if snapshot is None:
                    continue
                parsed = await asyncio.to_thread(parse, snapshot.body, name, self.uid_key)
                status.parsed, status.events = parsed, parsed.vevents
                status.validators = Validators(snapshot.etag, snapshot.last_modified)
                status.last_change, status.last_success = snapshot.changed, snapshot.fetched
                status.held_pulls, status.held_events = snapshot.held_pulls, snapshot.held_events
                status.sha256 = hashlib.sha256(snapshot.body).hexdigest()
                status.last_error = None
        except StateError as exc:
            self._store_failed(exc)

    async def follow(self) -> int:
        """Serve the feed versions other replicas installed, if newer; returns how many."""
        try:
            generation = await self.store.call(self.store.sql.feeds_generation)
            if generation == self._feeds_generation:
                return 0
            stored = await self.store.latest_feeds(self.config.rules.feeds)
        except StateError as exc:
            self._store_failed(exc)
            return 0
        self._feeds_generation = generation
        current, taken = dict(self.feeds), 0
        changed: list[FeedVersion] = []
        for name, version in stored.items():
            served = current.get(name)
            if name in self._unsaved_feeds or (served is not None and served.version >= version.version):
                continue  # ours is newer, or not written yet (it will get the next number)
            if served is not None and served.etag == version.etag:
                current[name] = replace(served, version=version.version)
                continue
            current[name] = self._version(
                name, version.body, version.etag, version.last_modified, version.events, version.version
            )
            changed.append(current[name])
            self.metrics.feed_events[name] = version.events
            self.metrics.feed_bytes[name] = len(version.body)
            taken += 1
        self.feeds = MappingProxyType(current)
        if self.on_feed_changed is not None:  # the replica holding a target's push lease pushes it
            for followed in changed:
                self.on_feed_changed(followed.name, followed.body)
        if taken:
            log.info("feeds_followed", feeds=taken, generation=generation)
        return taken

    async def _guard_state(self, status: SourceStatus, held_pulls: int, held_events: int | None) -> None:
        """The shrink guard's count survives a restart: it is kept with the source's snapshot."""
        changed = (status.held_pulls, status.held_events) != (held_pulls, held_events)
        status.held_pulls, status.held_events = held_pulls, held_events
        if changed or held_pulls:
            try:
                await self.store.save_shrink_guard(status.name, held_pulls, held_events)
            except StateError as exc:
                self._store_failed(exc)

    async def save_pending(self) -> bool:
        """Write what the store has not taken yet; True when nothing is left unsaved."""
        try:
            for name, snapshot in list(self._unsaved_sources.items()):
                await self.store.save_source(snapshot)
                if self._unsaved_sources.get(name) is snapshot:
                    del self._unsaved_sources[name]
            pending = [v for v in self._unsaved_feeds.values() if self.feeds.get(v.name) is v]
            self._unsaved_feeds.clear()
            rows, self._unsaved_history = self._unsaved_history, []
            if pending or rows:
                try:
                    numbers = await self.store.install_feeds(
                        [FeedBody(v.name, v.body, v.etag, v.last_modified, v.events) for v in pending],
                        rows,
                        self.config.rules.statuses.keep_history.total_seconds(),
                    )
                except StateError:
                    for version in pending:
                        self._unsaved_feeds.setdefault(version.name, version)
                    self._unsaved_history = rows + self._unsaved_history
                    raise
                self._numbered(pending, numbers)
        except StateError as exc:
            self._store_failed(exc)
            return False
        if self.store_error is not None:
            log.info("store_writes_resumed")
        self.store_error = None
        return True

    def _store_failed(self, exc: StateError) -> None:
        if self.store_error is None:
            log.error("store_write_failed", error=str(exc), kept_in_memory=True)
        self.store_error = str(exc)

    def _numbered(self, written: list[FeedVersion], numbers: list[int]) -> None:
        """Served versions get the numbers the store gave them (if they are still served); one
        the store skipped for a newer one keeps 0, so ``follow`` replaces it with that."""
        current = dict(self.feeds)
        for version, number in zip(written, numbers, strict=True):
            if number and current.get(version.name) is version:
                current[version.name] = replace(version, version=number)
        self.feeds = MappingProxyType(current)

    def feeds_using(self, source: str) -> list[str]:
        return [name for name, feed in self.config.rules.feeds.items() if source in feed.sources]

    # ------------------------------------------------------------ rendering

    async def render(self, feeds: Iterable[str]) -> None:
        """Return once a render that started after this call has finished with these feeds."""
        wanted = set(feeds)
        if not wanted:
            return
        self._render_pending |= wanted
        self._render_requested += 1
        request = self._render_requested
        async with self._render_lock:
            if self._render_covered >= request:
                return  # a render that started after this request has already served it
            batch, self._render_pending = self._render_pending, set()
            covers = self._render_requested
            try:
                await self._render([name for name in self.config.rules.feeds if name in batch])
            except BaseException:
                self._render_pending |= batch
                raise
            self._render_covered = covers

    async def pull_all(self) -> None:
        """Every source at once (SIGUSR1); each pull runs as a task of its own."""
        await asyncio.gather(*(self.pull(name) for name in list(self.config.sources)))

    async def _render(self, wanted: list[str]) -> None:
        if self.shared:  # the other sources of these feeds may have been pulled elsewhere
            await self._sync_sources({s for name in wanted for s in self.config.rules.feeds[name].sources})
        parsed = {name: s.parsed for name, s in self.sources.items() if s.parsed is not None}
        now = datetime.fromtimestamp(self.clock(), UTC).replace(tzinfo=None)
        started = time.perf_counter()
        result = await asyncio.to_thread(
            _render_hashed, parsed, self.config.rules, now, wanted, self.stamps, self.status_history
        )
        # The new history is kept in memory at once and written with the feed versions.
        changed_history = {k: v for k, v in result.stamps.items() if self.stamps.get(k) != v}
        changed_statuses = {k: v for k, v in result.statuses.items() if self.status_history.get(k) != v}
        self.stamps.update(result.stamps)
        self.status_history.update(result.statuses)
        self._unsaved_history.extend(history.encode(changed_history, changed_statuses))
        seconds = time.perf_counter() - started
        self.metrics.render_seconds.observe(seconds)
        # Served feeds, their notes and metrics change in one step, before the slow state
        # writes: /readyz and /metrics never lag behind what a subscriber already gets.
        self.emptying.hold(result.feeds, result.report, self.feeds)
        changed = self._install(result.feeds)
        if self.on_feed_changed is not None:
            for version in changed:
                self.on_feed_changed(version.name, version.body)
        for name, output in result.feeds.items():
            self.metrics.feed_unmatched[name] = (
                report.unmatched if (report := result.report.feeds.get(name)) else 0
            )
            self.metrics.feed_events[name] = output.events
            self.metrics.feed_bytes[name] = len(output.body)
            notes = list(result.report.feeds[name].notes) if name in result.report.feeds else []
            if notes != self.feed_notes.get(name, []):
                log.info("feed_notes", feed=name, notes=notes)
            self.feed_notes[name] = notes
        for gone in set(self.feed_notes) - set(self.config.rules.feeds):
            del self.feed_notes[gone]
            self.metrics.feed_events.pop(gone, None)
            self.metrics.feed_unmatched.pop(gone, None)
            self.metrics.feed_bytes.pop(gone, None)
        for version in changed:
            self._unsaved_feeds[version.name] = version
        await self.save_pending()
        log.info("feeds_rendered", feeds=len(result.feeds), changed=len(changed), ms=round(seconds * 1000))
        await self._check_conflicts(result.feeds, now)

    async def _check_conflicts(self, outputs: Mapping[str, FeedOutput], now: datetime) -> None:
        """Conflicts of the rendered feeds that have ``conflicts:``, as their subscriber sees them."""
        watch = self.watch
        if watch is None:
            return
        feeds = self.config.rules.feeds
        alert = self.config.alerts.webhook is not None
        try:
            for name, output in outputs.items():
                rules = feeds[name].conflicts if name in feeds else None
                if rules is None:
                    continue
                try:
                    report = await asyncio.to_thread(find_conflicts, name, output.body, rules, now)
                except Exception:  # a bug in the check must not stop serving feeds
                    log.exception("conflicts_check_crashed", feed=name)
                    continue
                await asyncio.to_thread(watch.update, report, alert)
            checked = {name for name, feed in feeds.items() if feed.conflicts is not None}
            await asyncio.to_thread(watch.retain, checked)
        except StateError as exc:
            log.error("alert_state_failed", reason=str(exc))
        watch.wake.set()

    def _install(self, outputs: Mapping[str, FeedOutput]) -> list[FeedVersion]:
        """Serve the outputs whose bytes changed; returns those new versions."""
        current = dict(self.feeds)
        changed = []
        now = int(self.clock())
        for name, output in outputs.items():
            previous = current.get(name)
            if previous is not None and previous.etag == output.etag:
                continue
            # Strictly later than the previous version, so If-Modified-Since never hides a change.
            last_modified = max(now, previous.last_modified + 1) if previous is not None else now
            current[name] = version = self._version(
                name, output.body, output.etag, last_modified, output.events
            )
            changed.append(version)
        for name in list(current):
            if name not in self.config.rules.feeds:
                del current[name]
        self.feeds = MappingProxyType(current)
        return changed

    # ------------------------------------------------------------ config

    async def apply_config(self, config: Config) -> None:
        """Swap in a validated config: new sources get a status, rules re-render everything."""
        old_urls = {name: source.url for name, source in self.config.sources.items()}
        self.config = config
        for name, source in config.sources.items():
            if name not in self.sources:
                self.sources[name] = SourceStatus(name)
            elif old_urls.get(name) != source.url:
                # New address: its validators mean nothing there, but the last good data
                # stays served until the new address delivers.
                self.sources[name].validators = Validators()
        for name in list(self.sources):
            if name not in config.sources:
                del self.sources[name]
        self.config_loaded, self.config_error = self.clock(), None
        await self.render(config.rules.feeds)

    # ------------------------------------------------------------ health

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        now = self.clock()
        feeds = {
            name: (
                {
                    "ready": True,
                    "events": version.events,
                    "bytes": len(version.body),
                    "etag": version.etag,
                    "last_modified": _iso(version.last_modified),
                    "notes": self.feed_notes.get(name, []),
                    **self._conflict_summary(name),
                }
                if (version := self.feeds.get(name)) is not None
                else {"ready": False}
            )
            for name in self.config.rules.feeds
        }
        ready = all(item["ready"] for item in feeds.values())
        body = {
            "ready": ready,
            "degraded": self.store_error is not None,
            "sources": {
                name: {**status.as_dict(now), "from": mask_url(self.config.sources[name].url)}
                for name, status in sorted(self.sources.items())
                if name in self.config.sources
            },
            "feeds": feeds,
            "config": {"loaded": _iso(self.config_loaded), "last_reload_error": self.config_error},
            # Serving goes on from memory while the store is unreachable; writes wait for it.
            "store": {
                "backend": self.store.dialect,
                "degraded": self.store_error is not None,
                "error": self.store_error,
                "unsaved": sorted({*self._unsaved_sources, *self._unsaved_feeds}),
            },
        }
        if self.watch is not None:
            body["alerts"] = self.watch.status(self.config.alerts.webhook is not None)
        return ready, body

    def _conflict_summary(self, feed: str) -> dict[str, Any]:
        summary = self.watch.summary(feed) if self.watch is not None else None
        return {"conflicts": summary} if summary is not None else {}


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _render_hashed(*args: Any) -> BuildResult:
    """render_feeds, with every feed's ETag computed in this worker thread (a FeedOutput
    hashes its bytes when first asked): the event loop that serves them never hashes."""
    result = render_feeds(*args)
    for output in result.feeds.values():
        _ = output.etag
    return result
