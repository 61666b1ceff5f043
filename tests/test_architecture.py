"""The core stays pure: no network, clock, disk, logging or daemon libraries in icalproxy/core."""

from __future__ import annotations

import ast

import pytest

from tests.support import ROOT

BANNED = {
    "aiohttp",
    "apscheduler",
    "structlog",
    "os",
    "time",
    "logging",
    "socket",
    "subprocess",
    "pathlib",
    "shutil",
    "tempfile",
    "asyncio",
    "urllib",
    "icalproxy.daemon",
    "icalproxy.fetch",
    "icalproxy.storage",
    "icalproxy.cli",
}
CORE = sorted((ROOT / "icalproxy" / "core").glob("*.py"))


@pytest.mark.parametrize("path", CORE, ids=[path.name for path in CORE])
def test_core_module_imports_nothing_impure(path: object) -> None:
    tree = ast.parse(path.read_text())  # type: ignore[attr-defined]
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    offending = {name for name in imported if any(name == b or name.startswith(b + ".") for b in BANNED)}
    assert not offending, f"{path}: {sorted(offending)}"
