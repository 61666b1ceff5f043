"""State store benchmark: token lookup, feed version install and served requests/s with each
store, against the file store of the release before it (commit ``BASELINE``), in one run.

    .venv/bin/python benchmarks/store.py [--events 10000] [--seconds 10] [--connections 32]

Needs wrk (apt-get install wrk), ../shared's generator and the git history (the baseline is
taken from it with ``git archive``); PostgreSQL (Debian's package) for its column, else that
column is skipped. Token lookups are what a request costs (with the store's change check every
50 ms amortised in); an install is one 10k-event client feed written durably; the served rate
is wrk against ``icalproxy serve`` on 127.0.0.1 for the 200 path, as in benchmarks/serve.py.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT.parent / "shared" / "tools" / "teamup_feed.py"
BASELINE = "7d18fb6"  # the last commit with the file store (tokens.json, .state files)
sys.path.insert(0, str(ROOT))

from benchmarks.serve import wrk  # noqa: E402
from icalproxy.daemon.store import FeedBody, Store, open_sql_store  # noqa: E402
from icalproxy.daemon.tokens import TokenIndex  # noqa: E402
from tests.harness import free_port, http, wait_until  # noqa: E402


def baseline_tree(work: Path) -> Path:
    """The baseline's ``icalproxy`` package, unpacked beside the current one."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", BASELINE, "icalproxy"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    target = work / "baseline"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def per_call(function: object, seconds: float = 1.5) -> float:
    """Microseconds per call of ``function()``, run for about ``seconds``."""
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(200):
            function()  # type: ignore[operator]
        calls += 200
    return (time.perf_counter() - started) / calls * 1e6


def lookups_new(store_url: str, state: Path) -> float:
    sql = open_sql_store(store_url, state)
    tokens = [sql.create_token(f"feed{i % 50}", "")[1] for i in range(200)]

    async def run() -> float:
        index = TokenIndex(Store(sql))
        await index.reload()
        token, calls, started = tokens[17], 0, time.perf_counter()
        while time.perf_counter() - started < 1.5:
            for _ in range(200):
                verdict, _record = await index.lookup(token)
                assert verdict == "valid"
            calls += 200
        index.store.close()
        return (time.perf_counter() - started) / calls * 1e6

    return asyncio.run(run())


def installs_new(store_url: str, state: Path, body: bytes, count: int) -> float:
    sql = open_sql_store(store_url, state)
    times = []
    for n in range(count):
        started = time.perf_counter()
        sql.install_feeds([FeedBody("client", body + b"%d" % n, f'"{n}"', 1_700_000_000 + n, 10_000)])
        times.append(time.perf_counter() - started)
    sql.close()
    return statistics.median(times) * 1000


def served_rate(
    code: Path, config: Path, env: dict[str, str], seconds: int, connections: int
) -> tuple[float, int]:
    """wrk's requests/s for the client feed of ``icalproxy serve`` run from ``code``."""
    cli = [sys.executable, "-m", "icalproxy.cli"]
    out = subprocess.run(
        [*cli, "token", "new", "--config", str(config), "client"],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = "/feed/" + out.splitlines()[1].rsplit("/feed/", 1)[1]
    port = free_port()
    daemon = subprocess.Popen(
        [*cli, "serve", "--config", str(config), "--listen", f"127.0.0.1:{port}", "--log-format", "json"],
        cwd=code,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}{path}"
        wait_until(lambda: _ok(url), timeout=120, what="feed served")
        size = len(http(url)[2])
        return wrk(url, seconds, connections), size
    finally:
        daemon.terminate()
        daemon.wait(20)


def _ok(url: str) -> bool:
    try:
        return http(url, timeout=2)[0] == 200
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--installs", type=int, default=20)
    args = parser.parse_args()
    if not GENERATOR.exists():
        sys.exit(f"{GENERATOR} not found: the benchmark needs ../shared next to the project")
    os.environ.pop("CI", None)  # PostgreSQL missing: skip its column, do not fail
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        code = baseline_tree(work)
        old_tokens = load(code / "icalproxy" / "daemon" / "tokens.py", "baseline_tokens")
        old_state = load(code / "icalproxy" / "daemon" / "state.py", "baseline_state")
        subprocess.run(
            [sys.executable, str(GENERATOR), "--events", str(args.events), "--out", str(work / "feed.ics")],
            check=True,
        )
        stores: dict[str, str] = {"sqlite": "sqlite"}
        server = None
        import pytest

        from tests.postgres import PgServer

        try:
            server = PgServer()
            stores["postgresql"] = "postgresql"  # a fresh database per measurement, as for SQLite
        except pytest.skip.Exception as exc:  # PostgreSQL is not installed
            print(f"postgresql column skipped: {exc}")
        try:
            results = run_all(args, work, code, old_tokens, old_state, stores, server)
        finally:
            if server is not None:
                server.remove()
    report(results)


def run_all(
    args: argparse.Namespace,
    work: Path,
    code: Path,
    old_tokens: ModuleType,
    old_state: ModuleType,
    stores: dict[str, str],
    server: object,
) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {"lookup us": {}, "install ms": {}, "served req/s": {}}
    files = old_tokens.TokenStore(work / "old" / "tokens.json")
    tokens = [files.create(f"feed{i % 50}", "")[1] for i in range(200)]
    results["lookup us"]["files"] = per_call(lambda: files.lookup(tokens[17]))
    fresh = {name: (lambda n=name: _fresh(n, server)) for name in stores}
    for name in stores:
        results["lookup us"][name] = lookups_new(fresh[name](), work / f"lookup-{name}")

    config_text = (
        "sources:\n  teamup: {url: feed.ics}\nfeeds:\n  client: {title: Client feed, profile: client}\n"
    )
    env = {**os.environ, "PYTHONPATH": ""}
    base_config = work / "base.yaml"
    base_config.write_text("state_dir: state-files\n" + config_text)
    rate, size = served_rate(code, base_config, env, args.seconds, args.connections)
    results["served req/s"]["files"] = rate
    body = _stored_body(work / "state-files")
    print(f"feed: {args.events} events in, {size / 1e6:.2f} MB client feed out")
    state = old_state.StateStore(work / "old-state")
    state.prepare()
    times = []
    for n in range(args.installs):
        started = time.perf_counter()
        state.save_feed("client", body + b"%d" % n, {"etag": f'"{n}"', "last_modified": n, "events": 1})
        times.append(time.perf_counter() - started)
    results["install ms"]["files"] = statistics.median(times) * 1000
    for name in stores:
        results["install ms"][name] = installs_new(
            fresh[name](), work / f"install-{name}", body, args.installs
        )
        config = work / f"{name}.yaml"
        config.write_text(f"state_dir: state-{name}\nstore: '{fresh[name]()}'\n" + config_text)
        results["served req/s"][name] = served_rate(ROOT, config, env, args.seconds, args.connections)[0]
    return results


def _fresh(name: str, server: object) -> str:
    """The store URL of an empty store: SQLite in a new state folder, or a new database."""
    if name == "sqlite":
        return "sqlite"
    return server.url(server.new_database())  # type: ignore[attr-defined]


def _stored_body(state: Path) -> bytes:
    raw = (state / "feeds" / "client.state").read_bytes()
    return raw.split(b"\n", 1)[1]


def report(results: dict[str, dict[str, float]]) -> None:
    for what, values in results.items():
        base = values["files"]
        cells = [f"files {base:,.1f}"]
        for name, value in values.items():
            if name != "files":
                cells.append(f"{name} {value:,.1f} ({value / base:.2f}x files)")
        print(f"{what:<13} " + " · ".join(cells))
    served = results["served req/s"]
    for name in served:
        if name != "files":
            ratio = served[name] / served["files"]
            print(f"served feed rate, {name} / files = {ratio:.2f}x (must stay >= 0.9x)")


if __name__ == "__main__":
    main()
