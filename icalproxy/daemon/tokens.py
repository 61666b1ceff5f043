"""Secret subscribe tokens: random, shown once, stored only as SHA-256, checked in constant time.

A feed may have several tokens (one per person or device), so one can be revoked alone and
rotation needs no downtime: add the new token, hand it out, revoke the old one. The token
file is re-read when it changes on disk, so ``token revoke`` takes effect at the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from icalproxy.errors import StateError, TokenError
from icalproxy.storage import atomic_write

TOKEN_BYTES = 32  # 256 bits
_DUMMY_HASH = hashlib.sha256(b"icalproxy-no-such-token").hexdigest()

Lookup = Literal["valid", "revoked", "unknown"]


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    feed: str
    label: str
    sha256: str
    created: str
    revoked: str | None = None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class TokenStore:
    @classmethod
    def in_state_dir(cls, state_dir: Path) -> TokenStore:
        return cls(state_dir / "tokens.json")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._records: dict[str, TokenRecord] = {}  # by sha256
        self._stamp: tuple[int, int] | None = None

    # ---------------------------------------------------------------- reading

    def refresh(self) -> None:
        """Re-read the file if it changed (cheap: one stat)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._records, self._stamp = {}, None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            records = [TokenRecord(**item) for item in raw["tokens"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateError(f"token file {self.path.name} is unreadable: {type(exc).__name__}") from exc
        self._records = {record.sha256: record for record in records}
        self._stamp = stamp

    def records(self) -> list[TokenRecord]:
        self.refresh()
        return sorted(self._records.values(), key=lambda record: (record.feed, record.created, record.id))

    def lookup(self, token: str) -> tuple[Lookup, str | None]:
        """(valid|revoked|unknown, feed). The same work is done whatever the answer; the
        file is re-read first if it changed, so a revocation counts from the next request."""
        self.refresh()
        digest = hash_token(token)
        record = self._records.get(digest)
        stored = record.sha256 if record is not None else _DUMMY_HASH
        matches = hmac.compare_digest(stored, digest)
        if record is None or not matches:
            return "unknown", None
        if record.revoked is not None:
            return "revoked", record.feed
        return "valid", record.feed

    # ---------------------------------------------------------------- writing

    def create(self, feed: str, label: str, now: datetime | None = None) -> tuple[TokenRecord, str]:
        self.refresh()
        token = secrets.token_urlsafe(TOKEN_BYTES)
        record = TokenRecord(
            id=secrets.token_hex(4),
            feed=feed,
            label=label,
            sha256=hash_token(token),
            created=_stamp_of(now),
        )
        self._records[record.sha256] = record
        self._save()
        return record, token

    def revoke(self, token_id: str, now: datetime | None = None) -> TokenRecord:
        self.refresh()
        for digest, record in self._records.items():
            if record.id == token_id:
                if record.revoked is not None:
                    return record
                revoked = TokenRecord(**{**asdict(record), "revoked": _stamp_of(now)})
                self._records[digest] = revoked
                self._save()
                return revoked
        raise TokenError(f"no token with id {token_id!r}")

    def _save(self) -> None:
        data = {"version": 1, "tokens": [asdict(record) for record in self._records.values()]}
        atomic_write(self.path, json.dumps(data, indent=2, sort_keys=True).encode(), mode=0o600)
        self._stamp = None  # re-read our own write next time (its stamp)


def _stamp_of(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
