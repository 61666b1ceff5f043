"""structlog setup: JSON lines when not on a terminal, readable key=value on one.

Log events, never data: names of sources and feeds, counts, durations. Never property
values, tokens, headers or source URLs (a Teamup URL embeds its secret link key)."""

from __future__ import annotations

import logging
import sys
from urllib.parse import urlsplit

import structlog


def setup_logging(level: str = "INFO", json: bool | None = None) -> None:
    as_json = not sys.stderr.isatty() if json is None else json
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def mask_url(url: str) -> str:
    """Scheme and host only: paths and queries of feed URLs carry secrets."""
    if not url.startswith(("http://", "https://")):
        return "file"
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}/…"
