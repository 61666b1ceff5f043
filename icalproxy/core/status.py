"""The status catalogue, as a client portal shows job status.

An internal stage maps to a client-facing status (label and description), to nothing
(``show: false``), or to "no change" (``keep: true``, or an unlisted stage with
``unlisted: keep``): the client keeps seeing what they saw before, so a status never
flickers back to blank. A job that never had a shown status shows none by default
(``default: hidden``). Per job, custom fields may hide the status or give it a description
of its own.
"""

from __future__ import annotations

from typing import NamedTuple

from icalproxy.config.model import StatusCatalogue

MAPPED, CARRIED, HIDDEN, OVERRIDDEN, DEFAULT, AS_IS = (
    "mapped",
    "carried over",
    "hidden",
    "overridden",
    "hidden by default",
    "shown as it is",
)
_HIDE_WORDS = frozenset({"no", "false", "hide", "hidden", "off", "0", "nein", "non"})


class ShownStatus(NamedTuple):
    label: str
    description: str


class StatusDecision(NamedTuple):
    shown: ShownStatus | None
    reason: str


class StatusRecord(NamedTuple):
    """What a job's client saw, since when (UTC DATE-TIME text) and why: the status history."""

    shown: ShownStatus | None
    since: str
    reason: str


StatusKey = tuple[str, str, str]  # (source, UID, RECURRENCE-ID or "")


def client_status(value: str | None, catalogue: StatusCatalogue) -> ShownStatus | None:
    """The status for ``value`` with no history (a first render)."""
    return decide(value, catalogue, None).shown


def decide(
    value: str | None,
    catalogue: StatusCatalogue,
    previous: ShownStatus | None,
    *,
    visible: str | None = None,
    description: str | None = None,
) -> StatusDecision:
    """What the client sees of a job's status now, given what they saw before
    (``previous``) and the job's own override fields."""
    decision = _from_catalogue(value, catalogue, previous)
    if visible is not None and visible.strip().casefold() in _HIDE_WORDS:
        return StatusDecision(None, OVERRIDDEN)
    if description and decision.shown is not None:
        return StatusDecision(decision.shown._replace(description=description), OVERRIDDEN)
    return decision


def _from_catalogue(
    value: str | None, catalogue: StatusCatalogue, previous: ShownStatus | None
) -> StatusDecision:
    if not catalogue.defined:
        return StatusDecision(ShownStatus(value, ""), AS_IS) if value else StatusDecision(None, HIDDEN)
    entry = catalogue.entries.get(value.casefold()) if value else None
    if entry is not None and not entry.keep:
        if not entry.show:
            return StatusDecision(None, HIDDEN)
        return StatusDecision(ShownStatus(entry.label, entry.description), MAPPED)
    if entry is None and value and catalogue.unlisted == "hide":
        return StatusDecision(None, HIDDEN)
    if entry is None and value and catalogue.unlisted == "show":
        return StatusDecision(ShownStatus(value, ""), AS_IS)
    # keep: this stage changes nothing the client sees
    if previous is not None:
        return StatusDecision(previous, CARRIED)
    if catalogue.default == "shown" and value:
        return StatusDecision(ShownStatus(value, ""), AS_IS)
    return StatusDecision(None, DEFAULT)
