from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.harness import Upstream

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
