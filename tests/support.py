"""Helpers shared by tests: paths, the shared/ tools, and small builders."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import re
import subprocess
import sys
from datetime import datetime
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, NoReturn

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
GENERATOR = SHARED / "tools" / "teamup_feed.py"
FEEDCHECK = SHARED / "tools" / "feedcheck" / "feedcheck"
NOW = datetime(2026, 11, 25, 12, 0)


def need_shared(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared (corpus and tools) is not next to the project")


def parser_missing(reason: str) -> NoReturn:
    """A real client parser is not installed: skip on a developer's machine, fail in CI (``CI``
    set), where scripts/test.sh has installed them all and a skip would hide a lost check."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run every real-client check")
    pytest.skip(f"{reason} (run ../shared/tools/feedcheck/setup.sh)")


@cache
def feedcheck_module() -> ModuleType:
    need_shared(FEEDCHECK)
    loader = importlib.machinery.SourceFileLoader("feedcheck_tool", str(FEEDCHECK))
    spec = importlib.util.spec_from_loader("feedcheck_tool", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def structure_problems(data: bytes) -> list[str]:
    """feedcheck's RFC structure checks, run in-process; an empty list means all passed."""
    return structure_report(data)[0]


def structure_report(data: bytes) -> tuple[list[str], int]:
    """feedcheck's RFC structure checks, in-process: the failures and the VEVENT count."""
    tool = feedcheck_module()
    failures: list[str] = []

    class Collect(tool.Report):  # type: ignore[name-defined,misc]
        def ok(self, name: str, detail: str = "") -> None:
            self.passed += 1

        def fail(self, name: str, reason: str) -> None:
            self.failed += 1
            failures.append(f"{name}: {reason}")

    _, events = tool.structure_checks(data, Collect())
    return failures, events


def unfolded(data: bytes) -> str:
    return re.sub(rb"\r?\n[ \t]", b"", data).decode("utf-8")


@cache
def generated_feed(events: int, seed: int = 0, subcalendars: int = 8) -> tuple[bytes, dict]:
    """A Teamup-shaped feed from the shared generator, with its manifest (cached per run)."""
    import json
    import tempfile

    need_shared(GENERATOR)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "feed.ics"
        manifest = Path(folder) / "manifest.json"
        subprocess.run(
            [
                sys.executable,
                str(GENERATOR),
                "--events",
                str(events),
                "--seed",
                str(seed),
                "--subcalendars",
                str(subcalendars),
                "--out",
                str(out),
                "--manifest",
                str(manifest),
            ],
            check=True,
        )
        return out.read_bytes(), json.loads(manifest.read_text())


def calendar(*events: str, extra: str = "") -> bytes:
    """A small calendar from VEVENT bodies (lines joined with CRLF)."""
    parts = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    if extra:
        parts.append(extra.strip())
    for body in events:
        parts += ["BEGIN:VEVENT", body.strip(), "END:VEVENT"]
    parts.append("END:VCALENDAR")
    return (
        "\r\n".join("\r\n".join(line.strip() for line in part.splitlines()) for part in parts) + "\r\n"
    ).encode()


def rules_from(text: str) -> Rules:
    """Validated rules from a YAML config text (no files touched)."""
    from icalproxy.config.load import parse_yaml
    from icalproxy.config.validate import validate

    document = parse_yaml(text, "test.yaml", {})
    return validate(document, [], Path("/nowhere/test.yaml")).rules


def build(text: str, now: datetime = NOW, **sources: bytes) -> BuildResult:
    from icalproxy.core.pipeline import build_feeds

    return build_feeds(sources, rules_from(text), now)


if TYPE_CHECKING:
    from icalproxy.config.model import Rules
    from icalproxy.core.pipeline import BuildResult
