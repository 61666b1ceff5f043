"""Secret subscribe tokens in the daemon: an in-memory index of the store's token hashes.

Tokens are random (256 bits), shown once, stored only as SHA-256 (see ``store/sql.py``) and
compared in constant time. A feed may have several tokens (one per person or device), so one
can be revoked alone and rotation needs no downtime.

With SQLite each lookup first asks the store whether its tokens changed (one tiny query, at
most every ``RECHECK_SECONDS``), so ``token revoke`` in another process counts from the next
request. With PostgreSQL the daemon re-reads them when told by NOTIFY (checked every second
anyway), so a revocation on any replica counts on all of them within a second. When the store
cannot be reached (or is slow to answer) the tokens known last keep working, and no request
waits long for it.
Uses (last used, calendar app) are collected here and written in batches, never per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
import time
from collections.abc import Callable

import structlog

from icalproxy.daemon.store import Store
from icalproxy.daemon.store.records import Lookup, TokenRecord, TokenUse
from icalproxy.daemon.store.sql import hash_token
from icalproxy.errors import StateError

log = structlog.get_logger("icalproxy.tokens")
RECHECK_SECONDS = 0.05
REFRESH_WAIT_SECONDS = 0.25  # a request waits this long for a re-read, then the known tokens answer
_DUMMY = TokenRecord("", "", "", "0" * 64, "")

# First match wins: Thunderbird's and Nextcloud's agents also name the platform they run on.
_AGENTS = (
    ("Thunderbird", re.compile(r"thunderbird|lightning", re.IGNORECASE)),
    ("Nextcloud", re.compile(r"nextcloud", re.IGNORECASE)),
    ("Google", re.compile(r"google", re.IGNORECASE)),
    ("Outlook", re.compile(r"outlook|microsoft|exchange|\bMSFT", re.IGNORECASE)),
    (
        "Apple",
        re.compile(
            r"\bios\b|mac ?os|macintosh|iphone|ipad|darwin|calendaragent|dataaccessd|\bical\b", re.IGNORECASE
        ),
    ),
)


def agent_family(user_agent: str | None) -> str:
    """Google, Outlook, Apple, Thunderbird, Nextcloud or other, from a User-Agent header."""
    text = (user_agent or "")[:512]
    return next((family for family, pattern in _AGENTS if pattern.search(text)), "other")


class TokenIndex:
    def __init__(
        self, store: Store, clock: Callable[[], float] = time.monotonic, *, per_request: bool = True
    ) -> None:
        self.store = store
        self.clock = clock
        # PostgreSQL: no check on the request path; the daemon refreshes on NOTIFY (and every
        # second), so a revocation on any replica counts within a second everywhere.
        self.per_request = per_request
        self._records: dict[str, TokenRecord] = {}  # by sha256
        self._generation: int | None = None
        self._checked = float("-inf")
        self._refreshing: asyncio.Future[None] | None = None
        self._uses: dict[str, TokenUse] = {}  # not yet written
        self.store_error: str | None = None

    async def lookup(self, token: str) -> tuple[Lookup, TokenRecord | None]:
        if self.per_request and self.clock() - self._checked >= RECHECK_SECONDS:
            await self.refresh()
        return self.lookup_loaded(token)

    def lookup_loaded(self, token: str) -> tuple[Lookup, TokenRecord | None]:
        """The same work whatever the answer: one hash, one dict probe, one constant-time compare."""
        digest = hash_token(token)
        record = self._records.get(digest)
        matches = hmac.compare_digest((record or _DUMMY).sha256, digest)
        if record is None or not matches:
            return "unknown", None
        return ("revoked" if record.revoked is not None else "valid"), record

    async def refresh(self) -> None:
        """Re-read the tokens if the store says they changed; concurrent callers share one check.
        A request waits for it a moment at most, and not at all while the store is known away."""
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._refresh())
            self._refreshing.add_done_callback(self._refreshed)
        wait = 0.0 if self.store_error is not None else REFRESH_WAIT_SECONDS
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._refreshing), wait)

    async def reload(self) -> None:
        """Read the tokens now, waiting as long as the store takes (start-up)."""
        await self._refresh()

    def _refreshed(self, refreshing: asyncio.Future[None]) -> None:
        if self._refreshing is refreshing:
            self._refreshing = None

    async def _refresh(self) -> None:
        try:
            generation = await self.store.tokens_generation()
            if generation != self._generation:
                records = await self.store.tokens()
                self._records = {record.sha256: record for record in records}
                self._generation = generation
            if self.store_error is not None:
                log.info("token_store_reachable_again")
            self.store_error = None
        except StateError as exc:
            if self.store_error is None:
                log.error("token_store_unreachable", error=str(exc))
            self.store_error = str(exc)
        self._checked = self.clock()

    def load(self, records: list[TokenRecord], generation: int) -> None:
        self._records = {record.sha256: record for record in records}
        self._generation = generation
        self._checked = self.clock()

    # ------------------------------------------------------------ subscriber stats

    def seen(self, record: TokenRecord, user_agent: str | None, now: float) -> None:
        self._uses[record.id] = TokenUse(record.id, now, agent_family(user_agent))

    def take_uses(self) -> list[TokenUse]:
        uses, self._uses = list(self._uses.values()), {}
        return uses

    def give_back(self, uses: list[TokenUse]) -> None:
        """A batch that could not be written: kept for the next flush, newer uses win."""
        for use in uses:
            self._uses.setdefault(use.token_id, use)

    async def flush_uses(self) -> int:
        uses = self.take_uses()
        if not uses:
            return 0
        try:
            await self.store.record_token_use(uses)
        except StateError as exc:
            self.give_back(uses)
            log.warning("token_uses_not_written", tokens=len(uses), error=str(exc))
            return 0
        return len(uses)
