"""Last good state on disk: raw source bytes and rendered feeds, each with a checksummed meta file.

Layout under ``state_dir``::

    sources/<name>.state   last good raw bytes of a source, with validators and counts
    feeds/<name>.state     a rendered feed, with its ETag and Last-Modified
    tokens.json            token hashes (see tokens.py)
    accept-shrink/<name>   ops' acceptance of a source's shrink, taken at its next pull

A ``.state`` file is one JSON line of metadata (naming the data's SHA-256 and length), then
the data. It is written in one atomic step (temp file, fsync, rename, fsync of the folder),
so a crash leaves the old file or the new one, never a mix. Reading verifies the checksum;
a corrupt, partial or foreign file is logged and ignored, never served.
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
SUFFIX = ".state"


@dataclass(frozen=True, slots=True)
class Stored:
    data: bytes
    meta: dict[str, Any]


class StateStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sources = root / "sources"
        self.feeds = root / "feeds"

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
        record = {**meta, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        header = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
        atomic_write(safe_child(folder, name, SUFFIX), header + b"\n" + data)

    def _load(self, folder: Path, name: str) -> Stored | None:
        path = safe_child(folder, name, SUFFIX)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.error("state_unreadable", kind=folder.name, name=name, error=type(exc).__name__)
            return None
        stored = decode_state(raw)
        if stored is None:
            log.error("state_corrupt_ignored", kind=folder.name, name=name)
        return stored


def decode_state(raw: bytes) -> Stored | None:
    """A ``.state`` file's content, or None unless it is whole and its checksum matches."""
    header, newline, data = raw.partition(b"\n")
    if not newline:
        return None
    try:
        meta = json.loads(header)
    except ValueError:
        return None
    if (
        not isinstance(meta, dict)
        or meta.get("bytes") != len(data)
        or meta.get("sha256") != hashlib.sha256(data).hexdigest()
    ):
        return None
    return Stored(data, meta)
