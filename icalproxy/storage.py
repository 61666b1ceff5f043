"""Atomic files: write to a temp file in the same folder, fsync, rename, fsync the folder.

A crash at any moment leaves either the old file or the new one, never a mix. Readers
verify a checksum written beside the data (see ``state.py``), so a torn or foreign file is
detected and ignored rather than served.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int = 0o640, *, durable: bool = True) -> None:
    """``durable=False`` skips the fsyncs: still all-or-nothing for readers, but a power cut
    may lose the write (fine for `render --out`, which is rerun; never for state)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    if durable:
        fsync_dir(path.parent)


def _create_temp(path: Path) -> tuple[int, str]:
    """A new temp file beside ``path`` (``.<name>.<random>.tmp``, what remove_stale_temps
    clears), created exclusively with mode 600 as tempfile.mkstemp does, without importing
    tempfile (start-up time)."""
    for _ in range(100):
        name = os.path.join(path.parent, f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            return os.open(name, flags, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp name beside {path}")


def fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_stale_temps(folder: Path) -> int:
    """Temp files left by a crash mid-write; returns how many were removed."""
    removed = 0
    if folder.is_dir():
        for leftover in folder.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()
                removed += 1
    return removed


def safe_child(folder: Path, name: str, suffix: str) -> Path:
    """``folder/name+suffix``, refusing any name that would leave the folder."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        raise ValueError(f"unsafe file name {name!r}")
    child = (folder / f"{name}{suffix}").resolve()
    if child.parent != folder.resolve():
        raise ValueError(f"unsafe file name {name!r}")
    return child
