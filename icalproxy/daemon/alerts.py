"""Conflicts in the daemon: found after each render, compared with what was already reported,
logged once, counted for /readyz and /metrics, and sent to a webhook.

``ConflictWatch.update`` diffs a feed's conflicts against ``AlertState``: a new one is logged
as a warning and queued as an alert, a vanished one as resolved (info); one that vanished only
because its jobs are now older than the window expires silently. ``WebhookSender`` delivers
the queue in order, retrying with exponential backoff and jitter; what is queued survives a
restart. The webhook URL is never logged (Slack's carry their secret in the path).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog

from icalproxy.config.model import Config, Webhook
from icalproxy.core.conflicts import Conflict, FeedConflicts, as_dict, describe, zone_named
from icalproxy.daemon.alert_state import AlertStore, Change
from icalproxy.daemon.metrics import Metrics
from icalproxy.errors import StateError

log = structlog.get_logger("icalproxy.alerts")
ALERT_LEASE = 30.0  # seconds the replica delivering alerts holds the ``alerts`` lease
LEASE_RETRY = ALERT_LEASE / 3  # how often the others look whether it is free
STATE_RETRY = 5.0  # seconds before the sender reads an alert state that was away again


class ConflictWatch:
    def __init__(self, state: AlertStore, metrics: Metrics, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.metrics = metrics
        self.clock = clock
        self.current: dict[str, FeedConflicts] = {}
        self.checked: dict[str, float] = {}
        self.wake = asyncio.Event()  # set when alerts were queued
        self.alert_error: str | None = None  # the webhook's last failure, for /readyz
        self.queued: int | None = None  # alerts not delivered yet, as last read (None: not yet)

    def update(self, report: FeedConflicts, alert: bool) -> None:
        """Record one feed's conflicts as found now. Runs in a worker thread (sqlite writes)."""
        feed = report.feed
        zone = zone_named(report.zone) or UTC
        known = self.state.known(feed)
        found = {conflict.id: conflict for conflict in report.conflicts}
        low = report.window[0].replace(tzinfo=UTC).timestamp()
        new = [
            Change(conflict.id, _epoch(conflict.end), _payload(conflict, zone))
            for conflict_id, conflict in found.items()
            if conflict_id not in known
        ]
        gone = [conflict_id for conflict_id in known if conflict_id not in found]
        expired = [conflict_id for conflict_id in gone if known[conflict_id] <= low]
        resolved = [conflict_id for conflict_id in gone if known[conflict_id] > low]
        if new or gone:
            self.state.record(feed, new, resolved, expired, alert=alert, now=self.clock())
            self.queued = self.state.pending()
        for change in new:
            conflict = found[change.id]
            log.warning(
                "conflict_detected",
                feed=feed,
                kind=conflict.kind,
                id=conflict.id,
                starts=[f"{job.start:%Y-%m-%dT%H:%M}Z" for job in conflict.jobs],
            )
        for conflict_id in resolved:
            log.info("conflict_resolved", feed=feed, id=conflict_id)
        for conflict_id in expired:
            log.info("conflict_expired", feed=feed, id=conflict_id)
        self.current[feed] = report
        self.checked[feed] = self.clock()
        for kind, count in report.by_kind().items():
            self.metrics.conflicts[(feed, kind)] = count

    def retain(self, feeds: set[str]) -> None:
        """Forget feeds that are no longer checked (removed, or without ``conflicts:``)."""
        for feed in set(self.current) - feeds:
            del self.current[feed]
            self.checked.pop(feed, None)
        for key in [key for key in self.metrics.conflicts if key[0] not in feeds]:
            del self.metrics.conflicts[key]
        for feed in self.state.feeds() - feeds:
            self.state.forget(feed)

    def status(self, webhook: bool) -> dict[str, Any]:
        """For /readyz, on the event loop: from what the sender last read, never the state
        itself (on a shared store that is a network round trip, and may be away)."""
        return {"webhook": webhook, "pending": self.queued, "last_error": self.alert_error}

    def summary(self, feed: str) -> dict[str, Any] | None:
        report = self.current.get(feed)
        if report is None:
            return None
        return {
            "count": len(report.conflicts),
            "by_kind": report.by_kind(),
            "jobs": report.jobs,
            "checked": _iso(self.checked.get(feed)),
            "ids": [conflict.id for conflict in report.conflicts[:100]],
            "notes": list(report.notes),
        }


def _payload(conflict: Conflict, zone: Any) -> dict[str, Any]:
    body = as_dict(conflict, zone, lambda job: None)
    body["text"] = describe(conflict, zone, lambda job: None)
    return body


def _epoch(moment: datetime) -> float:
    return moment.replace(tzinfo=UTC).timestamp()


def _iso(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def webhook_body(event: str, payload: Mapping[str, Any], style: str) -> dict[str, Any]:
    """What is POSTed: the conflict as JSON, or a Slack message."""
    if style == "slack":
        mark = ":warning: Conflict" if event == "conflict" else ":white_check_mark: Resolved"
        return {"text": f"{mark}: {payload.get('text', payload.get('id', ''))}"}
    return {"event": event, **payload}


class WebhookSender:
    """Delivers queued alerts in order; a failure is retried with backoff, never dropped."""

    def __init__(
        self,
        state: AlertStore,
        config: Callable[[], Config],
        session: aiohttp.ClientSession,
        metrics: Metrics,
        watch: ConflictWatch,
        lease: Callable[[float], bool] | None = None,
    ) -> None:
        self.state = state
        # Replicas: deliver only while this returns True (it takes or renews the alerts lease
        # for the seconds given), so one replica at a time sends, in queue order. Blocking.
        self.lease = lease
        self.config = config
        self.session = session
        self.metrics = metrics
        self.watch = watch
        self.wake = watch.wake

    async def run(self) -> None:
        while True:
            try:
                delay = await self.step()
            except StateError as exc:  # the state (a shared store) is away: try again soon
                log.warning("alert_state_unavailable", error=str(exc))
                delay = STATE_RETRY
            except Exception:  # a bug or a broken state file must not end alerting for good
                log.exception("alert_sender_crashed")
                delay = 30.0
            if delay is None or delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=delay if delay is not None else 3600)
                self.wake.clear()

    async def step(self) -> float | None:
        """Deliver the head of the queue if due. Returns seconds until worth trying again
        (0: at once, None: nothing queued)."""
        hook = self.config().alerts.webhook
        item = await asyncio.to_thread(self.state.head)
        self.watch.queued = await asyncio.to_thread(self.state.pending)
        if item is None:
            return None
        if hook is None:
            return 3600.0  # queued alerts wait for a webhook to be configured again
        # Held for longer than one delivery can take, so two replicas never send one alert.
        if self.lease is not None and not await asyncio.to_thread(
            self.lease, max(ALERT_LEASE, 3 * hook.timeout)
        ):
            return LEASE_RETRY  # another replica delivers; look again in a moment
        wait = item.due - time.time()
        if wait > 0:
            return wait
        failure = await self._post(hook, webhook_body(item.event, item.payload, hook.format))
        if failure is None:
            await asyncio.to_thread(self.state.delivered, item.seq)
            self.metrics.alerts["delivered"] += 1
            self.watch.alert_error = None
            log.info("alert_delivered", alert=item.event, id=item.id, attempts=item.attempts + 1)
            return 0.0
        backoff = min(hook.first_retry.total_seconds() * 2**item.attempts, hook.max_retry.total_seconds())
        backoff *= random.uniform(0.8, 1.2)
        await asyncio.to_thread(self.state.postpone, item.seq, time.time() + backoff)
        self.metrics.alerts["failed"] += 1
        self.watch.alert_error = failure
        log.warning(
            "alert_failed",
            alert=item.event,
            id=item.id,
            attempt=item.attempts + 1,
            reason=failure,
            retry_in=round(backoff, 1),
        )
        return backoff

    async def _post(self, hook: Webhook, body: dict[str, Any]) -> str | None:
        """None when the receiver took it (2xx); else a reason that names no URL."""
        try:
            async with self.session.post(
                hook.url, json=body, timeout=aiohttp.ClientTimeout(total=hook.timeout), allow_redirects=False
            ) as response:
                await response.read()
                return None if 200 <= response.status < 300 else f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            return type(exc).__name__  # exception texts may carry the URL
