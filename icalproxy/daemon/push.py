"""Push feeds into CalDAV calendar collections: a one-way mirror of each feed's events.

For every target (``feeds.<name>.push[i].caldav``) a sync makes the collection hold exactly
the feed's events that icalproxy put there, one resource per UID (``core/split.py``):

1. List what changed on the server: ``REPORT sync-collection`` with the token of the last
   sync (RFC 6578; an unchanged collection costs one small request), or the whole listing
   when there is no token or the server refuses it (then ``PROPFIND Depth: 1``). Only
   hrefs icalproxy created (rows in ``PushState``) are looked at: the technician's own
   events are never read, changed or deleted. A row whose ETag moved or whose href vanished
   is drift; the feed is the source of truth, so it is written again and counted.
2. Create with ``PUT`` + ``If-None-Match: *``, update with ``If-Match`` on the server's
   ETag, delete with ``If-Match``; only resources whose content hash changed. A PUT
   answered without an ETag (iCloud) or with 412 (Nextcloud) re-reads that resource's
   ETag (``PROPFIND Depth: 0``) and goes on from what it says.
3. State rows are written as each request succeeds (an *intent* row before each create),
   so a sync killed half-way resumes without duplicates: a 412 on the create of a row left
   from an earlier run is our own resource, and is adopted.

Requests go through python-caldav's ``DAVClient`` in worker threads, never on the event
loop: each target has its own threads, a bounded number of requests in flight and a
request budget per sync; errors back off per target. A failing or slow target never
delays rendering, serving or another target.

Replicas sharing a PostgreSQL store share the push state too (``SharedPushState``) and sync
a target only while holding its push lease (``PushLeases``): every replica is told of every
feed change (the one that renders, and the others as they follow the store), and the one
holding the lease pushes it. A replica that stops gives its leases up; one that dies loses
them after ``PUSH_LEASE`` seconds, and another replica takes over, from the same rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import structlog

from icalproxy.config.model import CalDAVTarget, Config
from icalproxy.core.split import Resource, split_feed
from icalproxy.daemon.push_state import PushState, PushStore, Row
from icalproxy.errors import PushError, StateError

if TYPE_CHECKING:
    from icalproxy.daemon.store.sql import SqlStore

log = structlog.get_logger("icalproxy.push")

IN_FLIGHT = 4  # requests in flight per target
BUDGET = 2000  # requests per sync; what is left over goes into the next sync, right after
TIMEOUT = 30  # seconds per request
LOCKED_RETRIES = 4  # a 423 Locked answer is tried again this often, after a short pause
BACKOFF_FIRST, BACKOFF_MAX = 5.0, 900.0  # seconds; doubles per consecutive failure
RESYNC = 900.0  # seconds: even without a feed change, look for drift this often
PUSH_LEASE = 30.0  # seconds a replica holds a target's push lease; renewed every third of it

_SYNC_QUERY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token>'
    "<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"
)
_ETAG_QUERY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>'
)
_ICS = "text/calendar; charset=utf-8"
RequestCounter = Callable[[str, str], None]  # (method, status or "error")


def target_name(feed: str, index: int) -> str:
    """How logs, metrics and /readyz name a target: never its credentials."""
    return f"{feed}#{index}"


def state_key(feed: str, target: CalDAVTarget) -> str:
    """Rows belong to a feed *and* a collection: a new URL starts a new mirror."""
    return f"{feed}|{target.url}"


@dataclass(frozen=True, slots=True)
class PushLeases:
    """Which replica syncs a target, when replicas share a store: the store's leases, named
    ``push:<feed>|<collection URL>``. Blocking, like the store."""

    sql: SqlStore
    holder: str
    seconds: float = PUSH_LEASE

    def take(self, key: str) -> bool:
        return self.sql.take_lease(f"push:{key}", self.holder, self.seconds)

    def release(self, key: str) -> None:
        self.sql.release_lease(f"push:{key}", self.holder)


class _BudgetSpent(Exception):
    """The sync used its request budget; the rest waits for the next sync."""


class _Budget:
    def __init__(self, requests: int) -> None:
        self.left = requests
        self.used = 0
        self._lock = threading.Lock()

    def take(self) -> None:
        with self._lock:
            if self.left <= 0:
                raise _BudgetSpent
            self.left -= 1
            self.used += 1


class DavConnection:
    """One python-caldav client, with errors mapped to PushError and every request counted."""

    def __init__(self, name: str, target: CalDAVTarget, count: RequestCounter, budget: _Budget) -> None:
        import caldav  # noqa: PLC0415  (heavy; only daemons with push targets need it)

        self.name, self.target, self.count, self.budget = name, target, count, budget
        if target.bearer_token is not None:
            auth: dict[str, Any] = {"auth_type": "bearer", "password": target.bearer_token}
        elif target.username is not None:
            auth = {"auth_type": "basic", "username": target.username, "password": target.password}
        else:
            auth = {}
        self.client = caldav.DAVClient(url=target.url, timeout=TIMEOUT, enable_rfc6764=False, **auth)
        self.client.session.trust_env = False  # no .netrc or proxy variables: the config decides
        self.collection = urlsplit(target.url).path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()

    def url(self, href: str) -> str:
        return urljoin(self.target.url, href)

    def request(
        self, method: str, href: str, body: str | bytes = "", headers: Mapping[str, str] | None = None
    ) -> Any:
        for attempt in range(LOCKED_RETRIES + 1):
            response = self._once(method, href, body, headers)
            if response.status != 423 or attempt == LOCKED_RETRIES:
                break
            # 423 Locked: another writer holds the collection (Xandikos commits each PUT to git)
            time.sleep(0.05 * 2**attempt)
        status = int(response.status)
        if status >= 500 or status in (401, 403, 423, 429):
            raise PushError(self.name, f"{self.target.display}: {method} answered {status}", status=status)
        return response

    def _once(self, method: str, href: str, body: str | bytes, headers: Mapping[str, str] | None) -> Any:
        from caldav.lib import error as dav_error  # noqa: PLC0415
        from niquests.exceptions import RequestException  # noqa: PLC0415

        self.budget.take()
        try:
            response = self.client.request(self.url(href), method, body, dict(headers or {}))
        except dav_error.AuthorizationError as exc:
            self.count(method, "401")
            raise PushError(
                self.name,
                f"{self.target.display}: authentication failed (check the username and password or token)",
                status=401,
            ) from exc
        except (dav_error.DAVError, RequestException, OSError) as exc:
            self.count(method, "error")
            raise PushError(
                self.name, f"{self.target.display}: {method} failed: {type(exc).__name__}"
            ) from exc
        self.count(method, str(response.status))
        return response

    def etag_of(self, href: str) -> str | None:
        """The resource's ETag now, or None when it does not exist."""
        response = self.request("PROPFIND", href, _ETAG_QUERY, {"Depth": "0"})
        if response.status == 404:
            return None
        self.expect(response, "PROPFIND", (207, 200))
        for item in response.parse_propfind():
            etag = item.properties.get("{DAV:}getetag")
            if etag:
                return str(etag)
        return None

    def changes(self, token: str | None) -> tuple[dict[str, str | None], str | None, bool]:
        """(href → ETag or None when deleted, new sync token, whether this is the whole listing)."""
        if token is not None:
            response = self.request("REPORT", self.collection, _SYNC_QUERY.format(token=_xml(token)))
            if response.status == 207:
                return self._sync_result(response, full=False)
            # An expired or unknown token (403/409 valid-sync-token): start again from a full list.
        response = self.request("REPORT", self.collection, _SYNC_QUERY.format(token=""))
        if response.status == 207:
            return self._sync_result(response, full=True)
        response = self.request("PROPFIND", self.collection, _ETAG_QUERY, {"Depth": "1"})
        self.expect(response, "PROPFIND", (207,))
        listing = {
            item.href: str(item.properties.get("{DAV:}getetag") or "")
            for item in response.parse_propfind()
            if item.href.rstrip("/") != self.collection.rstrip("/") and item.status == 200
        }
        return dict(listing), None, True

    def _sync_result(self, response: Any, full: bool) -> tuple[dict[str, str | None], str | None, bool]:
        result = response.parse_sync_collection()
        found: dict[str, str | None] = {href: None for href in result.deleted}
        for item in result.changed:
            if item.href.rstrip("/") != self.collection.rstrip("/"):
                found[item.href] = str(item.etag) if item.etag else ""
        # A truncated answer (507) is not the whole story: keep the old token, list again next time.
        return found, None if result.truncated else result.sync_token, full and not result.truncated

    def expect(self, response: Any, method: str, statuses: tuple[int, ...]) -> None:
        if response.status not in statuses:
            raise PushError(
                self.name,
                f"{self.target.display}: {method} answered {response.status}",
                status=response.status,
            )


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(slots=True)
class SyncResult:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    drift: int = 0  # resources edited or deleted on the server, restored from the feed
    conflicts: int = 0  # names taken by resources icalproxy did not create: left alone
    requests: int = 0
    pending: int = 0  # changes left for the next sync (budget spent)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "drift_restored": self.drift,
            "conflicts": self.conflicts,
            "requests": self.requests,
            "pending": self.pending,
        }


class TargetSync:
    """One sync of one target against the resources of the feed's current version. Blocking:
    run it in a worker thread."""

    def __init__(
        self,
        name: str,
        feed: str,
        target: CalDAVTarget,
        state: PushStore,
        resources: Mapping[str, Resource],
        *,
        count: RequestCounter,
        in_flight: int = IN_FLIGHT,
        budget: int = BUDGET,
    ) -> None:
        self.name, self.target, self.state, self.resources = name, target, state, resources
        self.key = state_key(feed, target)
        self.count = count
        self.in_flight = max(1, in_flight)
        self.budget = _Budget(budget)
        self.result = SyncResult()
        self._pool: queue.SimpleQueue[DavConnection] = queue.SimpleQueue()
        self._made: list[DavConnection] = []
        self._lock = threading.Lock()

    def run(self) -> SyncResult:
        """Writes what the stored state says has changed while the listing is asked for (each
        write is guarded by its ETag, so drift on those resources shows as 412 or 404 and is
        handled there); then restores the drift the listing found on the others."""
        started = time.perf_counter()
        try:
            rows = self.state.rows(self.key)
            work = self._plan(rows, self.resources)
            self.result.pending = len(work)
            token, mark = self.state.sync_token(self.key), self.state.mark()
            with ThreadPoolExecutor(max_workers=self.in_flight, thread_name_prefix="push") as pool:
                listing = pool.submit(self._list, token)
                self._execute(pool, list(work.values()))
                changes, new_token, full = listing.result()
            # Written in this sync and already in the listing as written: the token's state
            # has them. Those not in it were written after it and must show up next time.
            current = self.state.rows(self.key)
            settled = [
                uid
                for uid in work
                if (row := current.get(uid)) is not None and row.etag and changes.get(row.href) == row.etag
            ]
            drifted = self._seen(rows, set(work), changes, (new_token, mark, settled), full)
            if drifted:
                again = self._plan(
                    drifted, {uid: self.resources[uid] for uid in drifted if uid in self.resources}
                )
                self.result.pending += len(again)
                with ThreadPoolExecutor(max_workers=self.in_flight, thread_name_prefix="push") as pool:
                    self._execute(pool, list(again.values()))
        except _BudgetSpent:
            pass
        finally:
            for connection in self._made:
                connection.close()
            self.result.requests = self.budget.used
            self.result.seconds = time.perf_counter() - started
        return self.result

    @contextlib.contextmanager
    def _connection(self) -> Iterator[DavConnection]:
        try:
            connection = self._pool.get_nowait()
        except queue.Empty:
            connection = DavConnection(self.name, self.target, self.count, self.budget)
            with self._lock:
                self._made.append(connection)
        try:
            yield connection
        finally:
            self._pool.put(connection)

    # ------------------------------------------------------------ what to write

    def _plan(
        self, rows: Mapping[str, Row], resources: Mapping[str, Resource]
    ) -> dict[str, Callable[[DavConnection], None]]:
        """uid → the request(s) that bring its resource in line, from rows and resources alone."""
        work: dict[str, Callable[[DavConnection], None]] = {}
        for uid, resource in resources.items():
            row = rows.get(uid)
            if row is None or row.etag is None:
                work[uid] = lambda c, r=resource, old=row: self._create(c, r, old)
            elif row.hash != resource.hash:
                work[uid] = lambda c, r=resource, old=row: self._update(c, r, old, old.etag)
        for uid, row in rows.items():
            if uid not in self.resources:
                work[uid] = lambda c, old=row: self._delete(c, old)
        return work

    def _execute(self, pool: ThreadPoolExecutor, work: list[Callable[[DavConnection], None]]) -> None:
        def one(task: Callable[[DavConnection], None]) -> None:
            with self._connection() as connection:
                task(connection)
            with self._lock:
                self.result.pending -= 1

        futures = [pool.submit(one, task) for task in work]
        error: BaseException | None = None
        for future in futures:
            if future.cancelled():
                continue  # after an error: not started
            exc = future.exception()
            if exc is not None and error is None:
                error = exc
                for other in futures:
                    other.cancel()
        if error is not None:
            raise error

    # ------------------------------------------------------------ what the server shows

    def _list(self, token: str | None) -> tuple[dict[str, str | None], str | None, bool]:
        with self._connection() as connection:
            return connection.changes(token)

    def _seen(
        self,
        rows: Mapping[str, Row],
        busy: set[str],
        changes: Mapping[str, str | None],
        token: tuple[str | None, int, list[str]],
        full: bool,
    ) -> dict[str, Row]:
        """Marks drift on rows that were not being written meanwhile; returns those rows."""
        marked: dict[str, Row] = {}
        for uid, row in rows.items():
            if uid in busy or (row.href not in changes and not full and not row.fresh):
                continue  # written in this sync (guarded by If-Match), or unchanged since the token
            etag = changes.get(row.href)  # absent though fresh: created, then deleted meanwhile
            if etag is None:  # gone from the server
                if row.etag is not None:
                    self.result.drift += 1
                    marked[uid] = Row(row.uid, row.href, None, None)
            elif etag != row.etag:
                if row.etag is not None:  # edited by someone else (an intent left by a crash is not drift)
                    self.result.drift += 1
                marked[uid] = Row(row.uid, row.href, etag, None)
        self.state.save_seen(self.key, list(marked.values()), *token)
        if self.result.drift:
            log.info("push_drift_found", target=self.name, resources=self.result.drift)
        return marked

    # ------------------------------------------------------------ the requests

    def _create(self, connection: DavConnection, resource: Resource, row: Row | None) -> None:
        ours = row is not None  # a row from an earlier sync: whatever sits at its href is ours
        href = row.href if row is not None else connection.collection + resource.name
        if row is None:
            self.state.save(self.key, Row(resource.uid, href, None, None))  # intent, before the PUT
        response = connection.request(
            "PUT", href, resource.body, {"If-None-Match": "*", "Content-Type": _ICS}
        )
        if response.status == 412:
            if not ours:
                # Someone else's resource has this name: never touch it.
                self.state.forget(self.key, resource.uid)
                with self._lock:
                    self.result.conflicts += 1
                log.warning("push_name_taken", target=self.name)
                return
            etag = connection.etag_of(href)  # ours, written before a crash: adopt it
            if etag is not None:
                self._update(connection, resource, Row(resource.uid, href, etag, None), etag, count=False)
                with self._lock:
                    self.result.created += 1
                return
            response = connection.request(
                "PUT", href, resource.body, {"If-None-Match": "*", "Content-Type": _ICS}
            )
        connection.expect(response, "PUT", (200, 201, 204))
        self._stored(connection, resource, href, response)
        with self._lock:
            self.result.created += 1

    def _update(
        self, connection: DavConnection, resource: Resource, row: Row, etag: str | None, *, count: bool = True
    ) -> None:
        for _ in range(2):
            response = connection.request(
                "PUT", row.href, resource.body, {"If-Match": etag or "*", "Content-Type": _ICS}
            )
            if response.status in (200, 201, 204):
                self._stored(connection, resource, row.href, response)
                if count:
                    with self._lock:
                        self.result.updated += 1
                return
            if response.status == 404:
                self._create(connection, resource, Row(row.uid, row.href, None, None))
                return
            if response.status != 412:
                break
            etag = connection.etag_of(row.href)  # changed meanwhile (Nextcloud answers 412): read it again
            if etag is None:
                self._create(connection, resource, Row(row.uid, row.href, None, None))
                return
        connection.expect(response, "PUT", (200, 201, 204))

    def _stored(self, connection: DavConnection, resource: Resource, href: str, response: Any) -> None:
        location = response.headers.get("Location")
        if location:
            href = urlsplit(connection.url(location)).path  # stored as the server names it
        etag = response.headers.get("ETag")
        if not etag or etag.startswith("W/"):
            etag = connection.etag_of(href)  # iCloud answers PUT without an ETag
        self.state.save(self.key, Row(resource.uid, href, etag or "", resource.hash))

    def _delete(self, connection: DavConnection, row: Row) -> None:
        etag = row.etag or connection.etag_of(row.href)
        for attempt in range(2):
            if etag is None:
                break  # already gone
            response = connection.request("DELETE", row.href, headers={"If-Match": etag})
            if response.status in (200, 204, 404):
                break
            if response.status != 412 or attempt == 1:
                connection.expect(response, "DELETE", (200, 204, 404))
            etag = connection.etag_of(row.href)  # edited meanwhile: it is still ours to delete
        self.state.forget(self.key, row.uid)
        with self._lock:
            self.result.deleted += 1


def run_once(
    config: Config,
    bodies: Mapping[str, bytes],
    *,
    rounds: int = 20,
    state: PushStore | None = None,
    leases: PushLeases | None = None,
) -> Iterator[tuple[str, str, SyncResult | PushError]]:
    """``icalproxy push --once``: sync every target of these feeds, one after the other, until
    nothing is pending (or ``rounds`` budgets are spent). Yields (target, url, result or error).
    ``state`` and ``leases``: those replicas share (default: this state folder's own state);
    a target whose lease a replica holds is left to it."""
    from collections import Counter  # noqa: PLC0415

    requests: Counter[tuple[str, str]] = Counter()
    state = state if state is not None else PushState.in_state_dir(config.state_dir)
    try:
        for feed_name, body in bodies.items():
            resources = split_feed(body)
            for index, target in enumerate(config.rules.feeds[feed_name].push):
                name = target_name(feed_name, index)
                total = SyncResult()

                def count(method: str, status: str) -> None:
                    requests[(method, status)] += 1

                key = state_key(feed_name, target)
                if leases is not None and not leases.take(key):
                    yield (
                        name,
                        target.display,
                        PushError(name, "a running replica pushes it (it holds its lease)"),
                    )
                    continue
                try:
                    for _ in range(rounds):
                        result = TargetSync(name, feed_name, target, state, resources, count=count).run()
                        for key in ("created", "updated", "deleted", "drift", "conflicts", "requests"):
                            setattr(total, key, getattr(total, key) + getattr(result, key))
                        total.pending, total.seconds = result.pending, total.seconds + result.seconds
                        if not result.pending:
                            break
                except PushError as exc:
                    yield name, target.display, exc
                    continue
                finally:
                    if leases is not None:
                        leases.release(key)
                yield name, target.display, total
    finally:
        state.close()


# ---------------------------------------------------------------- the daemon side


@dataclass(slots=True)
class TargetStatus:
    name: str
    feed: str
    url: str
    last_sync: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    failures: int = 0
    next_attempt: float | None = None
    pending: int | None = None  # changes not yet on the server; None: not known yet
    drift_restored: int = 0
    last_result: dict[str, Any] = field(default_factory=dict)
    standby: bool = False  # replicas: another replica holds this target's push lease

    def as_dict(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "url": self.url,
            "last_sync": _iso(self.last_sync),
            "last_success": _iso(self.last_success),
            "last_error": self.last_error,
            "consecutive_failures": self.failures,
            "next_attempt": _iso(self.next_attempt),
            "pending_changes": self.pending,
            "drift_restored_total": self.drift_restored,
            "last_result": self.last_result,
            "standby": self.standby,
        }


class TargetRunner:
    """Syncs one target whenever its feed changes, in threads of its own."""

    def __init__(self, manager: PushManager, feed: str, index: int, target: CalDAVTarget) -> None:
        self.manager = manager
        self.feed, self.target = feed, target
        self.name = target_name(feed, index)
        self.status = TargetStatus(self.name, feed, target.display)
        self.body: bytes | None = None
        self._split: tuple[bytes, dict[str, Resource]] | None = None  # the last body, split
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"push-{self.name}")
        self._task: asyncio.Task[None] | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self.key = state_key(feed, target)
        # Without leases (one daemon, its own state) this replica always syncs.
        self.holding = manager.leases is None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"push:{self.name}")
        if self.manager.leases is not None:
            self._lease_task = asyncio.create_task(
                self._keep_lease(self.manager.leases), name=f"lease:{self.name}"
            )

    async def _keep_lease(self, leases: PushLeases) -> None:
        """Take or renew this target's lease every third of its length; taking it over wakes
        the sync, which then pushes the feed as this replica serves it."""
        away = False
        while True:
            try:
                held = await asyncio.to_thread(leases.take, self.key)
                away = False
            except StateError as exc:
                held = self.holding  # the store is away: nobody can take the lease meanwhile
                if not away:  # once per outage
                    log.warning("push_lease_unknown", target=self.name, error=str(exc))
                away = True
            except Exception:  # a bug: stand by rather than push without a lease
                log.exception("push_lease_crashed", target=self.name)
                held = False
            if held and not self.holding:
                log.info("push_lease_taken", target=self.name)
                self._wake.set()
            elif self.holding and not held:
                log.info("push_lease_lost", target=self.name)
            self.holding = held
            self.status.standby = not held
            await asyncio.sleep(leases.seconds / 3)

    def submit(self, body: bytes) -> None:
        self.body = body
        self._wake.set()

    async def stop(self) -> None:
        for task in (self._lease_task, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._executor.shutdown(wait=False, cancel_futures=True)
        leases = self.manager.leases
        if leases is not None and self.holding:
            self.holding = False
            with contextlib.suppress(StateError):  # another replica takes over at once
                await asyncio.to_thread(leases.release, self.key)

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.manager.resync)
            if self.status.next_attempt is not None:
                await asyncio.sleep(max(0.0, self.status.next_attempt - self.manager.clock()))
            self._wake.clear()
            body = self.body
            if body is None or not self.holding:
                continue  # nothing to push yet, or another replica pushes it
            await self._sync(body)

    async def _sync(self, body: bytes) -> None:
        manager, status = self.manager, self.status
        sync = TargetSync(
            self.name,
            self.feed,
            self.target,
            manager.state,
            {},
            count=manager.counter(self.name),
            in_flight=manager.in_flight,
            budget=manager.budget,
        )

        def run() -> SyncResult:  # in this target's thread: the split is CPU work too
            if self._split is None or self._split[0] is not body:
                self._split = (body, split_feed(body))
            sync.resources = self._split[1]
            return sync.run()

        loop = asyncio.get_running_loop()
        status.last_sync = manager.clock()
        try:
            result = await loop.run_in_executor(self._executor, run)
        except PushError as exc:
            self._failed(exc.reason, sync.result)
            return
        except StateError as exc:  # the push state could not be read or written
            self._failed(f"push state: {exc}", sync.result)
            return
        except Exception as exc:  # a bug must not stop pushing to the other targets
            log.exception("push_sync_crashed", target=self.name)
            self._failed(f"internal error: {type(exc).__name__}", sync.result)
            return
        status.last_success, status.last_error, status.failures, status.next_attempt = (
            manager.clock(),
            None,
            0,
            None,
        )
        status.pending, status.drift_restored = result.pending, status.drift_restored + result.drift
        status.last_result = result.as_dict()
        manager.metrics.push_pending[self.name] = result.pending
        manager.metrics.push_last_success[self.name] = status.last_success
        manager.metrics.push_drift[self.name] += result.drift
        log.info("push_synced", target=self.name, **result.as_dict(), ms=round(result.seconds * 1000))
        if result.pending:
            self._wake.set()  # the budget ran out: go on at once

    def _failed(self, reason: str, result: SyncResult) -> None:
        status = self.status
        status.failures += 1
        status.last_error = reason
        status.pending = result.pending or status.pending
        delay = min(BACKOFF_MAX, self.manager.backoff * 2 ** (status.failures - 1))
        delay *= random.uniform(0.8, 1.2)
        status.next_attempt = self.manager.clock() + delay
        status.drift_restored += result.drift
        self.manager.metrics.push_pending[self.name] = status.pending or 0
        log.warning(
            "push_failed", target=self.name, reason=reason, failures=status.failures, retry_in=round(delay, 1)
        )
        self._wake.set()  # try again once the backoff is over


class PushManager:
    """Every push target of the config; feeds reach it through ``feed_changed``."""

    def __init__(
        self,
        config: Config,
        state: PushStore,
        metrics: Any,
        *,
        leases: PushLeases | None = None,
        clock: Callable[[], float] = time.time,
        in_flight: int = IN_FLIGHT,
        budget: int = BUDGET,
        backoff: float = BACKOFF_FIRST,
        resync: float = RESYNC,
    ) -> None:
        self.state, self.metrics, self.clock = state, metrics, clock
        self.leases = leases  # replicas: sync a target only while holding its lease
        self.in_flight, self.budget, self.backoff, self.resync = in_flight, budget, backoff, resync
        self.runners: dict[str, TargetRunner] = {}
        self._lock = threading.Lock()
        self._config = config
        self._stopping: set[asyncio.Future[None]] = set()

    def counter(self, name: str) -> RequestCounter:
        def count(method: str, status: str) -> None:
            with self._lock:
                self.metrics.push_requests[(name, method, status)] += 1

        return count

    def start(self, feeds: Mapping[str, Any]) -> None:
        """Start a runner per target and sync each from the feed as served now."""
        self.configure(self._config, feeds)

    def configure(self, config: Config, feeds: Mapping[str, Any]) -> None:
        self._config = config
        wanted = {
            target_name(feed.name, index): (feed.name, index, target)
            for feed in config.rules.feeds.values()
            for index, target in enumerate(feed.push)
        }
        for name in list(self.runners):
            runner = self.runners[name]
            if name not in wanted or wanted[name][2] != runner.target:
                del self.runners[name]
                stopping = asyncio.ensure_future(runner.stop())
                self._stopping.add(stopping)
                stopping.add_done_callback(self._stopping.discard)
                self.metrics.push_pending.pop(name, None)
        for name, (feed, index, target) in wanted.items():
            if name not in self.runners:
                runner = self.runners[name] = TargetRunner(self, feed, index, target)
                runner.start()
                version = feeds.get(feed)
                if version is not None:
                    runner.submit(version.body)

    def feed_changed(self, feed: str, body: bytes) -> None:
        for runner in self.runners.values():
            if runner.feed == feed:
                runner.submit(body)

    async def stop(self) -> None:
        for runner in list(self.runners.values()):
            await runner.stop()
        self.runners.clear()

    def readiness(self) -> dict[str, Any]:
        return {name: runner.status.as_dict() for name, runner in sorted(self.runners.items())}


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
