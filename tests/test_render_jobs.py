"""`icalproxy render --jobs`: feeds rendered in forked processes give the bytes, the report
and the history of a render in one process; a child that fails or dies costs nothing but
time (its feeds are rendered again in the parent); auto picks the processes by CPUs and
the sources' size."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from icalproxy import render_jobs
from icalproxy.config.load import load_config
from icalproxy.core.pipeline import BuildResult, FeedOutput, RenderPlan, parse_sources, render_feeds
from icalproxy.render_jobs import auto_jobs, render_in_processes, usable_cpus, work_order
from tests.support import NOW, ROOT, calendar, generated_feed, rules_from

EXAMPLE = ROOT / "config.example.yaml"

RULES = """
sources: {jobs: {url: x.ics}, office: {url: y.ics}, later: {url: z.ics}}
feeds:
  acme: {title: Acme, from: [jobs, office], where: {subcalendar: "Client: Acme"}}
  beta: {title: Beta, from: [jobs], where: {subcalendar: "Client: Beta"}}
  beta-busy: {title: Beta busy, from: [jobs], profile: busy, where: {subcalendar: "Client: Beta"}}
  typo: {title: Typo, from: [jobs], where: {subcalendar: "Client: Acme Crop"}}
  gamma: {title: Gamma, from: [jobs, office], where: {subcalendar: "Client: Gamma"}}
  waiting: {title: Waiting, from: [later], where: {subcalendar: "Client: Acme"}}
"""

# Problems in several feeds (one event shown by two of them), and in one only.
JOBS = calendar(
    """UID:both
DTSTAMP:20261101T000000Z
DTSTART:20261201T100000Z
DTEND:20261201T090000Z
SUMMARY:Backwards (shown by Acme and Beta)
CATEGORIES:Client: Acme,Client: Beta""",
    """UID:rrule
DTSTAMP:20261101T000000Z
DTSTART:20261202T100000Z
RRULE:FREQ=WEEKLY;COUNT=3;X-NAME=1
SUMMARY:Weekly
CATEGORIES:Client: Beta""",
    """UID:plain
DTSTAMP:20261101T000000Z
DTSTART:20261203T100000Z
DTEND:20261203T110000Z
SUMMARY:Plain\\nStatus: Scheduled
CATEGORIES:Client: Gamma""",
)
OFFICE = calendar(
    """UID:office
DTSTAMP:20261101T000000Z
DTSTART:20261204T100000Z
DTEND:20261204T110000Z
SUMMARY:Office job
CATEGORIES:Client: Acme""",
)
SOURCES = {"jobs": JOBS, "office": OFFICE, "later": None}


@pytest.fixture(autouse=True)
def forking_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pytest worker runs threads of its own (execnet): the children made here only
    render, write files and exit, so the thread guard is lifted for the in-process tests
    (the commands below run it in fresh processes, with the guard)."""
    monkeypatch.setattr(render_jobs, "can_fork", lambda: True)


def written(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def plan_of(sources: dict[str, bytes | None], text: str = RULES) -> RenderPlan:
    parsed = parse_sources({name: data for name, data in sources.items() if data is not None})
    return RenderPlan(parsed, rules_from(text), NOW, stamps={}, statuses={})


def feed_per_subcalendar(manifest: dict[str, Any], *more: str) -> str:
    """Rules for a generated feed (source ``teamup``): a feed per sub-calendar, then ``more``."""
    names = [calendar["name"] for calendar in manifest["subcalendars"]]
    lines = ["sources: {teamup: {url: x.ics}}", "feeds:"]
    lines += [
        f"  f{index}: {{title: t{index}, where: {{subcalendar: {json.dumps(name)}}}}}"
        for index, name in enumerate(names)
    ]
    return "\n".join([*lines, *more]) + "\n"


def render_to(
    folder: Path, plan: RenderPlan, jobs: int, sink: Callable[[FeedOutput], None] | None = None
) -> tuple[BuildResult, int, list[str]]:
    folder.mkdir(exist_ok=True)
    warnings: list[str] = []

    def write(feed: FeedOutput) -> None:
        (folder / f"{feed.name}.ics").write_bytes(feed.body)

    result, processes = render_in_processes(plan, jobs, sink or write, warnings.append)
    return result, processes, warnings


def same_run(one: BuildResult, other: BuildResult) -> None:
    assert one.report.as_dict() == other.report.as_dict()
    assert list(one.report.feeds) == list(other.report.feeds)
    assert one.report.problems == other.report.problems
    assert one.stamps == other.stamps
    assert one.statuses == other.statuses
    assert one.rendered == other.rendered


@pytest.mark.parametrize("jobs", [2, 3, 6])
def test_feeds_rendered_in_processes_equal_one_process(tmp_path: Path, jobs: int) -> None:
    serial, processes, _ = render_to(tmp_path / "one", plan_of(SOURCES), 1)
    assert processes == 1
    parallel, processes, warnings = render_to(tmp_path / "many", plan_of(SOURCES), jobs)
    assert processes == min(jobs, 5) and not warnings  # five feeds have data
    assert written(tmp_path / "one") == written(tmp_path / "many")
    same_run(serial, parallel)
    problems = [str(problem) for problem in parallel.report.problems]
    assert sum("DTEND before DTSTART" in problem for problem in problems) == 1  # one event, two feeds
    assert any("RRULE parts" in problem for problem in problems)
    assert parallel.report.feeds["typo"].unmatched  # the unmatched check saw every feed
    assert "not rendered" in parallel.report.feeds["waiting"].notes[0]
    assert parallel.stamps and parallel.statuses  # the history of every process came back


def test_a_generated_feed_in_two_processes_equals_one(tmp_path: Path) -> None:
    data, manifest = generated_feed(3000, seed=5, subcalendars=12)
    text = feed_per_subcalendar(manifest, "  all: {title: Everything, profile: technician}")
    serial, _, _ = render_to(tmp_path / "one", plan_of({"teamup": data}, text), 1)
    parallel, processes, warnings = render_to(tmp_path / "two", plan_of({"teamup": data}, text), 2)
    assert processes == 2 and not warnings
    assert written(tmp_path / "one") == written(tmp_path / "two")
    same_run(serial, parallel)
    assert (
        serial.report.as_dict()
        == render_feeds(
            parse_sources({"teamup": data}),
            rules_from(text),
            NOW,
            stamps={},
            statuses={},
            sink=lambda _: None,
        ).report.as_dict()
    )


def in_child(parent: int) -> bool:
    return os.getpid() != parent


@pytest.mark.parametrize("how", ["raises", "killed"])
def test_a_failed_child_costs_only_time(tmp_path: Path, how: str) -> None:
    """Its feeds are rendered again in the parent, with a warning; nothing is missing."""
    parent = os.getpid()
    out = tmp_path / "out"

    def sink(feed: FeedOutput) -> None:
        if in_child(parent):
            if how == "raises":
                raise OSError("disk full")
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.1)  # the child's first feed is taken before the parent has them all
        (out / f"{feed.name}.ics").write_bytes(feed.body)

    before = children()
    result, processes, warnings = render_to(out, plan_of(SOURCES), 2, sink)
    no_children_left(before)
    reason = "OSError: disk full" if how == "raises" else f"killed by signal {int(signal.SIGKILL)}"
    assert processes == 2
    assert len(warnings) == 1 and reason in warnings[0] and "were rendered here" in warnings[0]
    serial, _, _ = render_to(tmp_path / "one", plan_of(SOURCES), 1)
    assert written(out) == written(tmp_path / "one")
    same_run(serial, result)


def children() -> set[int]:
    """This process's children, zombies included (a pytest worker may have others)."""
    return {
        int(pid)
        for task in Path("/proc/self/task").iterdir()
        for pid in (task / "children").read_text().split()
    }


def no_children_left(before: set[int]) -> None:
    assert children() <= before  # every render process was waited for


def test_a_failure_in_the_parent_waits_for_the_children_and_is_raised(tmp_path: Path) -> None:
    parent = os.getpid()

    def sink(feed: FeedOutput) -> None:
        if not in_child(parent):
            raise OSError("parent's disk full")
        time.sleep(0.1)  # the parent takes a feed before the children have them all
        (tmp_path / f"{feed.name}.ics").write_bytes(feed.body)

    before = children()
    with pytest.raises(OSError, match="parent's disk full"):
        render_in_processes(plan_of(SOURCES), 3, sink, lambda _: None)
    no_children_left(before)


def test_one_process_when_forking_is_not_safe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.undo()  # the real guard: another thread runs
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        _, processes, _ = render_to(tmp_path, plan_of(SOURCES), 4)
    finally:
        stop.set()
        thread.join()
    assert processes == 1


def test_the_queue_hands_out_the_largest_feeds_first() -> None:
    data, manifest = generated_feed(1500, seed=2, subcalendars=8)
    text = feed_per_subcalendar(
        manifest, "  none: {title: t, where: {subcalendar: nobody}}", "  all: {title: t}"
    )
    plan = plan_of({"teamup": data}, text)
    order = work_order(plan)
    assert sorted(order) == sorted(plan.names)
    assert order[0] == "all" and order[-1] == "none"
    costs = [plan.cost(name) for name in order]
    assert costs == sorted(costs, reverse=True) and costs[0] > costs[1] > 0


def test_every_process_takes_feeds_from_the_queue(tmp_path: Path) -> None:
    """Two processes share 40 feeds: both take some (and a slow child takes fewer)."""
    parent = os.getpid()
    lines = ["sources: {jobs: {url: x.ics}}", "feeds:"]
    lines += [f"  f{index}: {{title: t, where: {{subcalendar: 'Client: Beta'}}}}" for index in range(40)]
    out = tmp_path / "out"
    out.mkdir()

    def sink(feed: FeedOutput) -> None:
        child = in_child(parent)
        if not child:
            time.sleep(0.01)  # a fork takes a moment: the parent would take them all first
        (out / f"{feed.name}.{'child' if child else 'parent'}").write_bytes(feed.body)

    result, processes, warnings = render_to(out, plan_of({"jobs": JOBS}, "\n".join(lines) + "\n"), 2, sink)
    assert processes == 2 and not warnings and len(result.rendered) == 40
    by = [path.suffix for path in out.iterdir()]
    assert len(by) == 40 and {".child", ".parent"} <= set(by)


def test_auto_jobs_by_size_and_cpus() -> None:
    assert auto_jobs(10_000_000, 50, 2) == 2
    assert auto_jobs(10_000_000, 50, 8) == render_jobs.AUTO_MAX_JOBS
    assert auto_jobs(10_000_000, 1, 8) == 1  # one feed: nothing to share out
    assert auto_jobs(10_000_000, 50, 1) == 1
    assert auto_jobs(render_jobs.AUTO_MIN_BYTES - 1, 50, 8) == 1  # done before a fork pays
    assert auto_jobs(render_jobs.AUTO_MAX_BYTES + 1, 50, 8) == 1  # each child would add its size


@pytest.fixture
def cgroup(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    root = tmp_path / "cgroup"
    (root / "box").mkdir(parents=True)
    proc = tmp_path / "proc-cgroup"
    proc.write_text("0::/box\n")
    yield root, proc


@pytest.mark.parametrize(
    ("cpu_max", "limit"), [("max 100000", None), ("150000 100000", 2), ("50000 100000", 1)]
)
def test_usable_cpus_follows_the_cgroup_quota(
    cgroup: tuple[Path, Path], cpu_max: str, limit: int | None
) -> None:
    root, proc = cgroup
    (root / "box" / "cpu.max").write_text(cpu_max + "\n")
    affinity = len(os.sched_getaffinity(0))
    assert usable_cpus(root, proc) == (affinity if limit is None else min(affinity, limit))


@pytest.mark.parametrize(
    ("quota", "folder", "limit"),
    [
        ("-1", "cpu/docker/abc", None),
        ("100000", "cpu/docker/abc", 1),
        ("250000", "cpu", 3),
        ("200000", "cpu,cpuacct", 2),
    ],
)
def test_usable_cpus_follows_a_cgroup_v1_quota(
    tmp_path: Path, quota: str, folder: str, limit: int | None
) -> None:
    """Docker's --cpus on a cgroup v1 host: cfs quota over period, in the process's cgroup or
    at the mount's root (a container sees the host's path in /proc/self/cgroup)."""
    root = tmp_path / "cgroup"
    (root / folder).mkdir(parents=True)
    (root / folder / "cpu.cfs_quota_us").write_text(quota + "\n")
    (root / folder / "cpu.cfs_period_us").write_text("100000\n")
    proc = tmp_path / "proc-cgroup"
    proc.write_text("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n")
    affinity = len(os.sched_getaffinity(0))
    assert usable_cpus(root, proc) == (affinity if limit is None else min(affinity, limit))


def test_usable_cpus_without_a_cgroup_quota(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    assert usable_cpus(tmp_path / "none", tmp_path / "missing") == affinity
    (tmp_path / "v1").write_text("12:cpu,cpuacct:/docker/abc\n0::/\n")
    assert usable_cpus(tmp_path / "none", tmp_path / "v1") == affinity


# ------------------------------------------------------------------ the command


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "icalproxy.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_render_jobs_command_writes_what_one_process_writes(tmp_path: Path) -> None:
    config = load_config(EXAMPLE)
    assert len(config.rules.feeds) > 2
    outputs = {}
    for jobs in ("1", "3"):
        out = tmp_path / f"out-{jobs}"
        report = tmp_path / f"report-{jobs}.json"
        done = run(
            "render",
            "--config",
            str(EXAMPLE),
            "--out",
            str(out),
            "--now",
            "2026-11-25",
            "--jobs",
            jobs,
            "--report",
            str(report),
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        processes = " (3 processes)" if jobs == "3" else ""
        assert done.stdout.splitlines()[-1] == f"wrote {len(config.rules.feeds)} feed(s) to {out}{processes}"
        outputs[jobs] = (written(out), report.read_bytes(), done.stdout.splitlines()[:-1])
    assert outputs["1"] == outputs["3"]


def test_render_auto_keeps_one_process_for_small_sources(tmp_path: Path) -> None:
    done = run("render", "--config", str(EXAMPLE), "--out", str(tmp_path), "--now", "2026-11-25")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].endswith(f"to {tmp_path}")  # the fixtures are a few kB


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_render_jobs_must_be_a_count_or_auto(tmp_path: Path, value: str) -> None:
    done = run("render", "--config", str(EXAMPLE), "--out", str(tmp_path), "--jobs", value)
    assert done.returncode == 2
    assert "--jobs: must be a whole number of processes from 1, or auto" in done.stderr
    assert not any(tmp_path.iterdir())
