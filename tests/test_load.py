"""A bounded load test on 127.0.0.1: 10,000 requests across 50 client feeds while the upstream
flaps and the rules are reloaded twice. Zero 5xx, and every body is a whole feed version:
its ETag is the hash of exactly those bytes."""

from __future__ import annotations

import asyncio
import hashlib
import random
import signal
import threading
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from icalproxy.daemon.tokens import TokenStore
from tests.harness import Daemon, Upstream, wait_until
from tests.support import generated_feed

pytestmark = pytest.mark.slow
REQUESTS = 10_000
CONCURRENCY = 32
PROGRESS = {"started": 0, "done": 0}


def test_load_while_upstream_flaps_and_rules_reload(tmp_path: Path) -> None:
    data, manifest = generated_feed(1000, seed=21, subcalendars=50)
    names = [entry["name"] for entry in manifest["subcalendars"]]
    upstream = Upstream().start()
    upstream.state.set_body(data)
    config = tmp_path / "config.yaml"
    (tmp_path / "rules").mkdir()
    feeds = tmp_path / "rules" / "feeds.yaml"

    def write_rules(suffix: str) -> None:
        lines = ["feeds:"] + [
            f'  f{i}: {{title: "{name.replace(chr(34), "")}{suffix}", from: [jobs], '
            f'where: {{subcalendar: "{name.replace(chr(34), "")}"}}}}'
            for i, name in enumerate(names)
        ]
        feeds.write_text("\n".join(lines) + "\n")

    write_rules("")
    config.write_text(
        "state_dir: state\nrules: rules\nsources:\n"
        f"  jobs: {{url: '{upstream.url}', every: 1h, timeout: 2, retries: 0,"
        " shrink_guard: {max_loss: 0.9, confirm_pulls: 2}}\n"
    )
    store = TokenStore.in_state_dir(tmp_path / "state")
    (tmp_path / "state").mkdir()
    tokens = [store.create(f"f{i}", "load")[1] for i in range(len(names))]
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
            if reloads < 2 and PROGRESS["done"] > REQUESTS * (reloads + 1) // 4:
                reloads += 1
                write_rules(f" (rev {reloads})")
                daemon.send(signal.SIGHUP)
            stop.wait(0.1)
        upstream.state.mode = "ok"

    thread = threading.Thread(target=chaos)
    thread.start()
    try:
        statuses, wrong, titles = asyncio.run(_hammer(daemon.base, tokens))
        wait_until(lambda: daemon.log().count('"event": "config_reloaded"') >= 2, what="both reloads logged")
    finally:
        stop.set()
        thread.join(10)
        daemon.stop()
        upstream.stop()
    total = sum(statuses.values())
    assert total >= REQUESTS
    assert statuses == Counter({200: total}), statuses
    assert wrong == 0
    assert any("(rev 2)" in title for title in titles), "the second reload was served"
    log = daemon.log()
    assert '"event": "config_reloaded"' in log and log.count('"event": "config_reloaded"') >= 2
    assert not any(token in log for token in tokens)


async def _hammer(base: str, tokens: list[str]) -> tuple[Counter[int], int, set[str]]:
    statuses: Counter[int] = Counter()
    wrong = 0
    titles: set[str] = set()
    rng = random.Random(5)
    deadline = asyncio.get_running_loop().time() + 300

    def more() -> bool:
        """At least REQUESTS requests, and on until the second reload has been served: the reload is
        asynchronous, so a fast run could otherwise end before it lands."""
        if asyncio.get_running_loop().time() > deadline:
            return False
        return PROGRESS["started"] < REQUESTS or not any("(rev 2)" in title for title in titles)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal wrong
        while more():
            PROGRESS["started"] += 1
            token = rng.choice(tokens)
            async with session.get(f"{base}/feed/{token}.ics") as response:
                body = await response.read()
                statuses[response.status] += 1
                PROGRESS["done"] += 1
                if PROGRESS["done"] % 100 == 0:
                    await asyncio.sleep(0.01)  # let the flapping and the reloads interleave
                if response.status != 200:
                    continue
                expected = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                whole = body.startswith(b"BEGIN:VCALENDAR\r\n") and body.endswith(b"END:VCALENDAR\r\n")
                if response.headers.get("ETag") != expected or not whole:
                    wrong += 1
                titles.add(body.split(b"\r\nNAME:", 1)[1].split(b"\r\n", 1)[0].decode())

    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
    return statuses, wrong, titles
