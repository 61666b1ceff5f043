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
