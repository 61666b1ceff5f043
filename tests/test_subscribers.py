"""Who is subscribed: per token the last use and the calendar app seen, written in batches;
``token list`` and ``feeds`` read them from the store; the access log names token ids only."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from icalproxy.daemon.store import Store, open_sql_store
from icalproxy.daemon.tokens import TokenIndex, agent_family
from tests.harness import Daemon, Upstream, create_token, http, run_cli
from tests.support import FIXTURES

AGENTS = {
    "Google-Calendar-Importer": "Google",
    "Mozilla/5.0 (compatible; Google-Calendar-Importer)": "Google",
    "Microsoft Outlook 16.0.17328; Pro": "Outlook",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.5417; Pro)": "Outlook",
    "iOS/17.1 (21B80) dataaccessd/1.0": "Apple",
    "macOS/14.1 (23B74) CalendarAgent/988": "Apple",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:115.0) Gecko/20100101 Thunderbird/115.4": "Thunderbird",
    "Mozilla/5.0 (Linux) mirall/3.10.0 (Nextcloud, ubuntu-6.2.0 ClientArchitecture: x86_64)": "Nextcloud",
    "Nextcloud Server Crawler": "Nextcloud",
    "curl/8.4.0": "other",
    "": "other",
}


@pytest.mark.parametrize("agent", AGENTS)
def test_calendar_app_from_user_agent(agent: str) -> None:
    assert agent_family(agent) == AGENTS[agent]


def test_uses_are_batched_not_written_per_request(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int, dict]:
        sql = open_sql_store("sqlite", tmp_path)
        record, token = sql.create_token("acme", "Alice")
        index = TokenIndex(Store(sql))
        writes = 0
        record_token_use = sql.record_token_use

        def counted(uses: object) -> None:
            nonlocal writes
            writes += 1
            record_token_use(uses)  # type: ignore[arg-type]

        sql.record_token_use = counted  # type: ignore[method-assign]
        for second in range(100):
            verdict, found = await index.lookup(token)
            assert verdict == "valid" and found is not None
            index.seen(found, "Google-Calendar-Importer", 1000.0 + second)
        before = writes
        written = await index.flush_uses()
        uses = sql.token_uses()
        index.store.close()
        return (
            before,
            written,
            {key: (use.last_used, use.agent) for key, use in uses.items()} | {"id": record.id},
        )

    before, written, uses = asyncio.run(scenario())
    assert before == 0 and written == 1
    assert uses[uses["id"]] == (1099.0, "Google")


@pytest.fixture
def config(tmp_path: Path, upstream: Upstream) -> Path:
    upstream.state.mode = "ok"
    upstream.state.set_body((FIXTURES / "teamup-jobs.ics").read_bytes())
    path = tmp_path / "config.yaml"
    path.write_text(
        "state_dir: state\n"
        "sources:\n"
        f"  jobs: {{url: '{upstream.url}', every: 1h, timeout: 2, retries: 0}}\n"
        "feeds:\n"
        "  acme: {title: Acme, from: [jobs], where: {subcalendar: 'Client: Acme Corp'}}\n"
        "  busy: {title: Busy, from: [jobs], profile: busy}\n"
    )
    return path


def test_token_list_shows_last_use_and_app_and_feeds_lists_feeds(config: Path, tmp_path: Path) -> None:
    google = create_token(config, "acme", "Office")
    thunderbird = create_token(config, "acme", "Alice")
    create_token(config, "acme", "Spare")
    daemon = Daemon(config, tmp_path).start()
    try:
        url = f"{daemon.base}/feed/{{}}.ics"
        assert http(url.format(google), {"User-Agent": "Google-Calendar-Importer"})[0] == 200
        agent = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.4.1"
        assert http(url.format(thunderbird), {"User-Agent": agent})[0] == 200
        body = http(url.format(thunderbird))[2]
    finally:
        assert daemon.stop() == 0  # a graceful stop writes the uses not yet written
    listing = {line.split()[-1]: line.split() for line in run_cli(config, "token", "list").splitlines()[1:]}
    assert listing["Office"][4] == "Google" and listing["Office"][3].startswith("20")
    assert listing["Alice"][4] == "other"  # the later request without a User-Agent
    assert listing["Spare"][3:5] == ["never", "-"]
    log = daemon.log()
    assert google not in log and thunderbird not in log
    ids = {line[0] for line in listing.values()}
    assert sum(f'"token_id": "{token_id}"' in log for token_id in ids) == 2

    feeds = {line.split()[0]: line.split() for line in run_cli(config, "feeds").splitlines()[1:]}
    assert feeds["acme"][1:4] == ["client", str(body.count(b"BEGIN:VEVENT")), str(len(body))]
    assert feeds["acme"][-2:] == ["3", "jobs"]
    assert feeds["busy"][1] == "busy" and feeds["busy"][-2:] == ["0", "jobs"]


def test_lookups_do_not_wait_for_an_unreachable_store(tmp_path: Path) -> None:
    """The database goes away (every call hangs, then fails): known tokens keep answering,
    each lookup waits a quarter second at most, and none at all once the outage is known."""
    import time

    from icalproxy.errors import StateError

    async def scenario() -> tuple[list[float], str]:
        sql = open_sql_store("sqlite", tmp_path)
        _, token = sql.create_token("acme", "Alice")
        index = TokenIndex(Store(sql))
        await index.reload()

        def hanging() -> int:
            time.sleep(1.0)
            raise StateError("state database: connection refused")

        sql.tokens_generation = hanging  # type: ignore[method-assign]
        waits = []
        for _ in range(30):
            started = time.perf_counter()
            verdict, _record = await index.lookup(token)
            waits.append(time.perf_counter() - started)
            assert verdict == "valid"
            await asyncio.sleep(0.06)
        index.store.close()
        return waits, index.store_error or ""

    waits, error = asyncio.run(scenario())
    assert max(waits) < 0.4, waits
    assert "connection refused" in error
    assert sorted(waits)[len(waits) // 2] < 0.05  # most lookups: not waiting at all
