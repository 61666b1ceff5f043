"""The state folder as releases before the state store wrote it, frozen here so the import
can be tested against exactly that format: ``sources/<name>.state`` and ``feeds/<name>.state``
(one JSON line naming the data's SHA-256 and length, then the data), ``tokens.json`` (version 1,
token hashes) and ``accept-shrink/<name>`` markers. Kept byte-compatible with that code."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from icalproxy.storage import atomic_write, safe_child


@dataclass(frozen=True, slots=True)
class LegacyToken:
    id: str
    feed: str
    label: str
    sha256: str
    created: str
    revoked: str | None = None


def save_state(folder: Path, name: str, data: bytes, meta: dict[str, Any]) -> None:
    record = {**meta, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    header = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    atomic_write(safe_child(folder, name, ".state"), header + b"\n" + data)


def save_tokens(state_dir: Path, tokens: list[LegacyToken]) -> None:
    data = {"version": 1, "tokens": [asdict(token) for token in tokens]}
    atomic_write(state_dir / "tokens.json", json.dumps(data, indent=2, sort_keys=True).encode(), mode=0o600)


def new_token(feed: str, label: str, created: str, revoked: str | None = None) -> tuple[LegacyToken, str]:
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    return LegacyToken(secrets.token_hex(4), feed, label, digest, created, revoked), token


def accept_shrink(state_dir: Path, source: str) -> None:
    atomic_write(safe_child(state_dir / "accept-shrink", source, ""), b"accepted\n")
