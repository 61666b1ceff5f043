"""Whole-process speed: a command imports only what it needs. Rendering files must not start
the HTTP stack, the scheduler or the daemon (issue 11: start-up was a quarter of `render`)."""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from icalproxy import cli
from icalproxy.cli import COMMANDS, build_parser
from tests.support import ROOT

EXAMPLE = str(ROOT / "config.example.yaml")
# What the daemon needs and a file-only command must never load.
HEAVY = ("aiohttp", "apscheduler", "yarl", "multidict", "structlog", "asyncio")
DAEMON = (
    "icalproxy.daemon.app",
    "icalproxy.daemon.service",
    "icalproxy.daemon.web",
    "icalproxy.daemon.state",
)

PROBE = """
import json, sys
from icalproxy.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
print("\\nMODULES " + json.dumps(sorted(sys.modules)), file=sys.stderr)
sys.exit(code)
"""


def modules_after(*args: str, env: dict[str, str] | None = None) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith("MODULES "))
    return set(json.loads(line.removeprefix("MODULES ")))


@pytest.mark.parametrize(
    "command",
    [
        ["render", "--config", EXAMPLE, "--out", "{out}", "--now", "2026-11-25"],
        ["check", "--config", EXAMPLE],
        ["check", "--config", EXAMPLE, "--sources"],
        ["preview", "--config", EXAMPLE, "--feed", "acme", "--now", "2026-11-25"],
        ["preview", "--config", EXAMPLE, "--feed", "acme", "--format", "ics", "--now", "2026-11-25"],
    ],
    ids=["render", "check", "check-sources", "preview", "preview-ics"],
)
def test_file_commands_import_no_http_stack_scheduler_or_daemon(command: list[str], tmp_path: Path) -> None:
    loaded = modules_after(*(part.replace("{out}", str(tmp_path / "out")) for part in command))
    assert "icalproxy.core.pipeline" in loaded  # the probe did run the command
    offending = sorted(
        name
        for name in loaded
        if any(name == heavy or name.startswith(heavy + ".") for heavy in HEAVY + DAEMON)
    )
    assert offending == []


def test_render_skips_what_only_other_commands_use(tmp_path: Path) -> None:
    """Start-up counts (issue 11): no conflict finder, no dataclasses (records.py), no tempfile
    or importlib.resources (storage.py and tzdata_zones.py read and write without them), no
    hashing (the ETag and the keyed UID are made when first needed) and no random numbers."""
    out = str(tmp_path / "out")
    state = tmp_path / "state"  # made by an earlier run: a first one creates the key (secrets)
    state.mkdir()
    (state / "installation.key").write_text("ab" * 32 + "\n")
    env = {"ICALPROXY_STATE_DIR": str(state)}
    loaded = modules_after("render", "--config", EXAMPLE, "--out", out, "--now", "2026-11-25", env=env)
    unwanted = ("icalproxy.core.conflicts", "dataclasses", "tempfile", "importlib.resources")
    unwanted += ("hashlib", "hmac", "secrets", "random")
    unwanted += ("icalproxy.daemon.commands",)  # only the named command's parser is built
    assert "icalproxy.core.pipeline" in loaded
    assert [name for name in unwanted if name in loaded] == []


def test_serve_still_has_its_stack() -> None:
    """The counter-check: the probe sees lazily imported modules once they are used."""
    result = subprocess.run(
        [sys.executable, "-c", "import icalproxy.daemon.app, sys; print('aiohttp' in sys.modules)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "True"


QUICK_EXIT = """
import atexit, sys
atexit.register(lambda: print("exit handler ran", file=sys.stderr))
sys.argv = ["icalproxy", *sys.argv[1:]]
from icalproxy.cli import run
run()
"""


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["render", "--config", EXAMPLE, "--out", "{out}", "--now", "2026-11-25"], 0, "wrote 6 feed(s)"),
        (["render", "--config", "{out}/missing.yaml", "--out", "{out}"], 2, "nothing was written"),
    ],
    ids=["ok", "config-error"],
)
def test_the_installed_command_exits_quickly_yet_keeps_its_code_output_and_exit_handlers(
    args: list[str], code: int, said: str, tmp_path: Path
) -> None:
    """cli.run ends the process without freeing every object (start-up counts, issue 11),
    after the exit handlers ran and stdout/stderr were flushed into a pipe."""
    argv = [part.replace("{out}", str(tmp_path)) for part in args]
    result = subprocess.run(
        [sys.executable, "-c", QUICK_EXIT, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == code, result.stderr
    assert said in result.stdout + result.stderr
    assert result.stderr.rstrip().endswith("exit handler ran")
    if code == 0:
        assert len(list(tmp_path.glob("*.ics"))) == 6


def test_the_console_script_is_the_quick_exit() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'icalproxy = "icalproxy.cli:run"' in pyproject


def _command_names(parser: argparse.ArgumentParser) -> list[str]:
    actions = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return list(actions[0].choices)


def test_commands_names_every_command_and_each_parser_builds_alone() -> None:
    """main builds only the parser of the command its first word names (start-up counts):
    COMMANDS must name them all, and each one alone must parse as in the full parser."""
    assert _command_names(build_parser()) == list(COMMANDS)
    for name in COMMANDS:
        assert _command_names(build_parser(name)) == [name]
    argv = ["render", "--config", "c.yaml", "--out", "out", "--feed", "a", "--now", "2026-11-25"]
    alone, full = build_parser("render").parse_args(argv), build_parser().parse_args(argv)
    assert vars(alone) == vars(full)


def test_one_shot_commands_run_without_the_cyclic_collector_and_restore_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """render (and check, preview, conflicts) run with the cyclic collector off: their parsed
    sources hold no cycles, and walking them is about 1.5 % of render's time (and, in a
    render in processes, each child's collections would copy every page they walk). It is on again
    once main returns, and the daemon's commands keep it."""
    seen: dict[str, bool] = {}
    real_render = cli.render_in_processes

    def render_in_processes(*args: Any, **kwargs: Any) -> Any:
        seen["render"] = gc.isenabled()
        return real_render(*args, **kwargs)

    def feeds(_args: argparse.Namespace) -> int:
        seen["feeds"] = gc.isenabled()
        return 0

    monkeypatch.setattr(cli, "render_in_processes", render_in_processes)
    monkeypatch.setattr("icalproxy.daemon.commands.cmd_feeds", feeds)
    assert gc.isenabled()
    state = tmp_path / "state"
    monkeypatch.setenv("ICALPROXY_STATE_DIR", str(state))
    argv = ["render", "--config", EXAMPLE, "--out", str(tmp_path / "out"), "--now", "2026-11-25"]
    assert cli.main(argv) == 0
    assert seen["render"] is False
    assert gc.isenabled()
    assert cli.main(["feeds", "--config", EXAMPLE]) == 0
    assert seen["feeds"] is True
    assert gc.isenabled()
