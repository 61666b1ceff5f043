"""Pipeline benchmark: icalproxy vs a naive icalendar round trip, on the same generated feeds.

    .venv/bin/python benchmarks/pipeline.py [--events 10000 50000] [--feeds 50] [--repeat 3]

For each size, a Teamup-shaped feed is generated with ../shared/tools/teamup_feed.py, then
each contender runs in its own fresh subprocess (so peak RSS is its own):
  icalendar  Calendar.from_ical → drop internal properties from every VEVENT → to_ical
  icalproxy  parse → route to N client feeds (one per sub-calendar) → redact → render all
Times are the best of --repeat rounds inside one worker; peak RSS comes from a fresh worker
doing the work once (VmHWM: interpreter, libraries and input bytes included); ratios are measured
in this run.

Then the same work as a user meets it, whole process, start-up included (best of --repeat
fresh processes each, wall clock, in rounds that take turns so that both meet the same load):
  icalendar  python roundtrip.py feed.ics out.ics (the round trip above, reading and writing files)
  icalproxy  icalproxy render --config bench.yaml --out DIR (the installed command)
and each one's peak RSS (VmHWM, read by the process itself as it exits). `icalproxy render`
runs with its default --jobs (auto: several processes for sources of 1–16 MB, see
icalproxy/render_jobs.py), unless --jobs says otherwise; when it forks, the children's peaks
are added to its own (see whole_processes). The package's
bytecode is compiled first, as `pip install .` does (icalendar's was, when it was installed);
an editable install under PYTHONDONTWRITEBYTECODE would otherwise recompile every module on
every run. Start-up alone (`icalproxy --version`, imports of the render path) is printed too.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT.parent / "shared" / "tools" / "teamup_feed.py"
DROP = ("DESCRIPTION", "LOCATION", "URL", "ATTACH", "ATTENDEE", "ORGANIZER", "X-ALT-DESC")


def worker_icalendar(path: Path, repeat: int, _feeds: int) -> dict[str, float]:
    import icalendar

    data = path.read_bytes()
    best = float("inf")
    size = 0
    calendar = None
    for _ in range(repeat):
        calendar = None  # the previous round's objects must not count in this round's peak
        start = time.perf_counter()
        calendar = icalendar.Calendar.from_ical(data)
        for event in calendar.walk("VEVENT"):
            for name in DROP:
                event.pop(name, None)
            event.subcomponents.clear()
        size = len(calendar.to_ical())
        best = min(best, time.perf_counter() - start)
    return {"seconds": best, "bytes_out": size}


def worker_icalproxy(path: Path, repeat: int, feeds: int) -> dict[str, float]:
    from datetime import datetime

    from icalproxy.config.load import parse_yaml
    from icalproxy.config.validate import validate
    from icalproxy.core.pipeline import build_feeds

    names = json.loads(path.with_suffix(".names.json").read_text())[:feeds]
    lines = ["sources: {teamup: {url: feed.ics}}", "feeds:"]
    for index, name in enumerate(names):
        lines.append(f"  f{index}: {{title: {json.dumps(name)}, where: {{subcalendar: {json.dumps(name)}}}}}")
    rules = validate(parse_yaml("\n".join(lines), "bench.yaml", {}), [], Path("/bench.yaml")).rules
    data = path.read_bytes()
    best = float("inf")
    size = events = 0
    result = None
    for _ in range(repeat):
        result = None  # the previous round's feeds must not count in this round's peak
        start = time.perf_counter()
        result = build_feeds({"teamup": data}, rules, datetime(2026, 11, 25))
        best = min(best, time.perf_counter() - start)
        size = sum(len(feed.body) for feed in result.feeds.values())
        events = sum(feed.events for feed in result.feeds.values())
    assert result is not None
    return {"seconds": best, "bytes_out": size, "feeds": len(result.feeds), "events_out": events}


def peak_rss_mb() -> float:
    """This process image's peak RSS. Not ru_maxrss: on Linux that keeps the parent's peak
    across fork and exec, so a worker started by a large parent would report the parent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


WORKERS = {"icalendar": worker_icalendar, "icalproxy": worker_icalproxy}

# ---------------------------------------------------------------- whole process

ROUNDTRIP = f"""
import sys
import icalendar

calendar = icalendar.Calendar.from_ical(open(sys.argv[1], "rb").read())
for event in calendar.walk("VEVENT"):
    for name in {DROP!r}:
        event.pop(name, None)
    event.subcomponents.clear()
open(sys.argv[2], "wb").write(calendar.to_ical())
"""

# Runs a script or module as __main__ and writes, as it exits, its own peak RSS and the
# largest peak of the processes it forked and waited for (kB; `render --jobs`).
MEASURE = """
import atexit, resource, runpy, sys
report, kind, target = sys.argv[1:4]
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            open(report, "w").write(f"{line.split()[1]} {children}")
atexit.register(hwm)
sys.argv = [target, *sys.argv[4:]]
if kind == "module":
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    runpy.run_path(target, run_name="__main__")
"""


def whole_command(kind: str, path: Path, feeds: int, jobs: str | None) -> tuple[list[str], list[str]]:
    """The command line of one contender, and what MEASURE runs for its peak RSS. ``jobs``:
    icalproxy's --jobs (None: its default, as a user runs it)."""
    folder = path.parent
    if kind == "icalproxy":
        names = json.loads(path.with_suffix(".names.json").read_text())[:feeds]
        config = folder / f"{path.stem}-bench.yaml"
        lines = [f"sources: {{teamup: {{url: {json.dumps(path.name)}, max_bytes: 200MB}}}}", "feeds:"]
        lines += [
            f"  f{i}: {{title: {json.dumps(name)}, where: {{subcalendar: {json.dumps(name)}}}}}"
            for i, name in enumerate(names)
        ]
        config.write_text("\n".join(lines) + "\n")
        args = [
            "render",
            "--config",
            str(config),
            "--out",
            str(folder / f"{path.stem}-out"),
            "--now",
            "2026-11-25",
            *(["--jobs", jobs] if jobs is not None else []),
        ]
        installed = Path(sys.executable).parent / "icalproxy"
        command = (
            [str(installed), *args] if installed.exists() else [sys.executable, "-m", "icalproxy.cli", *args]
        )
        return command, ["module", "icalproxy.cli", *args]
    script = folder / "roundtrip.py"
    script.write_text(ROUNDTRIP)
    args = [str(path), str(folder / f"{path.stem}-roundtrip.ics")]
    return [sys.executable, str(script), *args], ["path", str(script), *args]


def whole_processes(path: Path, feeds: int, repeat: int, jobs: str | None) -> dict[str, dict[str, float]]:
    """Best wall clock of --repeat fresh processes per contender, in rounds that take turns
    (icalendar, icalproxy, icalendar, …): a slow spell on a shared machine then falls on
    both, not on one contender's rounds alone. Then each one's peak RSS, measured once.

    When `icalproxy render` renders in several processes (its last line says how many), its
    RSS is the main process's peak plus, for each other process, the largest child's peak.
    A child's peak counts again the pages it still shares with the main process, so this
    overstates what the processes need together; it never understates it."""
    kinds = ("icalendar", "icalproxy")
    commands = {kind: whole_command(kind, path, feeds, jobs) for kind in kinds}
    best = dict.fromkeys(kinds, float("inf"))
    processes = 1
    for _ in range(repeat):
        for kind in kinds:
            start = time.perf_counter()
            done = subprocess.run(commands[kind][0], check=True, stdout=subprocess.PIPE, text=True)
            best[kind] = min(best[kind], time.perf_counter() - start)
            if kind == "icalproxy":
                processes = _processes(done.stdout)
    results = {}
    for kind in kinds:
        report = path.parent / f"{path.stem}-{kind}.rss"
        subprocess.run(
            [sys.executable, "-c", MEASURE, str(report), *commands[kind][1]],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        own, child = (int(word) / 1024 for word in report.read_text().split())
        extra = (processes - 1) * child if kind == "icalproxy" else 0.0
        results[kind] = {"seconds": best[kind], "peak_rss_mb": own + extra, "main_mb": own, "child_mb": child}
        if kind == "icalproxy":
            results[kind]["processes"] = processes
    return results


def _processes(output: str) -> int:
    """How many processes `icalproxy render` used: its last line ends "(N processes)" when
    more than one."""
    last = output.rstrip().rsplit("\n", 1)[-1]
    if last.endswith(" processes)"):
        return int(last.rsplit("(", 1)[1].split()[0])
    return 1


def startup(repeat: int) -> float:
    """Wall clock of the render path's imports in a fresh process (what every command pays)."""
    code = "import icalproxy.cli, icalproxy.core.pipeline"
    best = float("inf")
    for _ in range(max(repeat, 3)):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - start)
    return best


def run_worker(kind: str, path: Path, repeat: int, feeds: int) -> dict[str, float]:
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            kind,
            str(path),
            "--repeat",
            str(repeat),
            "--feeds",
            str(feeds),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[10000, 50000])
    parser.add_argument("--feeds", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--only", choices=("both", "in", "whole"), default="both", help="in-process, whole-process or both"
    )
    parser.add_argument(
        "--jobs", help="icalproxy render --jobs for the whole-process rounds (default: none given, auto)"
    )
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, file = args.worker
        result = WORKERS[kind](Path(file), args.repeat, args.feeds)
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return
    if not GENERATOR.exists():
        sys.exit(f"{GENERATOR} not found: the benchmark needs ../shared next to the project")
    print("in process: parse → route → redact → render, no start-up; whole: the command as a user runs it")
    print(
        f"{'mode':<10} {'events':>7} {'MB in':>6} | {'icalendar s':>11} {'RSS MB':>7} | "
        f"{'icalproxy s':>11} {'RSS MB':>7} {'feeds':>5} | {'speed-up':>8} {'RSS ratio':>9}"
    )
    if args.only in ("both", "whole"):
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "icalproxy")], check=True)
        print(f"start-up: {startup(args.repeat):.3f} s (imports only, best of {max(args.repeat, 3)})")
    with tempfile.TemporaryDirectory() as folder:
        for events in args.events:
            path = Path(folder) / f"feed-{events}.ics"
            subprocess.run(
                [
                    sys.executable,
                    str(GENERATOR),
                    "--events",
                    str(events),
                    "--subcalendars",
                    str(args.feeds),
                    "--out",
                    str(path),
                    "--manifest",
                    str(path.with_suffix(".json")),
                ],
                check=True,
            )
            manifest = json.loads(path.with_suffix(".json").read_text())
            names = [entry["name"] for entry in manifest["subcalendars"]]
            path.with_suffix(".names.json").write_text(json.dumps(names))
            del manifest
            size = path.stat().st_size / 1e6
            if args.only in ("both", "in"):
                # Time: best of --repeat rounds. Peak RSS: a fresh process doing the work once.
                baseline = run_worker("icalendar", path, args.repeat, args.feeds)
                ours = run_worker("icalproxy", path, args.repeat, args.feeds)
                baseline["peak_rss_mb"] = run_worker("icalendar", path, 1, args.feeds)["peak_rss_mb"]
                ours["peak_rss_mb"] = run_worker("icalproxy", path, 1, args.feeds)["peak_rss_mb"]
                print(_row("in process", events, size, baseline, ours, args.feeds), flush=True)
            if args.only in ("both", "whole"):
                whole = whole_processes(path, args.feeds, args.repeat, args.jobs)
                print(
                    _row("whole", events, size, whole["icalendar"], whole["icalproxy"], args.feeds),
                    flush=True,
                )
                ours = whole["icalproxy"]
                if ours["processes"] > 1:
                    children = ours["processes"] - 1
                    print(
                        f"{'':<10} icalproxy rendered in {ours['processes']:.0f} processes; its RSS is "
                        f"the main process's {ours['main_mb']:.1f} MB + {children:.0f} × "
                        f"{ours['child_mb']:.1f} MB (a child's peak counts again the pages it shares)",
                        flush=True,
                    )


def _row(
    mode: str, events: int, size: float, theirs: dict[str, float], ours: dict[str, float], feeds: int
) -> str:
    return (
        f"{mode:<10} {events:>7} {size:>6.1f} | {theirs['seconds']:>11.3f} {theirs['peak_rss_mb']:>7.1f} | "
        f"{ours['seconds']:>11.3f} {ours['peak_rss_mb']:>7.1f} {feeds:>5} | "
        f"{theirs['seconds'] / ours['seconds']:>7.1f}x {theirs['peak_rss_mb'] / ours['peak_rss_mb']:>8.1f}x"
    )


if __name__ == "__main__":
    main()
