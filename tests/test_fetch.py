"""The fetcher against a real upstream on 127.0.0.1: retries with growing, jittered delays for
transient failures only; conditional GET; iCalendar only."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from icalproxy.config.model import Source
from icalproxy.errors import FetchError, NotCalendarError
from icalproxy.fetch import SourceFetcher, Validators, check_calendar
from icalproxy.logs import mask_url
from tests.harness import Upstream
from tests.support import FIXTURES

JOBS = (FIXTURES / "teamup-jobs.ics").read_bytes()


def fetch(
    upstream: Upstream, validators: Validators | None = None, **options: object
) -> tuple[object, list[float]]:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 2:
            upstream.state.mode = "ok"  # the upstream heals while we back off

    async def run() -> object:
        async with aiohttp.ClientSession() as session:
            source = Source(name="jobs", url=upstream.url, timeout=2, **options)  # type: ignore[arg-type]
            return await SourceFetcher(session, sleep=sleep).fetch(source, validators or Validators())

    return asyncio.run(run()), delays


def test_transient_failures_are_retried_with_growing_jittered_delays(upstream: Upstream) -> None:
    upstream.state.set_body(JOBS)
    upstream.state.mode = "503"
    fetched, delays = fetch(upstream, retries=3)
    assert fetched.body == JOBS  # type: ignore[attr-defined]
    assert len(delays) == 2
    assert 0.5 <= delays[0] <= 1.5 and 1.0 <= delays[1] <= 3.0


def test_not_calendar_is_not_retried(upstream: Upstream) -> None:
    upstream.state.mode = "html"
    with pytest.raises(NotCalendarError, match="HTML"):
        fetch(upstream, retries=3)
    upstream.state.mode = "ok"


def test_retries_give_up(upstream: Upstream) -> None:
    upstream.state.mode = "500"
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            await SourceFetcher(session, sleep=sleep).fetch(
                Source(name="jobs", url=upstream.url, retries=2), Validators()
            )

    with pytest.raises(FetchError, match="HTTP 500"):
        asyncio.run(run())
    assert len(delays) == 2
    upstream.state.mode = "ok"


def test_conditional_get_returns_not_modified(upstream: Upstream) -> None:
    upstream.state.mode = "ok"
    upstream.state.set_body(JOBS)
    first, _ = fetch(upstream)
    again, _ = fetch(upstream, first.validators)  # type: ignore[attr-defined]
    assert again.not_modified  # type: ignore[attr-defined]


def test_file_source_unchanged_is_not_modified(tmp_path: Path) -> None:
    from icalproxy.fetch import read_file_source

    path = tmp_path / "feed.ics"
    path.write_bytes(JOBS)
    source = Source(name="f", url=str(path))
    first = read_file_source(source, Validators())
    assert first.body == JOBS and read_file_source(source, first.validators).not_modified


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b"  \r\n", "empty body"),
        (b"<html><body>login</body></html>", "HTML"),
        (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n", "truncated"),
        (b"BEGIN:VCALENDAR\r\nSUMMARY:\xff\r\nEND:VCALENDAR\r\n", "invalid UTF-8"),
        (b"hello", "does not start with BEGIN:VCALENDAR"),
    ],
)
def test_only_complete_icalendar_is_accepted(body: bytes, reason: str) -> None:
    with pytest.raises(NotCalendarError, match=reason):
        check_calendar("s", body)


def test_utf16_and_bom_calendars_are_accepted() -> None:
    check_calendar("s", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".encode("utf-16"))
    check_calendar("s", b"\xef\xbb\xbfBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")


def test_masked_urls_keep_no_secret() -> None:
    assert mask_url("https://ics.teamup.com/feed/ksdb4SECRET/0.ics?x=1") == "https://ics.teamup.com/…"
    assert mask_url("/srv/feeds/jobs.ics") == "file"


def test_a_fold_inside_a_multibyte_character_is_accepted() -> None:
    raw = b"BEGIN:VCALENDAR\r\nSUMMARY:B\xc3\xa4ckerei\r\nEND:VCALENDAR\r\n"
    split = raw.index(b"\xa4")  # between the two bytes of "ä"
    check_calendar("s", raw[:split] + b"\r\n " + raw[split:])
