"""A bounded load test on 127.0.0.1: 10,000 requests across 50 client feeds while the upstream
flaps and the rules are reloaded twice. Zero 5xx, and every body is a whole version of the
token's own feed: its ETag is the hash of exactly those bytes, and its title is that feed's."""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from icalproxy.core.lines import unescape_text
from icalproxy.daemon.store import open_sql_store
from tests.harness import Daemon, Upstream, wait_until
from tests.support import generated_feed

pytestmark = pytest.mark.slow
REQUESTS = 10_000
CONCURRENCY = 32
PROGRESS = {"started": 0, "done": 0, "flaps": 0}
FLAPS = 30  # upstream changes (good, failing or new content) while the load runs


def test_load_while_upstream_flaps_and_rules_reload(tmp_path: Path) -> None:
    data, manifest = generated_feed(1000, seed=21, subcalendars=50)
    names = [entry["name"] for entry in manifest["subcalendars"]]
    upstream = Upstream().start()
    upstream.state.set_body(data)
    config = tmp_path / "config.yaml"
    (tmp_path / "rules").mkdir()
    feeds = tmp_path / "rules" / "feeds.yaml"

    titles = [name.replace('"', "") for name in names]

    def write_rules(suffix: str) -> None:
        lines = ["feeds:"] + [
            f'  f{i}: {{title: "{title}{suffix}", from: [jobs], where: {{subcalendar: "{title}"}}}}'
            for i, title in enumerate(titles)
        ]
        feeds.write_text("\n".join(lines) + "\n")

    write_rules("")
    config.write_text(
        "state_dir: state\nrules: rules\nsources:\n"
        f"  jobs: {{url: '{upstream.url}', every: 1h, timeout: 1, retries: 0,"
        " shrink_guard: {max_loss: 0.9, confirm_pulls: 2}}\n"
    )
    store = open_sql_store("sqlite", tmp_path / "state")
    tokens = [store.create_token(f"f{i}", "load")[1] for i in range(len(names))]
    store.close()
    daemon = Daemon(config, tmp_path).start()
    stop = threading.Event()

    def chaos() -> None:
        rng = random.Random(3)
        reloads = 0
        while not stop.is_set():
            upstream.state.mode = rng.choice(["ok", "ok", "500", "html", "truncated", "timeout"])
            if upstream.state.mode == "ok":
                upstream.state.set_body(
                    data.replace(b"Install heat pump", f"Install v{rng.random()}".encode())
                )
            daemon.pull_now()
            PROGRESS["flaps"] += 1
            if reloads < 2 and PROGRESS["done"] > REQUESTS * (reloads + 1) // 4:
                reloads += 1
                write_rules(f" (rev {reloads})")
                daemon.send(signal.SIGHUP)
            stop.wait(0.1)
        upstream.state.mode = "ok"

    thread = threading.Thread(target=chaos)
    thread.start()
    try:
        started = time.monotonic()
        pairs = list(zip(tokens, titles, strict=True))
        statuses, wrong, served, second_reload_seen = asyncio.run(_hammer(daemon.base, pairs))
        seconds = time.monotonic() - started
        wait_until(lambda: daemon.log().count('"event": "config_reloaded"') >= 2, what="both reloads logged")
        metrics = daemon.metrics()
    finally:
        stop.set()
        thread.join(10)
        daemon.stop()
        upstream.stop()
    counted = re.findall(r'icalproxy_fetches_total\{source="jobs",result="(\w+)"\} (\d+)', metrics)
    fetches = {result: int(count) for result, count in counted}
    total = sum(statuses.values())
    assert total >= REQUESTS
    print(
        f"\nload: {total} requests over {len(tokens)} feeds in {seconds:.1f}s, statuses {dict(statuses)}, "
        f"{wrong} wrong or partial, {len(served)} distinct feed versions served; "
        f"{PROGRESS['flaps']} upstream flaps, pulls by result {fetches}"
    )
    assert fetches.get("ok", 0) >= 2 and fetches.get("error", 0) >= 2, fetches  # the start-up pull is 1 ok
    assert statuses == Counter({200: total}), statuses
    assert wrong == 0
    assert second_reload_seen, "the second reload was served"
    assert len(served) > len(tokens), "new versions were served while the load ran"
    log = daemon.log()
    assert '"event": "config_reloaded"' in log and log.count('"event": "config_reloaded"') >= 2
    assert not any(token in log for token in tokens)


async def _hammer(base: str, feeds: list[tuple[str, str]]) -> tuple[Counter[int], int, set[str], bool]:
    """Requests on (token, title) pairs: statuses, wrong or partial bodies, distinct ETags, and
    whether the second reload's titles were served."""
    statuses: Counter[int] = Counter()
    wrong = 0
    served: set[str] = set()
    second_reload_seen = False
    rng = random.Random(5)
    deadline = asyncio.get_running_loop().time() + 300

    def more() -> bool:
        """At least REQUESTS requests, and on until the second reload has been served: the reload is
        asynchronous, so a fast run could otherwise end before it lands."""
        if asyncio.get_running_loop().time() > deadline:
            return False
        return PROGRESS["started"] < REQUESTS or PROGRESS["flaps"] < FLAPS or not second_reload_seen

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal wrong, second_reload_seen
        while more():
            PROGRESS["started"] += 1
            token, title = rng.choice(feeds)
            async with session.get(f"{base}/feed/{token}.ics") as response:
                body = await response.read()
                statuses[response.status] += 1
                PROGRESS["done"] += 1
                if PROGRESS["done"] % 100 == 0:
                    await asyncio.sleep(0.01)  # let the flapping and the reloads interleave
                if response.status != 200:
                    continue
                etag = response.headers.get("ETag", "")
                whole = body.startswith(b"BEGIN:VCALENDAR\r\n") and body.endswith(b"END:VCALENDAR\r\n")
                head = body[:2000].replace(b"\r\n ", b"").decode(errors="replace")
                name = unescape_text(head.split("\r\nNAME:", 1)[-1].split("\r\n", 1)[0])
                own = name in (title, f"{title} (rev 1)", f"{title} (rev 2)")
                if etag != '"' + hashlib.sha256(body).hexdigest()[:32] + '"' or not whole or not own:
                    wrong += 1
                served.add(etag)
                second_reload_seen = second_reload_seen or name.endswith("(rev 2)")

    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
    return statuses, wrong, served, second_reload_seen
