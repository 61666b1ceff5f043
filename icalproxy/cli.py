"""Command line: a thin layer over config loading, fetching, the core and the daemon.

Exceptions become messages and exit codes in ``main`` only:
0 ok · 1 something failed at run time (a source, a write) · 2 bad config or usage.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from icalproxy import __version__
from icalproxy.config.load import load_config
from icalproxy.config.model import Config
from icalproxy.core.parse import ParsedSource
from icalproxy.core.pipeline import FeedOutput, RenderPlan, parse_sources, render_feeds
from icalproxy.errors import ConfigError, FetchError, IcalproxyError
from icalproxy.fetch import SourceFetcher, Validators, read_file_source
from icalproxy.installation import installation_key
from icalproxy.render_jobs import auto_jobs, render_in_processes, usable_cpus
from icalproxy.storage import atomic_write, safe_child

if TYPE_CHECKING:  # conflicts.py is imported by the commands that use it (start-up time)
    from icalproxy.core.conflicts import FeedConflicts, Job

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


# Every command's name, in help order (tests check it against the full parser): this
# module's own, then the daemon's (daemon/commands.py).
_OWN_COMMANDS = ("check", "render", "preview", "conflicts")
COMMANDS = (
    *_OWN_COMMANDS,
    "serve",
    "token",
    "accept-shrink",
    "status",
    "push",
    "feeds",
    "migrate",
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """All commands' parsers, or only ``command``'s: the one a command line names needs no
    other (building them all is a few milliseconds of every command's start-up). Help and
    an unknown command get them all."""

    def wanted(name: str) -> bool:
        return command is None or name == command

    parser = argparse.ArgumentParser(
        prog="icalproxy",
        description="Leak-free per-client calendar feeds from internal iCalendar feeds.",
    )
    parser.add_argument("--version", action="version", version=f"icalproxy {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    if wanted("check"):
        check = commands.add_parser("check", help="validate the config and every rules file")
        _config_arg(check)
        check.add_argument(
            "--sources",
            action="store_true",
            help="also pull every source once and report parse problems",
        )

    if wanted("render"):
        render = commands.add_parser("render", help="write DIR/<feed>.ics for every feed")
        _config_arg(render)
        render.add_argument("--out", required=True, type=Path, help="output folder")
        render.add_argument("--feed", action="append", help="only this feed (repeatable)")
        render.add_argument("--report", type=Path, help="also write the run report as JSON here")
        render.add_argument(
            "--jobs",
            type=_jobs,
            default=None,
            metavar="N",
            help="processes that render feeds: a number, or auto (default: one per CPU, up to 4, "
            "for sources of 1 to 16 MB; else one, the least memory)",
        )
        _now_arg(render)

    if wanted("preview"):
        preview = commands.add_parser("preview", help="what one client sees, beside the internal events")
        _config_arg(preview)
        preview.add_argument("--feed", required=True, help="feed name")
        preview.add_argument(
            "--format", choices=("agenda", "ics", "html"), default="agenda", help="html: the client page"
        )
        preview.add_argument("--days", type=_positive_days, default=60, help="agenda length (default 60)")
        _now_arg(preview)

    if wanted("conflicts"):
        conflicts = commands.add_parser(
            "conflicts", help="double bookings, travel gaps and off-shift jobs in feeds with `conflicts:`"
        )
        _config_arg(conflicts)
        conflicts.add_argument("--feed", action="append", help="only this feed (repeatable)")
        conflicts.add_argument("--format", choices=("text", "json"), default="text")
        _now_arg(conflicts)

    if command is None or command not in _OWN_COMMANDS:
        from icalproxy.daemon.commands import add_daemon_commands  # noqa: PLC0415

        add_daemon_commands(commands, _config_arg, wanted)
    return parser


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="config YAML file")


def _now_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--now",
        type=_parse_now,
        default=None,
        help="pretend it is this UTC time (YYYY-MM-DD[THH:MM]); default: now",
    )


def _positive_days(text: str) -> int:
    try:
        days = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from exc
    if not 1 <= days <= 3660:
        raise argparse.ArgumentTypeError(f"must be from 1 to 3660 days, not {days}")
    return days


def _jobs(text: str) -> int | None:
    """``--jobs``: a whole number of processes from 1, or ``auto`` (None)."""
    if text.strip().lower() == "auto":
        return None
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of processes from 1, or auto, not {text!r}")
    return jobs


def _parse_now(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date/time: {text!r}") from exc
    return (
        moment.replace(tzinfo=None) if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
    )


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# One-shot commands that parse and render: their parsed sources and rendered events hold no
# reference cycles, and the cyclic collector would walk them again and again for nothing
# (about 1.5 % of `render`'s run time; peak memory is the same). The daemon keeps it.
_WITHOUT_CYCLE_COLLECTION = frozenset({"render", "check", "preview", "conflicts"})


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    named = words[0] if words and words[0] in COMMANDS else None
    args = build_parser(named).parse_args(words)
    collecting = gc.isenabled()
    if args.command in _WITHOUT_CYCLE_COLLECTION:
        gc.disable()
    try:
        return int(args.handler(args)) if hasattr(args, "handler") else _dispatch(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s){_UNDONE.get(_command(args), '.')}", file=sys.stderr)
        return EXIT_CONFIG
    except IcalproxyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    finally:
        if collecting:
            gc.enable()


def run() -> NoReturn:
    """The installed command: ``main``, then a quick exit. A command's parsed sources and
    rendered feeds are still alive when it returns; the interpreter would free them object by
    object on the way out (tens of milliseconds for a large feed) for nothing. So once every
    exit handler has run and the output is flushed, the process ends at once, as long as no
    other thread is running (those are waited for by the normal exit)."""
    code = main()
    threading = sys.modules.get("threading")
    if threading is None or threading.active_count() == 1:
        atexit._run_exitfuncs()  # logging's flush among them
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # a closed pipe: let the normal exit report it
            sys.exit(code)
        os._exit(code)
    sys.exit(code)


# What a config problem stopped, said only by commands that would have changed something.
_UNDONE = {
    "render": "; nothing was written.",
    "serve": "; the daemon was not started.",
    "token new": "; nothing was changed.",
    "token revoke": "; nothing was changed.",
    "accept-shrink": "; nothing was changed.",
}


def _command(args: argparse.Namespace) -> str:
    action = getattr(args, "token_command", None)
    return f"{args.command} {action}" if action else str(args.command)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "check":
        return cmd_check(args)
    if args.command == "render":
        return cmd_render(args)
    if args.command == "conflicts":
        return cmd_conflicts(args)
    return cmd_preview(args)


def cmd_check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    rules = config.rules
    print(
        f"{args.config}: OK — {len(config.sources)} source(s), {len(rules.feeds)} feed(s), "
        f"{len(rules.profiles)} profile(s), {len(rules.statuses.entries)} status value(s), "
        f"{len(config.watched_files) - 1} rules file(s)"
    )
    for warning in rules.warnings:
        print(f"warning: {warning}")
    if not args.sources:
        return EXIT_OK
    snapshots, errors = pull_once(config)
    for error in errors:
        print(f"source {error}", file=sys.stderr)
    parsed_sources = parse_sources(snapshots, valid_utf8=True)
    for parsed in parsed_sources.values():
        print(
            f"source {parsed.source}: {parsed.vevents} VEVENT(s), {len(parsed.series)} UID(s), "
            f"{len(parsed.problems)} problem(s)"
        )
        for problem in parsed.problems[:20]:
            print(f"  {problem}")
    print_unmatched(config, parsed_sources, utc_now())
    return EXIT_FAILED if errors else EXIT_OK


def print_unmatched(config: Config, parsed: dict[str, ParsedSource], now: datetime) -> int:
    """Rules that match nothing (a typo, a case mismatch): warnings, with "did you mean"."""
    report = render_feeds(parsed, config.rules, now).report
    count = 0
    for name, feed in config.rules.feeds.items():
        feed_report = report.feeds.get(name)
        if feed_report is None or not feed_report.unmatched:
            continue
        for note in feed_report.notes[-feed_report.unmatched :]:  # report_unmatched adds them last
            text = feed_report.details.get(note, note)
            print(f"{feed.line}: warning: feed {name}: {text}", file=sys.stderr)
            count += 1
    return count


def cmd_render(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    unknown = [name for name in args.feed or () if name not in config.rules.feeds]
    if unknown:
        raise ConfigError([f"{args.config}: unknown feed {name!r}" for name in unknown])
    snapshots, errors = pull_once(config)
    for error in errors:
        print(f"source {error}", file=sys.stderr)
    key = installation_key(config.state_dir)
    parsed = parse_sources(snapshots, key, valid_utf8=True)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    def write(feed: FeedOutput) -> None:  # atomic for readers; a rerun redoes it all
        atomic_write(safe_child(out, feed.name, ".ics"), feed.body, mode=0o644, durable=False)

    plan = RenderPlan(parsed, config.rules, args.now or utc_now(), args.feed)
    jobs = args.jobs
    if jobs is None:
        jobs = auto_jobs(sum(map(len, snapshots.values())), len(plan.names), usable_cpus())
    result, processes = render_in_processes(
        plan, jobs, write, lambda text: print(f"warning: {text}", file=sys.stderr)
    )
    for line in result.report.summary_lines():
        print(line)
    print(
        f"wrote {len(result.rendered)} feed(s) to {out}"
        + (f" ({processes} processes)" if processes > 1 else "")
    )
    if args.report:
        import json  # noqa: PLC0415  (imported when first needed: start-up)

        atomic_write(args.report, json.dumps(result.report.as_dict(), indent=2).encode(), mode=0o644)
    return EXIT_FAILED if errors else EXIT_OK


def cmd_preview(args: argparse.Namespace) -> int:
    from icalproxy.preview import agenda  # noqa: PLC0415  (icalendar import is slow)

    config = load_config(args.config)
    feed = config.rules.feeds.get(args.feed)
    if feed is None:
        known = ", ".join(sorted(config.rules.feeds))
        raise ConfigError([f"{args.config}: unknown feed {args.feed!r} (known: {known})"])
    snapshots, errors = pull_once(config, only=feed.sources)
    for error in errors:
        print(f"source {error}", file=sys.stderr)
    key = installation_key(config.state_dir)
    parsed: dict[str, ParsedSource] = parse_sources(snapshots, key, valid_utf8=True)
    now = args.now or utc_now()
    result = render_feeds(parsed, config.rules, now, [feed.name])
    output = result.feeds.get(feed.name)
    if output is None:
        print("\n".join(result.report.summary_lines()), file=sys.stderr)
        return EXIT_FAILED
    if args.format == "ics":
        sys.stdout.buffer.write(output.body)
        return EXIT_FAILED if errors else EXIT_OK
    if args.format == "html":
        sys.stdout.buffer.write(preview_page(config, feed.name, output.body, now))
        return EXIT_FAILED if errors else EXIT_OK
    from icalproxy.core.conflicts import find_conflicts  # noqa: PLC0415

    found = find_conflicts(feed.name, output.body, feed.conflicts, now) if feed.conflicts else None
    lines = agenda(feed.name, feed.title, feed.profile, output.body, parsed, now, args.days, found)
    lines += ["", *result.report.summary_lines()]
    print("\n".join(lines))
    return EXIT_FAILED if errors else EXIT_OK


def preview_page(config: Config, feed_name: str, body: bytes, now: datetime) -> bytes:
    """The client page as /c/<token> serves it, with a placeholder in place of the token."""
    from icalproxy.daemon.commands import feed_urls  # noqa: PLC0415
    from icalproxy.page import render_page, work_in_progress  # noqa: PLC0415

    feed = config.rules.feeds[feed_name]
    work = work_in_progress(body, now, past_days=feed.page_past_days, timezone=feed.timezone)
    https = feed_urls(config, PREVIEW_TOKEN)[0]
    return render_page(title=feed.title, feed_url=https, work=work, locale=feed.locale, now=now)


PREVIEW_TOKEN = "YOUR-SECRET-TOKEN"  # noqa: S105 - a placeholder shown on offline previews


def conflict_feeds(config: Config, wanted: Sequence[str] | None) -> list[str]:
    """The feeds to check: those named (each must have ``conflicts:``), else all that have it."""
    feeds = config.rules.feeds
    if not wanted:
        names = [name for name, feed in feeds.items() if feed.conflicts is not None]
        if not names:
            raise ConfigError([f"{config.path}: no feed has a `conflicts:` section"])
        return names
    problems = []
    for name in wanted:
        if name not in feeds:
            problems.append(f"{config.path}: unknown feed {name!r} (known: {', '.join(sorted(feeds))})")
        elif feeds[name].conflicts is None:
            problems.append(f"{feeds[name].line}: feed {name!r} has no `conflicts:` section")
    if problems:
        raise ConfigError(problems)
    return list(dict.fromkeys(wanted))


def find_feed_conflicts(
    config: Config, names: Sequence[str], now: datetime
) -> tuple[dict[str, FeedConflicts], dict[str, ParsedSource], list[str]]:
    """Pull the sources once, render the feeds and find their conflicts; errors as text."""
    from icalproxy.core.conflicts import find_conflicts  # noqa: PLC0415

    sources = {source for name in names for source in config.rules.feeds[name].sources}
    snapshots, errors = pull_once(config, only=sorted(sources))
    parsed = parse_sources(snapshots, valid_utf8=True)
    result = render_feeds(parsed, config.rules, now, names)
    problems = [f"source {error}" for error in errors]
    found = {}
    for name in names:
        output = result.feeds.get(name)
        rules = config.rules.feeds[name].conflicts
        if output is None or rules is None:
            notes = result.report.feeds[name].notes if name in result.report.feeds else []
            problems.append(f"feed {name}: " + ("; ".join(notes) or "not rendered"))
            continue
        found[name] = find_conflicts(name, output.body, rules, now)
    return found, parsed, problems


def cmd_conflicts(args: argparse.Namespace) -> int:
    from icalproxy.core.conflicts import as_dict as conflict_dict  # noqa: PLC0415
    from icalproxy.core.conflicts import describe, internal_origin, zone_named  # noqa: PLC0415

    config = load_config(args.config)
    names = conflict_feeds(config, args.feed)
    now = args.now or utc_now()
    found, parsed, problems = find_feed_conflicts(config, names, now)
    for problem in problems:
        print(problem, file=sys.stderr)

    def origin(job: Job) -> tuple[str, int] | None:
        return internal_origin(job, parsed)

    if args.format == "json":
        document = {
            name: {
                "zone": report.zone,
                "window": [f"{moment:%Y-%m-%dT%H:%M:%SZ}" for moment in report.window],
                "jobs": report.jobs,
                "by_kind": report.by_kind(),
                "notes": report.notes,
                "conflicts": [
                    conflict_dict(c, zone_named(report.zone) or UTC, origin) for c in report.conflicts
                ],
            }
            for name, report in found.items()
        }
        import json  # noqa: PLC0415  (imported when first needed: start-up)

        print(json.dumps({"feeds": document}, indent=2, ensure_ascii=False))
    else:
        for report in found.values():
            zone = zone_named(report.zone) or UTC
            for conflict in report.conflicts:
                print(describe(conflict, zone, origin))
        for name, report in found.items():
            low, high = report.window
            print(
                f"{name}: {len(report.conflicts)} conflict(s) among {report.jobs} job(s) from "
                f"{low:%Y-%m-%d %H:%M} to {high:%Y-%m-%d %H:%M} UTC (local time {report.zone})",
                file=sys.stderr,
            )
            for note in report.notes:
                print(f"  note: {note}", file=sys.stderr)
    if problems or any(report.conflicts for report in found.values()):
        return EXIT_FAILED
    return EXIT_OK


def pull_once(config: Config, only: Sequence[str] | None = None) -> tuple[dict[str, bytes], list[FetchError]]:
    """Fetch every source once (no state, no conditional GET). Failures are returned; every
    body returned passed fetch.check_calendar (UTF-8 included). Files are read directly;
    asyncio and aiohttp start only when an http(s) source is wanted."""
    wanted = [source for name, source in config.sources.items() if only is None or name in only]
    snapshots: dict[str, bytes] = {}
    errors: list[FetchError] = []
    for source in wanted:
        if source.is_file:
            try:
                body = read_file_source(source, Validators()).body
            except FetchError as exc:
                errors.append(exc)
                continue
            if body is not None:
                snapshots[source.name] = body
    remote = [source for source in wanted if not source.is_file]
    if not remote:
        return snapshots, errors
    import asyncio  # noqa: PLC0415

    import aiohttp  # noqa: PLC0415

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            fetcher = SourceFetcher(session)
            for source in remote:
                try:
                    fetched = await fetcher.fetch(source, Validators())
                except FetchError as exc:
                    errors.append(exc)
                    continue
                if fetched.body is not None:
                    snapshots[source.name] = fetched.body

    asyncio.run(run())
    return {name: snapshots[name] for name in config.sources if name in snapshots}, errors


if __name__ == "__main__":  # pragma: no cover
    run()
