"""CalDAV push benchmark: a 1,000-event technician feed mirrored into a real Radicale.

    .venv/bin/python benchmarks/push.py [--events 1000] [--server radicale|xandikos]

Starts the server on 127.0.0.1 (tests/push_servers.py), renders the technician feed from
the shared Teamup-shaped generator, then times three syncs, each from the rendered feed
bytes (split into resources included): the first one (creates everything), one after a
single event changed (targets: at most 2 requests, under 0.5 s) and one with no change
(target: 0 or 1 requests). Prints time and requests by method for each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from icalproxy.config.model import CalDAVTarget  # noqa: E402
from icalproxy.core.pipeline import build_feeds  # noqa: E402
from icalproxy.core.split import split_feed  # noqa: E402
from icalproxy.daemon.push import DavConnection, TargetSync  # noqa: E402
from icalproxy.daemon.push_state import PushState  # noqa: E402
from tests.push_servers import PASSWORD, USER, CalDAVServer  # noqa: E402
from tests.support import NOW, generated_feed, rules_from  # noqa: E402


def technician_feed(events: int) -> bytes:
    data, _ = generated_feed(events, seed=1)
    rules = rules_from("sources: {t: {url: t.ics}}\nfeeds:\n  tech: {title: Tech, profile: technician}\n")
    return build_feeds({"t": data}, rules, NOW).feeds["tech"].body


def one_sync(label: str, body: bytes, target: CalDAVTarget, state: PushState) -> tuple[float, int]:
    requests: Counter[str] = Counter()
    server_time: Counter[str] = Counter()
    original = DavConnection._once

    def timed(self: DavConnection, method: str, *args: object) -> object:
        started = time.perf_counter()
        try:
            return original(self, method, *args)  # type: ignore[arg-type]
        finally:
            server_time[method] += time.perf_counter() - started

    def count(method: str, status: str) -> None:
        requests[f"{method} {status}"] += 1

    DavConnection._once = timed  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        resources = split_feed(body)
        split_seconds = time.perf_counter() - started
        result = TargetSync("tech#0", "tech", target, state, resources, count=count).run()
        seconds = time.perf_counter() - started
    finally:
        DavConnection._once = original  # type: ignore[method-assign]
    total = sum(requests.values())
    detail = ", ".join(f"{key}: {value}" for key, value in sorted(requests.items()))
    waited = ", ".join(f"{method} {value:.3f} s" for method, value in sorted(server_time.items()))
    print(
        f"{label:<18} {seconds:8.3f} s  {total:5d} requests ({detail})  "
        f"created {result.created}, updated {result.updated}, deleted {result.deleted}; "
        f"split {split_seconds:.3f} s, waiting for the server: {waited or '-'}"
    )
    return seconds, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--server", choices=("radicale", "xandikos"), default="radicale")
    args = parser.parse_args()
    body = technician_feed(args.events)
    resources = split_feed(body)
    print(f"technician feed: {args.events} source events, {len(resources)} resources, {len(body)} bytes")
    with tempfile.TemporaryDirectory() as folder:
        server = CalDAVServer(args.server, Path(folder) / "server").start()
        try:
            target = CalDAVTarget(url=server.url, username=USER, password=PASSWORD)
            state = PushState.in_state_dir(Path(folder) / "state")
            one_sync("first sync", body, target, state)
            uid = sorted(resources)[len(resources) // 2]
            marker = f"UID:{uid}\r\n".encode()
            position = body.index(marker)
            summary = body.index(b"SUMMARY:", position)
            changed = body[:summary] + b"SUMMARY:Moved - " + body[summary + len(b"SUMMARY:") :]
            seconds, total = one_sync("one event changed", changed, target, state)
            ok_change = total <= 2 and seconds < 0.5
            _, total_none = one_sync("no change", changed, target, state)
            print(
                f"targets: one change ≤ 2 requests and < 0.5 s: {'met' if ok_change else 'MISSED'}; "
                f"no change 0 or 1 requests: {'met' if total_none <= 1 else 'MISSED'}"
            )
            state.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
