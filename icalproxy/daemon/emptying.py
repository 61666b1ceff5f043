"""The emptying guard: a render that would take a served feed from N > 0 events to none is
held like a source's shrink. The last version stays served, flagged in /readyz, until ops
confirm with ``icalproxy accept-shrink --config F FEED`` (or the rules match again).

A typo in a rule, a renamed sub-calendar or an upstream that lost one client's events all
look the same from here: a client's calendar about to be wiped. That is never done silently.

Acceptances are marker files ``state_dir/accept-empty/<feed>``, taken at the feed's next
render; the daemon's config watcher notices a new one within seconds and re-renders.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Protocol

import structlog

from icalproxy.core.pipeline import FeedOutput
from icalproxy.core.report import RunReport
from icalproxy.storage import atomic_write, safe_child

log = structlog.get_logger("icalproxy.emptying")
FOLDER = "accept-empty"


class Served(Protocol):
    @property
    def body(self) -> bytes: ...
    @property
    def etag(self) -> str: ...
    @property
    def events(self) -> int: ...


def accept_empty(state_dir: Path, feed: str) -> Path:
    """Ops' confirmation that ``feed`` may become empty (the CLI's side)."""
    marker = safe_child(state_dir / FOLDER, feed, "")
    atomic_write(marker, b"accepted\n")
    return marker


class EmptyingGuard:
    def __init__(self, state_dir: Path) -> None:
        self.folder = state_dir / FOLDER
        self.held: dict[str, int] = {}  # feed → events of the version kept served

    def hold(
        self, outputs: MutableMapping[str, FeedOutput], report: RunReport, served: Mapping[str, Served]
    ) -> None:
        """Put the served version back in place of any output that would empty its feed."""
        for name, output in list(outputs.items()):
            previous = served.get(name)
            if output.events > 0 or previous is None or previous.events == 0:
                self.held.pop(name, None)
                continue
            if self._take(name):
                log.warning("feed_emptying_accepted", feed=name, before=previous.events)
                self.held.pop(name, None)
                continue
            if name not in self.held:
                log.warning("feed_emptying_held", feed=name, before=previous.events)
            self.held[name] = previous.events
            outputs[name] = FeedOutput(name, previous.body, previous.etag, previous.events)
            feed_report = report.feeds.get(name)
            if feed_report is not None:
                feed_report.notes.append(
                    f"held: this render would empty the feed ({previous.events} → 0 events); the last "
                    "version stays served until the rules match again or ops run "
                    f"`icalproxy accept-shrink --config … {name}`"
                )

    def pending(self) -> list[str]:
        """Held feeds that ops have accepted since: they need a render to take it."""
        return [name for name in self.held if safe_child(self.folder, name, "").exists()]

    def _take(self, name: str) -> bool:
        try:
            safe_child(self.folder, name, "").unlink()
        except FileNotFoundError:
            return False
        return True
