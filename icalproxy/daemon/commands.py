"""CLI commands of the daemon: serve, token new/list/revoke, accept-shrink, push."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from icalproxy.config.load import load_config
from icalproxy.config.model import Config
from icalproxy.config.validate import parse_listen
from icalproxy.errors import ConfigError, TokenError


def add_daemon_commands(commands: Any, config_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    serve = commands.add_parser("serve", help="run the daemon: pull, render and serve feeds")
    config_arg(serve)
    serve.add_argument("--listen", metavar="HOST:PORT", help="overrides server.listen")
    serve.add_argument("--log-format", choices=("auto", "json", "console"), default="auto")
    serve.set_defaults(handler=cmd_serve)

    token = commands.add_parser("token", help="manage secret subscribe URLs")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    new = token_commands.add_parser("new", help="create a token for a feed; prints its URLs once")
    config_arg(new)
    new.add_argument("feed", help="feed name")
    new.add_argument("--label", default="", help="who or what it is for (e.g. 'Alice, iPhone')")
    new.set_defaults(handler=cmd_token_new)
    listing = token_commands.add_parser("list", help="list tokens (never the secrets)")
    config_arg(listing)
    listing.set_defaults(handler=cmd_token_list)
    revoke = token_commands.add_parser("revoke", help="revoke a token by its id; effective at once")
    config_arg(revoke)
    revoke.add_argument("id", help="token id from 'token list'")
    revoke.set_defaults(handler=cmd_token_revoke)

    accept = commands.add_parser(
        "accept-shrink", help="accept a source's sudden shrink at its next pull (shrink guard)"
    )
    config_arg(accept)
    accept.add_argument("source", help="source name")
    accept.set_defaults(handler=cmd_accept_shrink)

    push = commands.add_parser("push", help="mirror feeds into their CalDAV calendars (push: targets)")
    config_arg(push)
    push.add_argument("--feed", action="append", help="only this feed (repeatable)")
    push.add_argument("--once", action="store_true", required=True, help="one sync per target, then exit")
    push.set_defaults(handler=cmd_push)


def cmd_serve(args: argparse.Namespace) -> int:
    from icalproxy.daemon.app import run  # noqa: PLC0415  (aiohttp/apscheduler only here)
    from icalproxy.logs import setup_logging  # noqa: PLC0415

    config = load_config(args.config)
    host, port = config.server.host, config.server.port
    if args.listen:
        listen = parse_listen(args.listen)
        if listen is None:
            raise ConfigError([f"--listen {args.listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8080"])
        host, port = listen
    setup_logging(json={"auto": None, "json": True, "console": False}[args.log_format])
    run(config, host, port)
    return 0


def _tokens(config: Config) -> Any:
    from icalproxy.daemon.tokens import TokenStore  # noqa: PLC0415

    config.state_dir.mkdir(parents=True, exist_ok=True)
    return TokenStore.in_state_dir(config.state_dir)


def feed_urls(config: Config, token: str) -> tuple[str, str]:
    base = config.server.public_url or f"http://{config.server.host}:{config.server.port}"
    https = f"{base}/feed/{token}.ics"
    return https, "webcal://" + https.split("://", 1)[1]


def cmd_token_new(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.feed not in config.rules.feeds:
        known = ", ".join(sorted(config.rules.feeds))
        raise ConfigError([f"{args.config}: unknown feed {args.feed!r} (known: {known})"])
    record, token = _tokens(config).create(args.feed, args.label)
    https, webcal = feed_urls(config, token)
    print(f"feed {record.feed}, token id {record.id}" + (f" ({record.label})" if record.label else ""))
    print(f"  {https}")
    print(f"  {webcal}", flush=True)
    print(
        "Shown once: only a hash of the token is stored. Revoke with: "
        f"icalproxy token revoke --config {args.config} {record.id}",
        file=sys.stderr,
    )
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    records = _tokens(config).records()
    print(f"{'ID':<9} {'FEED':<20} {'CREATED':<21} {'STATUS':<28} LABEL")
    for record in records:
        status = f"revoked {record.revoked}" if record.revoked else "active"
        print(f"{record.id:<9} {record.feed:<20} {record.created:<21} {status:<28} {record.label}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        record = _tokens(config).revoke(args.id)
    except TokenError:
        print(f"error: no token with id {args.id!r}", file=sys.stderr)
        return 1
    print(f"token {record.id} of feed {record.feed} revoked at {record.revoked}")
    return 0


def cmd_accept_shrink(args: argparse.Namespace) -> int:
    from icalproxy.daemon.state import StateStore  # noqa: PLC0415

    config = load_config(args.config)
    if args.source not in config.sources:
        raise ConfigError([f"{args.config}: unknown source {args.source!r}"])
    StateStore(config.state_dir).accept_shrink(args.source)
    print(f"source {args.source}: its next pull will be accepted even if it shrank")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    """Pull, render and sync every push target once; the daemon does the same continuously."""
    from icalproxy.cli import pull_once, utc_now  # noqa: PLC0415
    from icalproxy.core.pipeline import parse_sources, render_feeds  # noqa: PLC0415
    from icalproxy.daemon.push import run_once  # noqa: PLC0415

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
    result = render_feeds(parse_sources(snapshots), config.rules, utc_now(), names)
    failed = 0
    for name, target, outcome in run_once(config, {name: result.feeds[name].body for name in names}):
        if isinstance(outcome, Exception):
            failed += 1
            print(f"push {name} ({target}): error: {outcome}", file=sys.stderr)
            continue
        counts = ", ".join(f"{key} {value}" for key, value in outcome.as_dict().items())
        print(f"push {name} ({target}): {counts}")
    return 1 if failed else 0
