"""A second process writing to a store, for the contract tests: ``python -m tests.store_worker
MODE STORE STATE_DIR N``. ``tokens``: N token creations and N/2 feed installs, interleaved;
``install``: installs forever, each transaction one version of both feeds ``a`` and ``b`` whose
bodies are derived from the version number, printing each version once committed."""

from __future__ import annotations

import sys
from pathlib import Path

from icalproxy.daemon.store import FeedBody, open_sql_store


def body_of(feed: str, version: int) -> bytes:
    return f"{feed}:{version};".encode() * 20_000  # ~200 KB: a transaction worth interrupting


def main(mode: str, store_url: str, state_dir: str, count: int) -> None:
    store = open_sql_store(store_url, Path(state_dir))
    if mode == "tokens":
        for index in range(count):
            store.create_token("acme", f"worker {index}")
            if index % 2:
                store.install_feeds([FeedBody("shared", b"x" * 100, f'"{index}"', 1, 1)])
    else:
        top = max((meta.version for meta in store.feed_versions("a")), default=0)
        while True:
            top += 1
            store.install_feeds(
                [FeedBody(feed, body_of(feed, top), f'"{feed}{top}"', top, top) for feed in ("a", "b")]
            )
            print(top, flush=True)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
