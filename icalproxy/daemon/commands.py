"""CLI commands of the daemon: serve, token new/list/revoke, accept-shrink, feeds, migrate, push.

Each opens the configured store (SQLite or PostgreSQL) for the length of the command, so they
work beside running daemons: a change is seen by every daemon at its next request."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from icalproxy.config.load import load_config
from icalproxy.config.model import Config
from icalproxy.config.validate import parse_listen
from icalproxy.errors import ConfigError, TokenError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from icalproxy.daemon.store import SqlStore


def add_daemon_commands(
    commands: Any,
    config_arg: Callable[[argparse.ArgumentParser], None],
    wanted: Callable[[str], bool] = lambda _name: True,
) -> None:
    """The daemon's commands, those ``wanted`` (by name) of them."""
    if wanted("serve"):
        serve = commands.add_parser("serve", help="run the daemon: pull, render and serve feeds")
        config_arg(serve)
        serve.add_argument("--listen", metavar="HOST:PORT", help="overrides server.listen")
        serve.add_argument(
            "--ops-listen", metavar="HOST:PORT", help="overrides server.ops_listen (/readyz, /metrics)"
        )
        serve.add_argument("--log-format", choices=("auto", "json", "console"), default="auto")
        serve.set_defaults(handler=cmd_serve)

    if wanted("token"):
        token = commands.add_parser("token", help="manage secret subscribe URLs")
        token_commands = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
        new = token_commands.add_parser("new", help="create a token for a feed; prints its URLs once")
        config_arg(new)
        new.add_argument("feed", help="feed name")
        new.add_argument("--label", default="", help="who or what it is for (e.g. 'Alice, iPhone')")
        new.add_argument(
            "--replace",
            action="store_true",
            help="revoke the feed's active tokens with the same label first (rotation in one step)",
        )
        new.set_defaults(handler=cmd_token_new)
        listing = token_commands.add_parser("list", help="list tokens (never the secrets)")
        config_arg(listing)
        listing.set_defaults(handler=cmd_token_list)
        revoke = token_commands.add_parser("revoke", help="revoke a token by its id; effective at once")
        config_arg(revoke)
        revoke.add_argument("id", help="token id from 'token list'")
        revoke.set_defaults(handler=cmd_token_revoke)

    if wanted("accept-shrink"):
        accept = commands.add_parser(
            "accept-shrink",
            help="accept a source's sudden shrink at its next pull, or a feed's emptying (guards)",
        )
        config_arg(accept)
        accept.add_argument("source", metavar="SOURCE|FEED", help="source name, or feed name")
        accept.set_defaults(handler=cmd_accept_shrink)

    if wanted("status"):
        status = commands.add_parser("status", help="each job's client-facing status, since when and why")
        config_arg(status)
        status.add_argument("--feed", required=True, help="the feed to show")
        status.set_defaults(handler=cmd_status)

    if wanted("push"):
        push = commands.add_parser("push", help="mirror feeds into their CalDAV calendars (push: targets)")
        config_arg(push)
        push.add_argument("--feed", action="append", help="only this feed (repeatable)")
        push.add_argument("--once", action="store_true", required=True, help="one sync per target, then exit")
        push.set_defaults(handler=cmd_push)

    if wanted("feeds"):
        feeds = commands.add_parser("feeds", help="list feeds: sources, profile, events, size, tokens")
        config_arg(feeds)
        feeds.set_defaults(handler=cmd_feeds)

    if wanted("migrate"):
        migrate = commands.add_parser("migrate", help="bring the state store's schema up to date")
        config_arg(migrate)
        migrate.set_defaults(handler=cmd_migrate)


def cmd_serve(args: argparse.Namespace) -> int:
    from icalproxy.daemon.app import run  # noqa: PLC0415  (aiohttp/apscheduler only here)
    from icalproxy.logs import setup_logging  # noqa: PLC0415

    config = load_config(args.config)
    host, port = _listen_arg(args.listen, "--listen") or (config.server.host, config.server.port)
    ops = _listen_arg(args.ops_listen, "--ops-listen") or (config.server.ops_host, config.server.ops_port)
    if (host, port) != (config.server.host, config.server.port) and not config.server.public_url:
        print(
            f"note: --listen {host}:{port} differs from server.listen and server.public_url is not set: "
            "URLs printed by `token new` use server.listen. Set server.public_url (or server.listen).",
            file=sys.stderr,
        )
    setup_logging(json={"auto": None, "json": True, "console": False}[args.log_format])
    run(config, host, port, ops)
    return 0


def _listen_arg(text: str | None, flag: str) -> tuple[str, int] | None:
    if not text:
        return None
    listen = parse_listen(text)
    if listen is None:
        raise ConfigError([f"{flag} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080"])
    return listen


@contextmanager
def _store(config: Config, *, migrate: bool = True) -> Iterator[SqlStore]:
    from icalproxy.daemon.store import open_sql_store  # noqa: PLC0415

    store = open_sql_store(config.store, config.state_dir, migrate=migrate)
    try:
        yield store
    finally:
        store.close()


def feed_urls(config: Config, token: str) -> tuple[str, str]:
    """``server.public_url``, else the configured listen address (what `serve` uses unless
    `--listen` overrides it: a one-off override cannot reach the URLs printed here)."""
    host = config.server.host
    host = f"[{host}]" if ":" in host else host
    base = config.server.public_url or f"http://{host}:{config.server.port}"
    https = f"{base}/feed/{token}.ics"
    return https, "webcal://" + https.split("://", 1)[1]


def page_url(config: Config, token: str) -> str:
    """The client page at the feed's own secret (icalproxy/daemon/pages.py)."""
    base = feed_urls(config, token)[0].rsplit("/feed/", 1)[0]
    return f"{base}/c/{token}"


def cmd_token_new(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.feed not in config.rules.feeds:
        known = ", ".join(sorted(config.rules.feeds))
        raise ConfigError([f"{args.config}: unknown feed {args.feed!r} (known: {known})"])
    with _store(config) as store:
        replaced = [
            store.revoke_token(old.id)[0].id
            for old in (store.tokens() if args.replace else ())
            if old.feed == args.feed and old.label == args.label and old.revoked is None
        ]
        record, token = store.create_token(args.feed, args.label)
    https, webcal = feed_urls(config, token)
    print(f"feed {record.feed}, token id {record.id}" + (f" ({record.label})" if record.label else ""))
    print(f"  {https}")
    print(f"  {webcal}")
    print(f"  client page: {page_url(config, token)}", flush=True)
    if replaced:
        print(f"Revoked the token(s) it replaces: {', '.join(replaced)}", file=sys.stderr)
    if not config.server.public_url:
        print(
            f"Note: server.public_url is not set, so these URLs use server.listen ({https.split('/')[2]}); "
            "`serve --listen` does not change them. Set server.public_url to the address clients use.",
            file=sys.stderr,
        )
    print(
        "Shown once: only a hash of the token is stored. Revoke with: "
        f"icalproxy token revoke --config {args.config} {record.id}",
        file=sys.stderr,
    )
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    """Per token (never the token): feed, created, last use and calendar app, status, label.
    Last uses are written by the daemon about once a minute."""
    config = load_config(args.config)
    with _store(config) as store:
        records, uses = store.tokens(), store.token_uses()
    print(f"{'ID':<9} {'FEED':<20} {'CREATED':<21} {'LAST USED':<21} {'APP':<12} {'STATUS':<28} LABEL")
    for record in records:
        status = f"revoked {record.revoked}" if record.revoked else "active"
        use = uses.get(record.id)
        last, app = (_iso(use.last_used), use.agent) if use else ("never", "-")
        print(
            f"{record.id:<9} {record.feed:<20} {record.created:<21} {last:<21} {app:<12} {status:<28} "
            f"{record.label}".rstrip()
        )
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        with _store(config) as store:
            record, already = store.revoke_token(args.id)
    except TokenError:
        print(f"error: no token with id {args.id!r}", file=sys.stderr)
        return 1
    if already:  # said on stderr with exit 1: a script that revokes twice notices
        message = f"token {record.id} of feed {record.feed} was already revoked at {record.revoked}"
        print(message, file=sys.stderr)
        return 1
    else:
        print(f"token {record.id} of feed {record.feed} revoked at {record.revoked}")
    return 0


def cmd_accept_shrink(args: argparse.Namespace) -> int:
    from icalproxy.daemon.emptying import accept_empty  # noqa: PLC0415

    config = load_config(args.config)
    name = args.source
    if name not in config.sources and name not in config.rules.feeds:
        raise ConfigError([f"{args.config}: {name!r} is neither a source nor a feed"])
    if name in config.sources:
        with _store(config) as store:
            store.accept_shrink(name)
        print(f"source {name}: its next pull will be accepted even if it shrank")
    if name in config.rules.feeds:
        accept_empty(config.state_dir, name)
        print(f"feed {name}: if it is held because it would become empty, the daemon serves it empty now")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Render the feed as the daemon would, from the status history in the store (read only),
    and print per job: its client-facing status, since when, and why."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from icalproxy.cli import pull_once  # noqa: PLC0415
    from icalproxy.core.pipeline import parse_sources, render_feeds  # noqa: PLC0415
    from icalproxy.daemon import history  # noqa: PLC0415
    from icalproxy.installation import installation_key  # noqa: PLC0415

    config = load_config(args.config)
    feed = config.rules.feeds.get(args.feed)
    if feed is None:
        known = ", ".join(sorted(config.rules.feeds))
        raise ConfigError([f"{args.config}: unknown feed {args.feed!r} (known: {known})"])
    with _store(config) as store:
        stamps, statuses = history.decode(store.render_state())
    snapshots, errors = pull_once(config, only=feed.sources)
    for error in errors:
        print(f"source {error}", file=sys.stderr)
    now = datetime.now(UTC).replace(tzinfo=None)
    parsed = parse_sources(snapshots, installation_key(config.state_dir), valid_utf8=True)
    result = render_feeds(parsed, config.rules, now, [feed.name], stamps, statuses)
    if feed.name not in result.feeds:
        print("\n".join(result.report.summary_lines()), file=sys.stderr)
        return 1
    body = result.feeds[feed.name].body.decode("utf-8", "replace").replace("\r\n ", "")
    shown_uids = {line[4:] for line in body.split("\r\n") if line.startswith("UID:")}
    rows = sorted((key, record) for key, record in result.statuses.items() if key[1] in shown_uids)
    print(f"{'SOURCE':<10} {'UID':<28} {'OCCURRENCE':<17} {'STATUS':<22} {'SINCE':<21} WHY")
    for (source, uid, occurrence), record in rows:
        label = record.shown.label if record.shown is not None else "(none)"
        since = _stamp_iso(record.since) if record.shown is not None else "-"
        print(f"{source:<10} {uid:<28} {occurrence or '-':<17} {label:<22} {since:<21} {record.reason}")
    return 1 if errors else 0


def _stamp_iso(stamp: str) -> str:
    """``20261201T080000Z`` → ``2026-12-01T08:00:00Z``."""
    if len(stamp) != 16:
        return stamp
    return f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}Z"


def cmd_push(args: argparse.Namespace) -> int:
    """Pull, render and sync every push target once; the daemon does the same continuously."""
    import contextlib  # noqa: PLC0415
    import os  # noqa: PLC0415
    import socket  # noqa: PLC0415

    from icalproxy.cli import pull_once, utc_now  # noqa: PLC0415
    from icalproxy.core.pipeline import parse_sources, render_feeds  # noqa: PLC0415
    from icalproxy.daemon.push import run_once  # noqa: PLC0415
    from icalproxy.daemon.store import is_postgres  # noqa: PLC0415

    config = load_config(args.config)
    names = args.feed or [name for name, feed in config.rules.feeds.items() if feed.push]
    problems = [f"{args.config}: unknown feed {name!r}" for name in names if name not in config.rules.feeds]
    problems += [
        f"{config.rules.feeds[name].line}: feed {name!r} has no push targets"
        for name in names
        if name in config.rules.feeds and not config.rules.feeds[name].push
    ]
    if problems or not names:
        raise ConfigError(problems or [f"{args.config}: no feed has push targets"])
    feeds = [config.rules.feeds[name] for name in names]
    snapshots, errors = pull_once(config, only=sorted({s for feed in feeds for s in feed.sources}))
    for error in errors:
        print(f"source {error}", file=sys.stderr)
    if errors:
        print("not pushing: a source failed, and a partial feed would delete events", file=sys.stderr)
        return 1
    result = render_feeds(parse_sources(snapshots, valid_utf8=True), config.rules, utc_now(), names)
    bodies = {name: result.feeds[name].body for name in names}
    with contextlib.ExitStack() as stack:
        state = leases = None
        if is_postgres(config.store):  # replicas' shared push state, and their leases
            from icalproxy.daemon.push import PushLeases  # noqa: PLC0415
            from icalproxy.daemon.push_state import SharedPushState  # noqa: PLC0415

            store = stack.enter_context(_store(config))
            state = SharedPushState.importing(store, config.state_dir)
            leases = PushLeases(store, f"cli:{socket.gethostname()}:{os.getpid()}")
        failed = 0
        for name, target, outcome in run_once(config, bodies, state=state, leases=leases):
            if isinstance(outcome, Exception):
                failed += 1
                print(f"push {name} ({target}): error: {outcome}", file=sys.stderr)
                continue
            counts = ", ".join(f"{key} {value}" for key, value in outcome.as_dict().items())
            print(f"push {name} ({target}): {counts}")
    return 1 if failed else 0


def cmd_feeds(args: argparse.Namespace) -> int:
    """Every configured feed with what the store holds of it (the daemon's last render)."""
    config = load_config(args.config)
    with _store(config) as store:
        versions = {meta.feed: meta for meta in reversed(store.feed_versions())}  # newest wins
        active: dict[str, int] = {}
        for record in store.tokens():
            if record.revoked is None:
                active[record.feed] = active.get(record.feed, 0) + 1
    print(
        f"{'FEED':<20} {'PROFILE':<14} {'EVENTS':>6} {'BYTES':>9} {'LAST CHANGE':<21} {'TOKENS':>6} SOURCES"
    )
    for name, feed in config.rules.feeds.items():
        meta = versions.get(name)
        events, size, changed = (
            (str(meta.events), str(meta.bytes), _iso(meta.last_modified))
            if meta
            else ("-", "-", "never rendered")
        )
        print(
            f"{name:<20} {feed.profile:<14} {events:>6} {size:>9} {changed:<21} {active.get(name, 0):>6} "
            + ", ".join(feed.sources)
        )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from icalproxy.daemon.store import LATEST, import_legacy  # noqa: PLC0415

    config = load_config(args.config)
    with _store(config, migrate=False) as store:
        before = store.schema_version()
        applied = store.migrate()
        imported = import_legacy(store, config.state_dir)
        where = store.db.where
    if applied:
        print(f"store {where}: schema {before} → {LATEST} (applied {', '.join(map(str, applied))})")
    else:
        print(f"store {where}: schema {before} is current")
    if imported:
        counts = ", ".join(f"{count} {what}" for what, count in imported.items())
        print(f"imported the state files of {config.state_dir} ({counts}); they are left in place")
    return 0


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
