from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.harness import Upstream
from tests.postgres import PgServer

# CI explores the same examples on every run, so a red main is reproducible; local runs keep
# drawing fresh examples (and keep failures in .hypothesis/ until they are fixed).
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


# The files that take minutes, longest first (measured on the two-core CI machine: the
# corpus through the real parsers about 6 minutes, the fuzzers and the kill -9 matrix about
# 3 each, the replica tests about one). scripts/test.sh hands files to the two workers in
# collection order (--no-loadscope-reorder); these go first, so that one of them is never
# the last file left while the other worker has nothing to do. The rest follow with the
# files of most tests first, as xdist would order them.
LONG_FILES = (
    "tests/test_corpus_parsers.py",
    "tests/test_fuzz.py",
    "tests/test_faults.py",
    "tests/test_replicas.py",
    "tests/test_push_replicas.py",
    "tests/test_container.py",
    "tests/test_corpus.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    files: dict[str, int] = {}
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        files[path] = files.get(path, 0) + 1

    def rank(item: pytest.Item) -> tuple[int, int]:
        path = item.nodeid.split("::", 1)[0]
        if path in LONG_FILES:
            return LONG_FILES.index(path), 0
        return len(LONG_FILES), -files[path]

    items.sort(key=rank)  # stable: a file's tests keep their order


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/*/out/ from the current output",
    )


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    """A controllable upstream calendar server on 127.0.0.1 (see tests/harness.py)."""
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One private PostgreSQL server for the session (see tests/postgres.py)."""
    server = PgServer()
    yield server
    server.remove()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ``store:`` value of each backend, on an empty store of its own."""
    if request.param == "sqlite":
        return "sqlite"
    server: PgServer = request.getfixturevalue("pg_server")
    return server.url(server.new_database())
