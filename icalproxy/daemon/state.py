"""Last good state on disk: raw source bytes and rendered feeds, each with a checksummed meta file.

Layout under ``state_dir``::

    sources/<name>.ics   sources/<name>.json   last good raw bytes, validators, counts
    feeds/<name>.ics     feeds/<name>.json     rendered feed, ETag, Last-Modified
    tokens.json                                token hashes (see tokens.py)

Data is written first, then its meta file (which names the data's SHA-256): both writes are
atomic, so after a crash a data file either matches its meta or is ignored. Reading verifies
the checksum; a corrupt, partial or foreign file is logged and never served.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from icalproxy.storage import atomic_write, remove_stale_temps, safe_child

log = structlog.get_logger("icalproxy.state")


@dataclass(frozen=True, slots=True)
class Stored:
    data: bytes
    meta: dict[str, Any]


class StateStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sources = root / "sources"
        self.feeds = root / "feeds"
        self.tokens_file = root / "tokens.json"

    def prepare(self) -> None:
        for folder in (self.root, self.sources, self.feeds):
            folder.mkdir(parents=True, exist_ok=True)
            removed = remove_stale_temps(folder)
            if removed:
                log.warning("state_temp_files_removed", folder=folder.name, count=removed)

    def accept_shrink(self, source: str) -> Path:
        """Ops' acceptance of a source's shrink, taken up at its next pull."""
        marker = safe_child(self.root / "accept-shrink", source, "")
        atomic_write(marker, b"accepted\n")
        return marker

    def take_shrink_acceptance(self, source: str) -> bool:
        marker = safe_child(self.root / "accept-shrink", source, "")
        try:
            marker.unlink()
        except FileNotFoundError:
            return False
        return True

    def save_source(self, name: str, data: bytes, meta: dict[str, Any]) -> None:
        self._save(self.sources, name, data, meta)

    def load_source(self, name: str) -> Stored | None:
        return self._load(self.sources, name)

    def save_feed(self, name: str, data: bytes, meta: dict[str, Any]) -> None:
        self._save(self.feeds, name, data, meta)

    def load_feed(self, name: str) -> Stored | None:
        return self._load(self.feeds, name)

    def _save(self, folder: Path, name: str, data: bytes, meta: dict[str, Any]) -> None:
        atomic_write(safe_child(folder, name, ".ics"), data)
        record = {**meta, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        atomic_write(safe_child(folder, name, ".json"), json.dumps(record, sort_keys=True).encode())

    def _load(self, folder: Path, name: str) -> Stored | None:
        data_path = safe_child(folder, name, ".ics")
        meta_path = safe_child(folder, name, ".json")
        if not data_path.exists() and not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            data = data_path.read_bytes()
        except (OSError, ValueError) as exc:
            log.error("state_unreadable", kind=folder.name, name=name, error=type(exc).__name__)
            return None
        if not isinstance(meta, dict) or meta.get("sha256") != hashlib.sha256(data).hexdigest():
            log.error("state_corrupt_ignored", kind=folder.name, name=name)
            return None
        return Stored(data, meta)
