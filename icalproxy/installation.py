"""The installation's secret key: 256 random bits in ``state_dir/installation.key`` (mode 600).

It keys the UIDs derived for source events that have none (HMAC), so a subscriber cannot
confirm a guessed internal title by hashing it, and it stays the same across restarts so
those UIDs do too. Created once, atomically; never logged.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from icalproxy.errors import StateError
from icalproxy.storage import fsync_dir

KEY_FILE = "installation.key"
KEY_BYTES = 32


def installation_key(state_dir: Path) -> bytes:
    """The key, created on first use. Processes starting at once agree: the key file is
    written whole under a temporary name and linked into place only if none exists yet."""
    path = state_dir / KEY_FILE
    key = _read(path)
    if key is not None:
        return key
    import secrets  # noqa: PLC0415  (imported when first needed: start-up)

    state_dir.mkdir(parents=True, exist_ok=True)
    temp = state_dir / f".{KEY_FILE}.{secrets.token_hex(8)}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_hex(KEY_BYTES).encode() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
        key = _read(path)
        if key is None:  # a torn or foreign file from before: replace it, never run keyless
            os.replace(temp, path)
            key = _read(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    fsync_dir(state_dir)
    if key is None:
        raise StateError(f"cannot create {KEY_FILE} in the state folder")
    return key


def _read(path: Path) -> bytes | None:
    try:
        data = path.read_bytes().strip()
    except FileNotFoundError:
        return None
    return data if len(data) == 2 * KEY_BYTES and all(c in b"0123456789abcdef" for c in data) else None
