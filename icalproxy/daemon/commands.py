"""CLI commands of the daemon: serve and token management."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def add_daemon_commands(commands: Any, config_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    """Registers the daemon's subcommands (none yet)."""
