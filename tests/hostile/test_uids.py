"""Class 8: a UID derived for an event without one is an HMAC under the installation's key,
not a plain hash a subscriber could recompute from a guessed title; the key lives in
state_dir (mode 600) and is the same after a restart."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

from icalproxy.core.pipeline import build_feeds
from icalproxy.installation import installation_key
from tests.hostile.markers import RULES, calendar
from tests.support import NOW

NO_UID = calendar("BEGIN:VEVENT\r\nDTSTART:20261201T090000Z\r\nSUMMARY:SECRET guessable\r\nEND:VEVENT")


def _uid(key: bytes) -> str:
    body = build_feeds({"s": NO_UID.encode()}, RULES, NOW, uid_key=key).feeds["busy"].body.decode()
    return next(line[4:] for line in body.split("\r\n") if line.startswith("UID:"))


def test_derived_uid_needs_the_key() -> None:
    plain = hashlib.sha256(b"DTSTART:20261201T090000Z\nSUMMARY:SECRET guessable\n").hexdigest()[:32]
    assert _uid(b"a" * 64) != f"icalproxy-{plain}"
    assert _uid(b"a" * 64) == _uid(b"a" * 64)
    assert _uid(b"a" * 64) != _uid(b"b" * 64)


def test_installation_key_is_private_and_stable(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = installation_key(state)
    assert len(first) == 64
    assert stat.S_IMODE((state / "installation.key").stat().st_mode) == 0o600
    assert installation_key(state) == first
    (state / "installation.key").write_bytes(b"torn")
    replaced = installation_key(state)
    assert replaced != first and len(replaced) == 64 and installation_key(state) == replaced
