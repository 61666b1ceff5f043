"""The render history the pure pipeline reads and returns: each event's visible-content
stamps (stamps.py) and each job's client-facing status since when (status.py), kept in the
state store's ``render_state`` table as JSON and written in the same transaction that
installs the new feed versions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from icalproxy.core.stamps import Stamp, StampKey
from icalproxy.core.status import ShownStatus, StatusKey, StatusRecord

STAMPS, STATUSES = "stamp", "status"
Row = tuple[str, str, str]  # (kind, key, value), JSON texts


def encode(stamps: Mapping[StampKey, Stamp], statuses: Mapping[StatusKey, StatusRecord]) -> list[Row]:
    rows = [(STAMPS, json.dumps(list(key)), json.dumps(list(value))) for key, value in stamps.items()]
    for key, record in statuses.items():
        shown = list(record.shown) if record.shown is not None else None
        rows.append((STATUSES, json.dumps(list(key)), json.dumps([shown, record.since, record.reason])))
    return rows


def decode(rows: Iterable[Row]) -> tuple[dict[StampKey, Stamp], dict[StatusKey, StatusRecord]]:
    stamps: dict[StampKey, Stamp] = {}
    statuses: dict[StatusKey, StatusRecord] = {}
    for kind, key_text, value_text in rows:
        try:
            key: Any = tuple(json.loads(key_text))
            value: Any = json.loads(value_text)
            if kind == STAMPS:
                stamps[key] = Stamp(str(value[0]), str(value[1]), int(value[2]))
            elif kind == STATUSES:
                shown = ShownStatus(*value[0]) if value[0] is not None else None
                statuses[key] = StatusRecord(shown, str(value[1]), str(value[2]))
        except (ValueError, TypeError, IndexError):
            continue  # a row this version cannot read is skipped, never fatal
    return stamps, statuses
