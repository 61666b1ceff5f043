"""The status catalogue: an internal status value → what the client may see of it."""

from __future__ import annotations

from typing import NamedTuple

from icalproxy.config.model import StatusCatalogue


class ShownStatus(NamedTuple):
    label: str
    description: str


def client_status(value: str | None, catalogue: StatusCatalogue) -> ShownStatus | None:
    """None when there is no value or the catalogue hides it."""
    if not value:
        return None
    if not catalogue.defined:
        return ShownStatus(value, "")
    entry = catalogue.entries.get(value.casefold())
    if entry is None:
        return ShownStatus(value, "") if catalogue.unlisted == "show" else None
    if not entry.show:
        return None
    return ShownStatus(entry.label, entry.description)
