from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import Upstream


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
