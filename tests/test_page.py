"""The client page: built from the rendered feed only, served at /c/<token> with the feed's token
rules, its headers, ETag/304 and HEAD; the offline preview and ``token new``."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import icalendar
import pytest

from icalproxy.page import content_security_policy, links, render_page, work_in_progress
from icalproxy.page.texts import TEXTS
from tests.harness import http
from tests.page_support import PageSite, start_site, token_id
from tests.support import NOW, ROOT, build, calendar, unfolded

RULES = """
sources: {jobs: {url: /nowhere.ics}}
feeds:
  acme: {title: Acme, where: {subcalendar: 'Client: Acme'}}
  other: {title: Other, where: {subcalendar: 'Client: Other'}}
statuses:
  field: Status
  values:
    Scheduled: {label: Booked, description: We will come on the day.}
    In progress: {label: Working on it}
"""


def _event(uid: str, summary: str, start: str, end: str, status: str, client: str = "Acme") -> str:
    return (
        f"UID:{uid}\nDTSTAMP:20261101T000000Z\nDTSTART:{start}\nDTEND:{end}\n"
        f"SUMMARY:{summary}\nCATEGORIES:Client: {client}\nX-TEAMUP-STATUS:{status}\n"
        "DESCRIPTION:Internal note SECRET cost 400 EUR"
    )


SOURCE = calendar(
    _event("past", "Old boiler", "20261105T090000Z", "20261105T100000Z", "Scheduled"),
    _event("ancient", "Forgotten job", "20261001T090000Z", "20261001T100000Z", "Scheduled"),
    _event("now", "Roof repair", "20261125T110000Z", "20261125T150000Z", "In progress"),
    _event("soon", "Heat pump", "20261201T080000Z", "20261201T120000Z", "Scheduled"),
    _event("theirs", "Other client's job", "20261202T080000Z", "20261202T090000Z", "Scheduled", "Other"),
)


@pytest.fixture(scope="module")
def acme_body() -> bytes:
    return build(RULES, jobs=SOURCE).feeds["acme"].body


def test_jobs_are_split_into_now_upcoming_and_recently_finished(acme_body: bytes) -> None:
    work = work_in_progress(acme_body, NOW, past_days=30, timezone="Europe/Berlin")
    assert [job.name for job in work.current] == ["Roof repair"]
    assert [job.name for job in work.upcoming] == ["Heat pump"]
    assert [job.name for job in work.finished] == ["Old boiler"]  # 2026-10-01 is older than 30 days
    soon = work.upcoming[0]
    assert (soon.status, soon.description) == ("Booked", "We will come on the day.")
    assert soon.start.isoformat() == "2026-12-01T09:00:00+01:00"  # the feed's zone, not UTC
    assert work.current[0].status == "Working on it"
    assert work_in_progress(acme_body, NOW, past_days=5).finished == ()


def test_since_hook_and_locale_texts(acme_body: bytes) -> None:
    since = {"soon": datetime(2026, 11, 20, 9, 0, tzinfo=UTC)}
    work = work_in_progress(acme_body, NOW, timezone="Europe/Paris", since=since)
    assert work.upcoming[0].since == since["soon"]
    url = "https://cal.test/feed/t.ics"
    pages = {
        locale: render_page(title="Acme", feed_url=url, work=work, locale=locale, now=NOW).decode()
        for locale in ("en", "de", "fr")
    }
    assert '<html lang="de">' in pages["de"] and "Laufende Arbeiten" in pages["de"]
    assert "Di., 1. Dez. 2026, 09:00 – 13:00" in pages["de"]
    assert "Travaux en cours" in pages["fr"] and "mar. 1 déc. 2026, 9 h 00 – 13 h 00" in pages["fr"]
    assert "Work in progress" in pages["en"] and "since Fri 20 Nov 2026" in pages["en"]
    assert "seit Fr., 20. Nov. 2026" in pages["de"]
    for locale, text in pages.items():
        assert "built-in method" not in text and "Undefined" not in text
        texts = TEXTS[locale]
        assert texts["copy_button"] in text and texts["refresh_google"] in text
        assert "SECRET" not in text and "Forgotten job" not in text
        assert '<meta name="robots" content="noindex' in text


def test_links_carry_the_feed_url() -> None:
    made = links("https://cal.test/feed/abc.ics", "Acme & Co")
    assert made.webcal == "webcal://cal.test/feed/abc.ics"
    assert made.google == "https://calendar.google.com/calendar/r?cid=webcal%3A%2F%2Fcal.test%2Ffeed%2Fabc.ics"
    assert made.outlook == (
        "https://outlook.live.com/calendar/0/addfromweb?url=https%3A%2F%2Fcal.test%2Ffeed%2Fabc.ics"
        "&name=Acme%20%26%20Co"
    )


def test_page_text_is_escaped_and_shows_only_the_feed() -> None:
    hostile = calendar(
        _event("x", "<script>alert(1)</script>", "20261201T080000Z", "20261201T090000Z", "Scheduled"),
        _event("y", "Other job", "20261201T080000Z", "20261201T090000Z", "Scheduled", "Other"),
    )
    body = build(RULES, jobs=hostile).feeds["acme"].body
    work = work_in_progress(body, NOW)
    page = render_page(title="A", feed_url="https://c.test/feed/t.ics", work=work, now=NOW)
    assert b"<script>alert" not in page and b"&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert b"Other job" not in page
    assert page.count(b"<script>") == 1  # only the copy script, allowed by its hash
    assert content_security_policy().startswith("default-src 'none'")


def test_config_rejects_a_bad_locale_timezone_and_window() -> None:
    from icalproxy.errors import ConfigError

    bad = (
        "sources: {jobs: {url: /x.ics}}\nfeeds:\n"
        "  a: {title: A, locale: it, timezone: Mars/Olympus, page_past_days: -1}\n"
    )
    with pytest.raises(ConfigError) as caught:
        from tests.support import rules_from

        rules_from(bad)
    text = "\n".join(caught.value.problems)
    assert "locale must be one of en, de, fr" in text
    assert "unknown time zone 'Mars/Olympus'" in text
    assert "page_past_days must be a number from 0 to 3650" in text


# ---------------------------------------------------------------- served by the daemon


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageSite]:
    running = start_site(tmp_path_factory.mktemp("page"))
    yield running
    running.daemon.stop()


def _names_in(feed_body: bytes) -> set[str]:
    calendar_ = icalendar.Calendar.from_ical(feed_body)
    return {str(event.get("SUMMARY", "")) for event in calendar_.walk("VEVENT")}


def _job_names(page: bytes) -> list[str]:
    return [html.unescape(name) for name in re.findall(r'<p class="job-name">(.*?)</p>', page.decode())]


def test_page_of_a_client_never_shows_another_clients_jobs(site: PageSite) -> None:
    pages, feeds = {}, {}
    for feed in ("alpha", "beta"):
        status, _, pages[feed] = http(site.page(feed))
        assert status == 200
        feeds[feed] = http(site.feed(feed))[2]
    alpha_jobs, beta_jobs = _job_names(pages["alpha"]), _job_names(pages["beta"])
    assert alpha_jobs and beta_jobs
    alpha_summaries = _names_in(feeds["alpha"])
    # every job shown is one of the feed's own events (its name is the start of a SUMMARY)
    for name in alpha_jobs:
        assert any(summary.startswith(name) for summary in alpha_summaries), name
    only_beta = {name for name in beta_jobs if not any(s.startswith(name) for s in alpha_summaries)}
    assert only_beta, "the two clients should have jobs of their own"
    alpha_text = html.unescape(pages["alpha"].decode())
    for name in only_beta:
        assert f'<p class="job-name">{name}</p>' not in alpha_text


def test_no_secret_on_any_page(site: PageSite) -> None:
    assert site.manifest["marker"] == "SECRET"
    for feed in site.tokens:
        status, _, body = http(site.page(feed))
        assert status == 200
        text = html.unescape(body.decode())
        assert "SECRET" not in text and site.manifest["link_key"] not in text, feed
        assert "SECRET" not in unfolded(http(site.feed(feed))[2])


def test_page_headers_etag_304_and_head(site: PageSite) -> None:
    import urllib.request

    status, headers, body = http(site.page("beta"))
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"].startswith("private")
    assert headers["Referrer-Policy"] == "no-referrer" and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Robots-Tag"].startswith("noindex")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "http" not in csp
    assert b'<html lang="de">' in body and b"Diesen Kalender abonnieren" in body
    assert site.tokens["beta"].encode() in body  # the page offers the feed's own link
    etag = headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert http(site.page("beta"))[1]["ETag"] == etag  # one render per feed version
    status, again, rest = http(site.page("beta"), {"If-None-Match": etag})
    assert (status, rest, again["ETag"]) == (304, b"", etag)
    assert http(site.page("beta"), {"If-None-Match": '"other"'})[0] == 200
    request = urllib.request.Request(site.page("beta"), method="HEAD")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200 and response.read() == b""
        assert response.headers["ETag"] == etag and int(response.headers["Content-Length"]) == len(body)
    assert http(site.page("alpha"))[1]["ETag"] != etag


def test_bad_and_revoked_tokens_on_the_page(site: PageSite) -> None:
    assert http(f"{site.daemon.base}/c/{'A' * 43}")[0] == 404
    assert http(f"{site.daemon.base}/c/short")[0] == 404
    status, _, body = http(site.page("gamma"))
    assert status == 200 and b"Travaux en cours" in body
    subprocess.run(
        [sys.executable, "-m", "icalproxy.cli", "token", "revoke", "--config", str(site.config),
         token_id(site.config, "gamma")],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    status, _, body = http(site.page("gamma"))
    assert status == 410 and b"Travaux" not in body
    assert http(site.feed("gamma"))[0] == 410
    assert http(site.page("alpha"))[0] == 200


def test_preview_html_writes_the_same_page_offline(site: PageSite, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "icalproxy.cli", "preview", "--config", str(site.config), "--feed", "alpha",
         "--format", "html"],
        cwd=ROOT, capture_output=True, check=True,
    )  # fmt: skip
    offline, served = result.stdout, http(site.page("alpha"))[2]
    assert offline.startswith(b"<!DOCTYPE html>") and b"YOUR-SECRET-TOKEN" in offline
    assert _job_names(offline) == _job_names(served)
    assert "SECRET" not in html.unescape(offline.decode()).replace("YOUR-SECRET-TOKEN", "")


def test_token_new_prints_the_page_url(site: PageSite) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "icalproxy.cli", "token", "new", "--config", str(site.config), "alpha"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = [line.strip() for line in result.stdout.splitlines()]
    token = lines[1].rsplit("/", 1)[1].removesuffix(".ics")
    assert lines[3] == f"client page: http://127.0.0.1:8080/c/{token}"
    assert http(f"{site.daemon.base}/c/{token}")[0] == 200


def test_not_rendered_feed_is_503(tmp_path: Path) -> None:
    from tests.harness import Daemon, create_token

    config = tmp_path / "config.yaml"
    config.write_text(
        "state_dir: state\nsources:\n"
        f"  teamup: {{url: '{tmp_path / 'missing.ics'}', every: 1h}}\n"
        "feeds:\n  a: {title: A}\n"
    )
    token = create_token(config, "a")
    daemon = Daemon(config, tmp_path).start(wait_ready=False)
    try:
        status, headers, _ = http(f"{daemon.base}/c/{token}")
        assert status == 503 and headers["Retry-After"] == "60"
    finally:
        daemon.stop()


async def test_page_is_rendered_once_per_feed_version(acme_body: bytes) -> None:
    import asyncio

    from icalproxy.config.model import Feed
    from icalproxy.daemon.pages import PageCache
    from icalproxy.daemon.service import FeedVersion

    feed = Feed(name="acme", title="Acme", sources=("jobs",), where=None, profile="client", locale="fr")
    first = FeedVersion(name="acme", body=acme_body, etag='"one"', last_modified=1, events=3)
    cache = PageCache()
    works = await asyncio.gather(*(cache.build_once(feed, first) for _ in range(8)))
    assert all(work is works[0] for work in works)  # concurrent requests share one build
    url = "https://c.test/feed/t.ics"
    pages = [cache.page(feed, first, works[0], url) for _ in range(5)]
    assert cache.renders == 1 and len({page.etag for page in pages}) == 1
    assert "Travaux en cours" in pages[0].body.decode()
    second = FeedVersion(name="acme", body=acme_body.replace(b"Heat pump", b"Heat pumps"), etag='"two"',
                         last_modified=2, events=3)  # fmt: skip
    assert cache.work(feed, second) is None
    page = cache.page(feed, second, await cache.build_once(feed, second), url)
    assert cache.renders == 2 and b"Heat pumps" in page.body and page.etag != pages[0].etag
