"""Frozen, validated configuration. Built only by ``validate.py``; read by the core and shells."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Literal

from icalproxy.records import field, record

# ---------------------------------------------------------------- routing conditions


@record(frozen=True)
class Subcalendar:
    """Matches when any CATEGORIES value equals one name or fits one glob (``Client: *``)."""

    exact: frozenset[str]
    globs: tuple[re.Pattern[str], ...] = ()


@record(frozen=True)
class FieldMatch:
    """A custom field (``X-TEAMUP-<NAME>`` or a ``Name: value`` line in DESCRIPTION)."""

    name: str
    equals: str | None = None
    one_of: frozenset[str] | None = None
    regex: re.Pattern[str] | None = None
    present: bool | None = None


@record(frozen=True)
class Who:
    """Matches when one of the people in ``X-TEAMUP-WHO`` (or a ``Who:`` line in DESCRIPTION),
    split at commas, semicolons, ``&`` and ``/``, equals a name or fits a glob (any case)."""

    exact: frozenset[str]  # casefolded
    globs: tuple[re.Pattern[str], ...] = ()


@record(frozen=True)
class SummaryMatch:
    regex: re.Pattern[str]


@record(frozen=True)
class SourceMatch:
    names: frozenset[str]


@record(frozen=True)
class Window:
    """Events that overlap [now - past, now + future]; a missing side is unbounded."""

    past: timedelta | None
    future: timedelta | None


@record(frozen=True)
class AllOf:
    items: tuple[Condition, ...]


@record(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


@record(frozen=True)
class Not:
    item: Condition


Condition = Subcalendar | Who | FieldMatch | SummaryMatch | SourceMatch | Window | AllOf | AnyOf | Not

# ---------------------------------------------------------------- redaction profiles

CategoriesMode = Literal["drop", "all", "client-facing"]
PrivateMode = Literal["busy", "drop", "show"]


@record(frozen=True)
class Scrub:
    links: bool = True
    emails: bool = True
    phones: bool = False


@record(frozen=True)
class Profile:
    """What a feed's subscribers see of an event. Everything not named here is dropped."""

    name: str
    summary: str = "{summary}[ — {status}]"
    description: str | None = "[{status}][\n{status_description}]"
    location: str | None = None
    keep: frozenset[str] = frozenset()
    categories: CategoriesMode = "drop"
    client_facing: tuple[re.Pattern[str], ...] = ()
    scrub: Scrub = field(default_factory=Scrub)
    drop_description_lines: tuple[re.Pattern[str], ...] = ()
    show_status: bool = True
    private_events: PrivateMode = "busy"
    busy_summary: str = "Reserved"
    # Named custom fields shown as "Name: value" lines by the {details} placeholder, in order.
    details: tuple[str, ...] = ()


# ---------------------------------------------------------------- status catalogue


@record(frozen=True)
class StatusEntry:
    value: str
    label: str
    description: str = ""
    show: bool = True
    calendar_status: str | None = None  # STATUS the event gets: CANCELLED, TENTATIVE, CONFIRMED
    keep: bool = False  # carry-over: this internal stage changes nothing the client sees


@record(frozen=True)
class StatusOverrides:
    """Custom fields that override, for one job, what the catalogue shows."""

    name: str | None = None  # client-facing job name (default: the scrubbed SUMMARY)
    description: str | None = None  # status description for this job only
    visible: str | None = None  # no/false/hide/off/0 hides this job's status


NO_OVERRIDES = StatusOverrides()


@record(frozen=True)
class StatusCatalogue:
    entries: Mapping[str, StatusEntry] = field(default_factory=dict)  # keys: casefolded values
    field: str = "Status"  # the custom field that holds the status (after `entries`: it shadows)
    # An internal value not listed: hidden, shown as it is, or (keep) what the client saw before.
    unlisted: Literal["hide", "show", "keep"] = "keep"
    defined: bool = False  # False: no catalogue in the rules, values shown as they are
    default: Literal["hidden", "shown"] = "hidden"  # a job that never had a shown status
    overrides: StatusOverrides = NO_OVERRIDES
    keep_history: timedelta = timedelta(days=90)  # a job gone from its source keeps its row so long


@record(frozen=True)
class CustomFields:
    """Where custom fields live: ``<prefix><NAME>`` properties and ``Name: value`` lines."""

    prefix: str = "X-TEAMUP-"
    description_lines: bool = True


# ---------------------------------------------------------------- conflicts and alerts

AllDayMode = Literal["ignore", "count"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@record(frozen=True)
class ConflictRules:
    """What counts as a conflict in one (technician) feed: busy occurrences that overlap, that
    leave less than ``travel_gap`` between different LOCATIONs, or that lie outside the shift."""

    past: timedelta = timedelta(days=1)
    future: timedelta = timedelta(days=60)
    all_day: AllDayMode = "ignore"
    travel_gap: timedelta | None = None
    # Working hours per weekday (Monday first) as (start, end) minutes after midnight; None for
    # a day off. ``shift`` None: no outside_shift check at all.
    shift: tuple[tuple[int, int] | None, ...] | None = None
    timezone: str | None = None  # local time of shifts, all-day and floating times


@record(frozen=True)
class Webhook:
    url: str  # may carry a secret (Slack's hooks do): never logged
    format: Literal["json", "slack"] = "json"
    timeout: float = 10.0
    first_retry: timedelta = timedelta(seconds=5)
    max_retry: timedelta = timedelta(minutes=10)


@record(frozen=True)
class Alerts:
    webhook: Webhook | None = None


# ---------------------------------------------------------------- feeds, sources, server


@record(frozen=True)
class CalDAVTarget:
    """One CalDAV calendar collection a feed is mirrored into (``push: [{caldav: …}]``).

    Secrets are left out of ``repr`` so a target can never print them by accident."""

    url: str  # the collection, ending in "/", without credentials
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    line: str = ""  # "file:line" of its definition

    @property
    def display(self) -> str:
        """Host and path, never credentials (validation keeps them out of ``url``): what logs,
        errors and /readyz may show."""
        return self.url


@record(frozen=True)
class Feed:
    name: str
    title: str
    sources: tuple[str, ...]
    where: Condition | None
    profile: str
    line: str = ""  # "file:line" of its definition, for reports
    # The client page at /c/<token> (icalproxy/page): language, time zone, finished-jobs window.
    locale: Literal["en", "de", "fr"] = "en"
    timezone: str | None = None  # IANA name; None: the feed's first VTIMEZONE, else UTC
    page_past_days: int = 14
    push: tuple[CalDAVTarget, ...] = ()
    # A cancelled job stays (STATUS:CANCELLED) until this long after its end; None: always.
    keep_cancelled: timedelta | None = timedelta(days=7)
    conflicts: ConflictRules | None = None  # None: this feed is not checked for conflicts


@record(frozen=True)
class Publish:
    refresh_interval: timedelta = timedelta(minutes=15)


@record(frozen=True)
class ShrinkGuard:
    max_loss: float = 0.5
    confirm_pulls: int = 3


@record(frozen=True)
class Source:
    name: str
    url: str  # http(s) URL, or an absolute file path
    every: timedelta = timedelta(minutes=15)
    timeout: float = 30.0
    connect_timeout: float = 10.0
    max_bytes: int = 20 * 1024 * 1024
    retries: int = 2
    headers: Mapping[str, str] = field(default_factory=dict)
    shrink_guard: ShrinkGuard = field(default_factory=ShrinkGuard)
    where: str = ""  # "file:line" of its url in the config, for messages
    written: str = ""  # a file source's path as written in the config (``url`` is resolved)

    @property
    def is_file(self) -> bool:
        return not self.url.startswith(("http://", "https://"))


@record(frozen=True)
class Server:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    gzip: bool = False
    max_age: int = 300
    # /readyz and /metrics name every feed: they are served on the ops listener, and on the
    # public one only to a request bearing ``ops_token`` (empty: never).
    ops_host: str = "127.0.0.1"
    ops_port: int = 9090
    ops_token: str = ""


@record(frozen=True)
class Rules:
    """Everything the pure pipeline needs."""

    feeds: Mapping[str, Feed]
    profiles: Mapping[str, Profile]
    statuses: StatusCatalogue = field(default_factory=StatusCatalogue)
    custom_fields: CustomFields = field(default_factory=CustomFields)
    publish: Publish = field(default_factory=Publish)
    warnings: tuple[str, ...] = ()  # ``file:line: message``: valid, but worth a look


@record(frozen=True)
class Config:
    path: Path
    sources: Mapping[str, Source]
    rules: Rules
    state_dir: Path
    server: Server = field(default_factory=Server)
    store: str = "sqlite"  # or a postgresql:// URL (see icalproxy/daemon/store)
    watched_files: tuple[Path, ...] = ()
    rules_dir: Path | None = None
    alerts: Alerts = field(default_factory=Alerts)
