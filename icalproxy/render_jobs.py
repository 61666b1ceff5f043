"""Rendering one run's feeds in several processes, for `icalproxy render --jobs`.

The sources are parsed and the run planned once (core/pipeline.py's RenderPlan); then the
process forks. Every process, the parent too, takes feeds from one queue until it is empty,
renders each from its copy of the plan (the parsed sources are shared with the parent,
copy-on-write) and writes it through the same sink. Each child then sends back its
RenderShare (reports, problems, history) through a pipe, and the parent finishes the run
with all of them, in the rules' order: the feeds, the report and the exit code are those
of a render in one process.

A child that fails or dies is not trusted for anything: the feeds it took are rendered
again in the parent, with a warning. Only the fork start method is used (no re-import, no pickled
sources), and only when no other thread runs: forking a threaded process can copy a lock
that another thread holds.

Each child costs memory: the pages of the parsed sources it touches stop being shared,
and it holds its own feeds' output. That is about the sources' size again per child, so
``auto`` uses more than one process only for sources of a middling size (see auto_jobs).
"""

from __future__ import annotations

import gc
import math
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from icalproxy.core.pipeline import BuildResult, FeedOutput, RenderPlan, RenderShare

# Sources below this render in a few tens of milliseconds: a fork saves nothing.
AUTO_MIN_BYTES = 1_000_000
# Above this, each extra process would add tens of megabytes (see the module docstring):
# auto keeps one process, whose peak is about two and a half times the sources.
AUTO_MAX_BYTES = 16_000_000
AUTO_MAX_JOBS = 4

_CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_cpus(cgroup_root: Path = _CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """CPUs this process may run on: its affinity, bounded by a cgroup v2 CPU quota (a
    container's ``--cpus``), rounded up, as Go and the JVM count them."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _cgroup_quota(cgroup_root: Path, proc_cgroup: Path) -> float | None:
    """This process's cgroup CPU quota in CPUs, or None (no limit, no cgroup): v2's
    ``cpu.max`` ("max 100000", "150000 100000") or v1's ``cpu.cfs_quota_us`` (-1: none) over
    ``cpu.cfs_period_us``. Each is looked for under the process's own cgroup path, then at
    the mount's root (inside a container the path names the host's hierarchy)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        number, controllers, path = parts
        relative = path.strip().lstrip("/")
        if number == "0" and controllers == "":  # v2: one unified hierarchy
            for folder in (cgroup_root / relative, cgroup_root):
                words = _read_words(folder / "cpu.max")
                if words is not None:
                    return _ratio(words[0], words[1]) if len(words) == 2 else None
        elif "cpu" in controllers.split(","):  # v1: the cpu controller's own hierarchy
            for mount in (cgroup_root / "cpu", cgroup_root / controllers):
                for folder in (mount / relative, mount):
                    quota = _read_words(folder / "cpu.cfs_quota_us")
                    period = _read_words(folder / "cpu.cfs_period_us")
                    if quota and period:
                        return _ratio(quota[0], period[0])
    return None


def _read_words(path: Path) -> list[str] | None:
    try:
        return path.read_text().split()
    except OSError:
        return None


def _ratio(quota: str, period: str) -> float | None:
    try:
        value, length = int(quota), int(period)
    except ValueError:
        return None  # "max": no limit
    return value / length if value > 0 and length > 0 else None


def auto_jobs(source_bytes: int, feeds: int, cpus: int) -> int:
    """Processes for ``--jobs auto``: one per usable CPU (at most AUTO_MAX_JOBS, at most one
    per feed) for sources of AUTO_MIN_BYTES to AUTO_MAX_BYTES, else one."""
    if not AUTO_MIN_BYTES <= source_bytes <= AUTO_MAX_BYTES:
        return 1
    return max(1, min(cpus, AUTO_MAX_JOBS, feeds))


def work_order(plan: RenderPlan) -> list[str]:
    """The plan's feeds, the most work first (the series each may show; ties in the rules'
    order): the processes take them in turn, so that the last ones taken are short."""
    names = plan.names
    order = {name: index for index, name in enumerate(names)}
    return sorted(names, key=lambda name: (-plan.cost(name), order[name]))


def can_fork() -> bool:
    """fork exists here and no other thread runs (whose locks a child would inherit held)."""
    threading = sys.modules.get("threading")
    return hasattr(os, "fork") and (threading is None or threading.active_count() == 1)


def render_in_processes(
    plan: RenderPlan,
    jobs: int,
    sink: Callable[[FeedOutput], None],
    warn: Callable[[str], None],
) -> tuple[BuildResult, int]:
    """The run's result, and how many processes rendered it (1 when ``jobs`` is 1, when
    there is a single feed, or when forking is not safe here).

    The feeds wait in a pipe, two bytes each (their index), written before the fork: each
    process takes the next one with a read of two bytes (a pipe hands each read to one
    reader whole) until the pipe is empty. So a process that is slower (a child pays for
    the pages it copies) simply takes fewer feeds."""
    names = plan.names
    processes = min(jobs, len(names))
    if processes < 2 or len(names) > _QUEUE_MAX or not can_fork():
        return plan.finish([plan.render(names, sink)]), 1
    queue_read, queue_write = os.pipe()
    index = {name: position for position, name in enumerate(names)}
    _write_all(queue_write, b"".join(index[name].to_bytes(2, "big") for name in work_order(plan)))
    for stream in (sys.stdout, sys.stderr):  # nothing buffered is written twice
        stream.flush()
    frozen = gc.isenabled()
    if frozen:
        gc.freeze()  # a collection in a child would touch (and so copy) every object
    children: list[_Child] = []
    try:
        taken = _taken(queue_read, names)
        for _ in range(processes - 1):
            children.append(_Child.start(plan, taken, sink))
        if frozen:
            gc.unfreeze()
            frozen = False
        shares = [plan.render(taken, sink)]
        failures = []
        for child in children:
            share, failure = child.result()
            if share is None:
                failures.append(failure)
            else:
                shares.append(share)
        rendered = {feed.name for share in shares for feed in share.feeds}
        lost = [name for name in names if name not in rendered]
        if failures:
            again = f"; their {len(lost)} feed(s) were rendered here" if lost else ""
            warn(f"{len(failures)} render process(es) failed ({'; '.join(failures)}){again}")
        if lost:  # taken by a child that failed: its files and share are not trusted
            shares.append(plan.render(lost, sink))
    finally:
        if frozen:
            gc.unfreeze()
        os.close(queue_read)
        for child in children:
            child.reap()
    return plan.finish(shares), processes


# Feed indexes in the queue are two bytes, and the whole queue must fit in a pipe's buffer
# (64 KiB on Linux) before any reader exists. More feeds than this render in one process.
_QUEUE_MAX = 32_768


def _taken(queue: int, names: list[str]) -> Iterator[str]:
    """The feeds this process takes from the queue, one at a time, until it is empty."""
    while len(entry := os.read(queue, 2)) == 2:
        yield names[int.from_bytes(entry, "big")]


class _Child:
    """A forked process rendering the feeds it takes, and the read end of its result pipe."""

    def __init__(self, pid: int, pipe: int) -> None:
        self.pid, self.pipe = pid, pipe
        self.status: int | None = None

    @classmethod
    def start(cls, plan: RenderPlan, feeds: Iterator[str], sink: Callable[[FeedOutput], None]) -> _Child:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns, never runs the parent's cleanup
            code = 1
            try:
                os.close(read_end)
                import pickle  # noqa: PLC0415  (only a render in processes needs it)

                try:
                    payload, rendered = pickle.dumps(plan.render(feeds, sink), pickle.HIGHEST_PROTOCOL), True
                except BaseException as exc:  # noqa: BLE001  (reported to the parent, which renders again)
                    payload, rendered = pickle.dumps(f"{type(exc).__name__}: {exc}"), False
                _write_all(write_end, payload)
                code = 0 if rendered else 1
            finally:
                os._exit(code)
        os.close(write_end)
        return cls(pid, read_end)

    def result(self) -> tuple[RenderShare | None, str]:
        """Its share, or None and why not (after it has exited)."""
        chunks = []
        while chunk := os.read(self.pipe, 1 << 20):
            chunks.append(chunk)
        self.reap()
        payload = b"".join(chunks)
        import pickle  # noqa: PLC0415

        try:
            # Our own fork's bytes: nothing else can write to this pipe.
            value = pickle.loads(payload) if payload else None  # noqa: S301
        except Exception as exc:  # noqa: BLE001  (a torn message: the child died writing it)
            value = f"unreadable result: {type(exc).__name__}"
        if self.status == 0 and isinstance(value, RenderShare):
            return value, ""
        if isinstance(value, str):
            return None, value
        status = self.status or 0
        if os.WIFSIGNALED(status):
            return None, f"killed by signal {os.WTERMSIG(status)}"
        return None, f"exit status {os.waitstatus_to_exitcode(status)}"

    def reap(self) -> None:
        """Close the pipe (a child still writing gets EPIPE and exits) and wait for it."""
        if self.pipe >= 0:
            os.close(self.pipe)
            self.pipe = -1
        if self.status is None:
            _, self.status = os.waitpid(self.pid, 0)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.close(fd)
