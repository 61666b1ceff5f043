"""The real client parsers of ../shared/tools/feedcheck, run in batches.

feedcheck starts one process per parser per file, which is far too slow for thousands of files.
Here one long-running process per parser (the drivers in tests/parsers/, twins of feedcheck's
helpers with the same acceptance rules) checks a list of files and prints one JSON line per
file. A file that hangs longer than the per-file timeout, or kills its process, is charged as a
failure to that file and the process is started again on the files after it, so one
pathological file cannot hang or sink a run. Lists are cut into chunks that run in parallel
processes, one per core.

    results = check_files(paths)            # {"ical.js": [result per path], "icalendar": ...}
    verdict = feedcheck_verdict(data, {name: results[name][i] for name in results})

A result is the helper's JSON object: {"ok": true, "events": N, ...} or {"ok": false,
"error": "..."}.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import FEEDCHECK, ROOT, parser_missing

DRIVERS = ROOT / "tests" / "parsers"
FEEDCHECK_HOME = Path(os.environ.get("FEEDCHECK_HOME") or Path.home() / ".cache" / "feedcheck")
LIBICAL_PYTHON = os.environ.get("FEEDCHECK_LIBICAL_PYTHON", "/usr/bin/python3")
WINDOW_FROM = "2026-01-01"  # pinned: occurrence counts and expansion errors do not move with the date
WINDOW_YEARS = 2
FILE_TIMEOUT = 60.0  # seconds one file may take in one parser (feedcheck's default per parser)
CHUNK = 400  # files per process: small enough to spread over the cores, large enough to pay off
PARSERS = ("ical.js", "icalendar", "libical")

Result = dict[str, Any]


@dataclass(frozen=True)
class Parser:
    name: str
    command: tuple[str, ...]  # the list file's path is appended

    def missing(self) -> str | None:
        """Why this parser cannot run here, or None: the driver runs on an empty list."""
        if not Path(self.command[0]).exists():
            return f"{self.name}: {self.command[0]} not found"
        with tempfile.NamedTemporaryFile("w", suffix=".list") as empty:
            try:
                probe = subprocess.run(
                    [*self.command, empty.name], capture_output=True, text=True, timeout=120, env=_env()
                )
            except subprocess.TimeoutExpired:
                return f"{self.name}: the driver did not start within 120 s"
        if probe.returncode != 0:
            tail = (probe.stderr.strip().splitlines() or ["no output"])[-1]
            return f"{self.name} is not usable (exit {probe.returncode}: {tail})"
        return None


def parsers() -> dict[str, Parser]:
    node = shutil.which("node") or "node"
    icaljs = FEEDCHECK_HOME / "node" / "node_modules" / "ical.js"
    window = ("--from", WINDOW_FROM, "--years", str(WINDOW_YEARS))
    venv_python = FEEDCHECK_HOME / "venv" / "bin" / "python"
    return {
        "ical.js": Parser(
            "ical.js", (node, str(DRIVERS / "icaljs_batch.mjs"), "--icaljs", str(icaljs), *window)
        ),
        "icalendar": Parser("icalendar", (str(venv_python), "-I", str(DRIVERS / "icalendar_batch.py"))),
        "libical": Parser("libical", (LIBICAL_PYTHON, "-I", str(DRIVERS / "libical_batch.py"))),
    }


def need_parsers() -> dict[str, Parser]:
    """All three parsers, or skip (locally) / fail (CI) naming what is missing."""
    if not FEEDCHECK.exists():
        parser_missing(f"{FEEDCHECK} is absent")
    found = parsers()
    for parser in found.values():
        reason = parser.missing()
        if reason:
            parser_missing(reason)
    return found


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # as feedcheck: the helpers see their own installs only
    env.pop("NODE_OPTIONS", None)
    return env


def run_batch(parser: Parser, paths: Sequence[Path], timeout: float = FILE_TIMEOUT) -> list[Result]:
    """One result per path, in order, from as few processes as the files allow."""
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="realparsers-") as folder:
        while len(results) < len(paths):
            listing = Path(folder) / f"{len(results)}.list"
            listing.write_text("".join(f"{path}\n" for path in paths[len(results) :]), encoding="utf-8")
            results.extend(_one_process(parser, listing, len(paths) - len(results), timeout, folder))
    return results


def _one_process(parser: Parser, listing: Path, count: int, timeout: float, folder: str) -> list[Result]:
    """Results of one driver process: all ``count`` of them, or up to and including the file it
    hung or died on (charged as that file's failure)."""
    results: list[Result] = []
    with open(Path(folder) / f"{listing.stem}.err", "w+b") as stderr:
        process = subprocess.Popen(
            [*parser.command, str(listing)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=_env(),
        )
        assert process.stdout is not None
        lines: queue.Queue[bytes | None] = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True)
        reader.start()
        try:
            while len(results) < count:
                try:
                    line = lines.get(timeout=timeout)
                except queue.Empty:
                    results.append({"ok": False, "error": f"timed out after {timeout:g}s"})
                    break
                if line is None:
                    code = process.wait()
                    stderr.seek(0)
                    tail = (stderr.read().decode(errors="replace").strip().splitlines() or ["no output"])[-1]
                    results.append({"ok": False, "error": f"helper exited {code}: {tail}"})
                    break
                results.append(json.loads(line))
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            reader.join()
            process.stdout.close()
    return results


def _read_lines(stream: Any, lines: queue.Queue[bytes | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def check_files(
    paths: Sequence[Path],
    chosen: dict[str, Parser] | None = None,
    workers: int | None = None,
    timeout: float = FILE_TIMEOUT,
) -> dict[str, list[Result]]:
    """Every path through every parser, in parallel processes (one per core by default)."""
    chosen = chosen if chosen is not None else need_parsers()
    workers = workers or max(2, os.cpu_count() or 2)
    chunks = [(name, start) for name in chosen for start in range(0, len(paths), CHUNK)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            (name, start): pool.submit(run_batch, chosen[name], paths[start : start + CHUNK], timeout)
            for name, start in chunks
        }
        results: dict[str, list[Result]] = {name: [] for name in chosen}
        for (name, _), future in futures.items():  # in submission order: chunks in path order
            results[name].extend(future.result())
        return results


def feedcheck_verdict(checks: tuple[list[str], int], results: dict[str, Result]) -> list[str]:
    """What feedcheck would print as FAIL for one file: its structure failures (``structure_report()``),
    each parser that rejects it, and check:parsers-agree (every accepting parser counts the
    VEVENTs the structure checks count)."""
    failures, events = checks
    failures = list(failures)
    failures += [
        f"{name}: {result.get('error') or 'rejected'}" for name, result in results.items() if not result["ok"]
    ]
    counts = {name: result.get("events") for name, result in results.items() if result["ok"]}
    counted = {name: n for name, n in counts.items() if isinstance(n, int)}
    if counted and any(n != events for n in counted.values()):
        detail = ", ".join(f"{name}={n}" for name, n in counted.items())
        failures.append(f"check:parsers-agree: VEVENT counts differ: structure={events}, {detail}")
    return failures


def accepted(results: Iterable[Result]) -> int:
    return sum(1 for result in results if result["ok"])
