"""The daemon: one asyncio loop with the aiohttp server, an APScheduler job per source and a
config watcher. The app owns every lifecycle through its cleanup context."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import socket
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from icalproxy.config.load import load_config
from icalproxy.config.model import Config
from icalproxy.daemon.alert_state import AlertState, AlertStore, SharedAlertState
from icalproxy.daemon.alerts import ConflictWatch, WebhookSender
from icalproxy.daemon.metrics import Metrics
from icalproxy.daemon.push import PushLeases, PushManager
from icalproxy.daemon.push_state import PushState, PushStore, SharedPushState
from icalproxy.daemon.service import FeedService
from icalproxy.daemon.store import Store, open_sql_store
from icalproxy.daemon.store.backend import PostgresDatabase
from icalproxy.daemon.tokens import TokenIndex
from icalproxy.daemon.web import METRICS, PUSH, SERVICE, TOKENS, add_routes, create_ops_app, observe
from icalproxy.errors import ConfigError, ListenError, StateError
from icalproxy.fetch import USER_AGENT, Fetcher, SourceFetcher

log = structlog.get_logger("icalproxy.daemon")
SCHEDULER = web.AppKey("scheduler", AsyncIOScheduler)
STORE = web.AppKey("store", Store)
RELOAD_CHECK_SECONDS = 2.0
USES_FLUSH_SECONDS = 60.0  # subscriber stats: one batched write a minute, never one per request
STORE_RETRY_SECONDS = 2.0  # writes the store refused are retried this often
FOLLOW_SECONDS = 1.0  # replicas look for new feed versions at least this often
PULL_GRACE_SECONDS = 3.0  # a stopping daemon lets a pull in flight finish this long, then cancels it


def create_app(
    config: Config,
    *,
    fetcher: Callable[[aiohttp.ClientSession], Fetcher] = SourceFetcher,
    reload_check: float = RELOAD_CHECK_SECONDS,
    ops_socket: socket.socket | None = None,
) -> web.Application:
    """The public app; with ``ops_socket``, its lifecycle also serves the ops app there."""
    app = web.Application(middlewares=[observe])
    app[METRICS] = Metrics()
    add_routes(app)
    ops_app = create_ops_app(app)
    app.cleanup_ctx.append(_store_context(config))

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit_per_host=2, ttl_dns_cache=300)
        async with aiohttp.ClientSession(
            connector=connector, headers={"User-Agent": USER_AGENT}, trust_env=False
        ) as session:
            store = app[STORE]
            alert_state: AlertStore
            if store.dialect == "postgresql":  # replicas: one alert state, one sender at a time
                alert_state = await asyncio.to_thread(SharedAlertState.importing, store.sql, config.state_dir)
            else:
                alert_state = await asyncio.to_thread(AlertState.in_state_dir, config.state_dir)
            watch = ConflictWatch(alert_state, app[METRICS])
            service = FeedService(config, store, fetcher(session), app[METRICS], watch=watch)
            app[SERVICE] = service
            pusher = await _start_push(app, service) if _has_push(config) else None
            # Replicas: the holder of the "alerts" lease delivers (see alerts.WebhookSender).
            lease = None
            if service.shared:
                lease = functools.partial(store.sql.take_lease, "alerts", service.replica)
            sender = WebhookSender(alert_state, lambda: service.config, session, app[METRICS], watch, lease)
            alerting = asyncio.create_task(sender.run())
            ops_runner = web.AppRunner(ops_app, access_log=None, shutdown_timeout=1.0)
            if ops_socket is not None:
                await ops_runner.setup()
                await web.SockSite(ops_runner, ops_socket).start()
            await service.restore()
            if pusher is not None:
                pusher.start(service.feeds)  # start-up: mirror what is served now
            scheduler = AsyncIOScheduler(timezone=UTC)
            app[SCHEDULER] = scheduler
            schedule_pulls(scheduler, service)
            scheduler.start()
            watcher = asyncio.create_task(watch_config(app, reload_check))
            keeper = asyncio.create_task(keep_store(app))
            follower = asyncio.create_task(follow_store(app))
            loop = asyncio.get_running_loop()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGHUP, lambda: _spawn(app, reload(app, "SIGHUP")))
                loop.add_signal_handler(signal.SIGUSR1, lambda: _spawn(app, service.pull_all()))
            log.info("daemon_started", sources=len(config.sources), feeds=len(config.rules.feeds))
            try:
                yield
            finally:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(signal.SIGHUP)
                    loop.remove_signal_handler(signal.SIGUSR1)
                for task in (watcher, keeper, follower, alerting):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                scheduler.shutdown(wait=False)
                await service.stop_pulls(PULL_GRACE_SECONDS)
                if PUSH in app:
                    await app[PUSH].stop()
                await service.save_pending()
                await service.release_leases()
                if service.shared:  # another replica delivers what is left at once
                    with contextlib.suppress(StateError):
                        await asyncio.to_thread(store.sql.release_lease, "alerts", service.replica)
                alert_state.close()
                if ops_socket is not None:
                    await ops_runner.cleanup()
                log.info("daemon_stopped")

    app.cleanup_ctx.append(lifecycle)
    return app


async def _start_push(app: web.Application, service: FeedService) -> PushManager:
    """CalDAV push: feeds that change are handed to it; it syncs in threads of its own."""
    state: PushStore
    leases = None
    if service.shared:  # replicas: one push state in the store, a lease per target
        state = await asyncio.to_thread(
            SharedPushState.importing, service.store.sql, service.config.state_dir
        )
        leases = PushLeases(service.store.sql, service.replica)
    else:
        state = await asyncio.to_thread(PushState.in_state_dir, service.config.state_dir)
    pusher = app[PUSH] = PushManager(service.config, state, app[METRICS], leases=leases)
    service.on_feed_changed = pusher.feed_changed
    return pusher


def _has_push(config: Config) -> bool:
    return any(feed.push for feed in config.rules.feeds.values())


def _store_context(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    """The store (migrated, today's files imported) and the token index, before anything else."""

    async def store_context(app: web.Application) -> AsyncIterator[None]:
        opened = await asyncio.to_thread(open_sql_store, config.store, config.state_dir, logged=True)
        store = Store(opened)
        app[STORE] = store
        app[TOKENS] = tokens = TokenIndex(store, per_request=store.dialect != "postgresql")
        await tokens.reload()
        try:
            yield
        finally:
            await tokens.flush_uses()
            await asyncio.to_thread(store.close)

    return store_context


async def follow_store(app: web.Application) -> None:
    """Replicas: serve the versions and tokens others change, told by LISTEN/NOTIFY, checked
    every ``FOLLOW_SECONDS`` anyway (a notification lost while the database was away)."""
    service, tokens = app[SERVICE], app[TOKENS]
    db = service.store.sql.db
    if not isinstance(db, PostgresDatabase):
        return
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()
    stop = threading.Event()
    listener = loop.run_in_executor(
        None, db.listen, lambda payload: loop.call_soon_threadsafe(changed.set), stop
    )
    try:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), FOLLOW_SECONDS)
            changed.clear()
            await tokens.refresh()
            await service.follow()
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.shield(listener)


async def keep_store(app: web.Application) -> None:
    """Retry writes the store refused, and write subscriber stats once a minute."""
    service, tokens = app[SERVICE], app[TOKENS]
    loop = asyncio.get_running_loop()
    flushed = loop.time()
    while True:
        await asyncio.sleep(STORE_RETRY_SECONDS)
        if service.store_error is not None:
            await service.save_pending()
        if loop.time() - flushed >= USES_FLUSH_SECONDS:
            flushed = loop.time()
            await tokens.flush_uses()


_TASKS: set[asyncio.Task[None]] = set()


def _spawn(app: web.Application, work: Coroutine[Any, Any, None]) -> None:
    """Run a signal's work in the background, keeping a reference until it is done."""
    task = asyncio.ensure_future(work)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


def schedule_pulls(scheduler: AsyncIOScheduler, service: FeedService) -> None:
    """One job per source; the first pull runs at once. A slow pull never overlaps itself."""
    for job in scheduler.get_jobs():
        job.remove()
    now = datetime.now(UTC)
    for name, source in service.config.sources.items():
        seconds = source.every.total_seconds()
        scheduler.add_job(
            service.scheduled_pull,
            IntervalTrigger(seconds=seconds, jitter=min(60.0, seconds / 10)),
            args=[name],
            id=f"pull:{name}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(seconds),
            next_run_time=now,
        )


def _stamp(config: Config) -> tuple[tuple[str, int, int], ...]:
    paths = [config.path, *config.watched_files]
    if config.rules_dir is not None and config.rules_dir.is_dir():
        paths += [p for p in config.rules_dir.iterdir() if p.suffix in (".yaml", ".yml")]
    stamps = []
    for path in sorted(set(paths)):
        try:
            stat = path.stat()
            stamps.append((str(path), stat.st_mtime_ns, stat.st_size))
        except FileNotFoundError:
            stamps.append((str(path), 0, -1))
    return tuple(stamps)


async def watch_config(app: web.Application, every: float) -> None:
    stamp = _stamp(app[SERVICE].config)
    while True:
        await asyncio.sleep(every)
        current = _stamp(app[SERVICE].config)
        if current != stamp:
            stamp = current
            await reload(app, "file change")
            stamp = _stamp(app[SERVICE].config)
        accepted = app[SERVICE].emptying.pending()
        if accepted:  # `accept-shrink FEED` for a feed held empty: render it to take that
            await app[SERVICE].render(accepted)


async def reload(app: web.Application, reason: str) -> None:
    """Validate, then swap. An invalid edit keeps the old rules and is shown in /readyz."""
    service, metrics = app[SERVICE], app[METRICS]
    try:
        config = await asyncio.to_thread(load_config, service.config.path)
    except ConfigError as exc:
        service.config_error = "; ".join(exc.problems[:10])
        metrics.reloads["error"] += 1
        metrics.reload_ok = 0
        log.error("config_rejected", reason=reason, problems=exc.problems[:10])
        return
    listen = ("host", "port", "ops_host", "ops_port")
    if any(getattr(config.server, key) != getattr(service.config.server, key) for key in listen):
        log.warning("config_listen_change_needs_restart")
    if config.state_dir != service.config.state_dir:
        log.warning("config_state_dir_change_needs_restart")
        config = _keep_state_dir(config, service.config.state_dir)
    sources_changed = config.sources != service.config.sources
    await service.apply_config(config)
    if PUSH not in app and _has_push(config):
        await _start_push(app, service)  # the first push target came with this reload
    if PUSH in app:
        app[PUSH].configure(config, service.feeds)  # new, changed or removed push targets
    if sources_changed:
        schedule_pulls(app[SCHEDULER], service)
    metrics.reloads["ok"] += 1
    metrics.reload_ok = 1
    log.info("config_reloaded", reason=reason, feeds=len(config.rules.feeds), sources=len(config.sources))


def _keep_state_dir(config: Config, state_dir: Path) -> Config:
    from icalproxy.records import replace  # noqa: PLC0415

    return replace(config, state_dir=state_dir)


def bind(host: str, port: int, what: str) -> socket.socket:
    """Listen now, before anything is pulled or written: a port in use is one clear error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=128)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {host}:{port} ({what}): unknown host {host!r}") from exc
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        raise ListenError(f"cannot listen on {host}:{port} ({what}): {reason.lower()}") from exc
    sock.setblocking(False)
    return sock


def run(config: Config, host: str, port: int, ops: tuple[str, int] | None = None) -> None:
    ops_host, ops_port = ops or (config.server.ops_host, config.server.ops_port)
    if ops_port == port != 0:
        raise ListenError(
            f"cannot listen on {host}:{port}: the ops listener {ops_host}:{ops_port} needs another port"
        )
    public = bind(host, port, "listen")
    try:
        ops_socket = bind(ops_host, ops_port, "ops_listen")
    except ListenError:
        public.close()
        raise
    app = create_app(config, ops_socket=ops_socket)
    log.info(
        "listening",
        url=f"http://{host}:{port}",
        ops=f"http://{ops_host}:{ops_port}",
        public_url=config.server.public_url or None,
    )
    web.run_app(app, sock=public, access_log=None, print=None, shutdown_timeout=5.0, handle_signals=True)


__all__ = ["bind", "create_app", "reload", "run", "schedule_pulls"]
