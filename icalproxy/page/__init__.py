"""The client page at ``/c/<token>``: the feed's own jobs, as a short "work in progress" list.

Built from the rendered feed's bytes only (read back with icalendar and recurring-ical-events,
as :mod:`icalproxy.preview` does), so it can show nothing the client's feed does not show.
The client profile writes ``SUMMARY: name — status`` and ``DESCRIPTION: status`` then the
status description; when both agree the page shows name, status and description apart,
otherwise the summary and description as they stand.

Presentation only: no clock, no disk beyond the package's own templates. Callers pass ``now``.
"""

from __future__ import annotations

import base64
import hashlib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from urllib.parse import quote

import jinja2

from icalproxy.page.texts import TEXTS, format_date, format_time
from icalproxy.preview import occurrences

STATUS_SEPARATOR = " — "
FUTURE_DAYS = 400  # upcoming jobs listed this far ahead
MAX_JOBS = 500


@dataclass(frozen=True, slots=True)
class Job:
    uid: str
    name: str
    status: str
    description: str
    start: datetime  # aware, in the page's time zone
    end: datetime
    all_day: bool
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class WorkInProgress:
    current: tuple[Job, ...]
    upcoming: tuple[Job, ...]
    finished: tuple[Job, ...]
    zone: str


@dataclass(frozen=True, slots=True)
class PageLinks:
    """Every URL the page offers, derived from the feed's https URL."""

    https: str
    webcal: str
    google: str
    outlook: str


def links(feed_url: str, title: str) -> PageLinks:
    webcal = "webcal://" + feed_url.split("://", 1)[1]
    return PageLinks(
        https=feed_url,
        webcal=webcal,
        google="https://calendar.google.com/calendar/r?cid=" + quote(webcal, safe=""),
        outlook=(
            "https://outlook.live.com/calendar/0/addfromweb?url="
            + quote(feed_url, safe="")
            + "&name="
            + quote(title, safe="")
        ),
    )


def page_zone(body: bytes, configured: str | None) -> zoneinfo.ZoneInfo:
    """The configured zone, else the feed's first VTIMEZONE when it is a known IANA name, else UTC."""
    if configured:
        return zoneinfo.ZoneInfo(configured)
    marker = body.find(b"BEGIN:VTIMEZONE")
    if marker >= 0:
        start = body.find(b"\nTZID:", marker)
        if start >= 0:
            end = body.find(b"\n", start + 1)
            name = body[start + 6 : end].strip().decode("utf-8", "replace")
            try:
                return zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                pass
    return zoneinfo.ZoneInfo("UTC")


def _aware(moment: date | datetime, zone: zoneinfo.ZoneInfo) -> tuple[datetime, bool]:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:  # floating: read as the page's own zone
            return moment.replace(tzinfo=zone), False
        return moment.astimezone(zone), False
    return datetime(moment.year, moment.month, moment.day, tzinfo=zone), True


def _split(summary: str, description: str) -> tuple[str, str, str]:
    """(name, status, description) from the client profile's SUMMARY and DESCRIPTION."""
    first, _, rest = description.partition("\n")
    if first and summary.endswith(STATUS_SEPARATOR + first):
        return summary[: -len(STATUS_SEPARATOR + first)], first, rest.strip()
    return summary, "", description.strip()


def work_in_progress(
    body: bytes,
    now: datetime,
    *,
    past_days: int = 14,
    timezone: str | None = None,
    since: Mapping[str, datetime] | None = None,
) -> WorkInProgress:
    """Current, upcoming and recently finished jobs of a rendered feed. ``now`` is UTC
    (naive or aware); ``since`` maps a UID to when its shown status first appeared."""
    zone = page_zone(body, timezone)
    now_utc = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    window_start = (now_utc - timedelta(days=past_days)).replace(tzinfo=None)
    days = past_days + FUTURE_DAYS
    current: list[Job] = []
    upcoming: list[Job] = []
    finished: list[Job] = []
    seen: set[tuple[str, str, str, str]] = set()  # a series lists its next occurrence, not all
    for item in occurrences(body, window_start, days, MAX_JOBS, eager=True):
        start, all_day = _aware(item.start, zone)
        if item.end is None:
            end = start + (timedelta(days=1) if all_day else timedelta(0))
        else:
            end = _aware(item.end, zone)[0]
        name, status, description = _split(item.summary, item.description)
        job = Job(
            uid=item.uid,
            name=name,
            status=status,
            description=description,
            start=start,
            end=end,
            all_day=all_day,
            since=(since or {}).get(item.uid),
        )
        if end <= now_utc:
            finished.append(job)
        elif start <= now_utc:
            current.append(job)
        elif (job.uid, name, status, description) not in seen:
            seen.add((job.uid, name, status, description))
            upcoming.append(job)
    finished.reverse()  # the most recent first
    return WorkInProgress(tuple(current), tuple(upcoming), tuple(finished), str(zone.key))


# ---------------------------------------------------------------- HTML


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("icalproxy", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment


@cache
def asset(name: str) -> str:
    return resources.files("icalproxy").joinpath("templates", name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@cache
def content_security_policy() -> str:
    """Nothing from anywhere but the inline style and script whose hashes are listed."""
    return (
        "default-src 'none'; "
        f"style-src {_csp_hash(asset('page.css'))}; "
        f"script-src {_csp_hash(asset('copy.js'))}; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _when(job: Job, locale: str) -> str:
    day = format_date(job.start.date(), locale)
    if job.all_day:
        last = (job.end - timedelta(days=1)).date() if job.end > job.start else job.start.date()
        return day if last == job.start.date() else f"{day} – {format_date(last, locale)}"
    start = f"{day}, {format_time(job.start, locale)}"
    if job.end.date() == job.start.date():
        return f"{start} – {format_time(job.end, locale)}" if job.end > job.start else start
    return f"{start} – {format_date(job.end.date(), locale)}, {format_time(job.end, locale)}"


def render_page(
    *,
    title: str,
    feed_url: str,
    work: WorkInProgress,
    locale: str = "en",
    now: datetime,
) -> bytes:
    """The page's HTML. The inline CSS and JS match :func:`content_security_policy`."""
    texts = TEXTS[locale]
    zone = zoneinfo.ZoneInfo(work.zone)

    def view(job: Job) -> dict[str, str]:
        since = ""
        if job.since is not None:
            moment = job.since.astimezone(zone)
            since = texts["since"].format(when=f"{format_date(moment.date(), locale)}")
        return {
            "name": job.name,
            "status": job.status,
            "description": job.description,
            "when": _when(job, locale),
            "start": job.start.isoformat(),
            "since": since,
        }

    sections = [
        ("current", texts["current"], [view(job) for job in work.current]),
        ("upcoming", texts["upcoming"], [view(job) for job in work.upcoming]),
        ("finished", texts["finished"], [view(job) for job in work.finished]),
    ]
    moment = (now.replace(tzinfo=UTC) if now.tzinfo is None else now).astimezone(zone)
    html = _environment().get_template("page.html").render(
        lang=locale,
        t=texts,
        title=title,
        links=links(feed_url, title),
        sections=sections,
        empty=not (work.current or work.upcoming or work.finished),
        zone=work.zone,
        updated=f"{format_date(moment.date(), locale)}, {format_time(moment, locale)}",
        css=asset("page.css"),
        script=asset("copy.js"),
    )
    return html.encode("utf-8")


__all__ = [
    "Job",
    "PageLinks",
    "WorkInProgress",
    "content_security_policy",
    "links",
    "page_zone",
    "render_page",
    "work_in_progress",
]
