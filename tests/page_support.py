"""A daemon serving two client feeds from a generated Teamup-shaped file, for the page tests."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.harness import Daemon, create_token
from tests.support import ROOT, generated_feed


@dataclass
class PageSite:
    daemon: Daemon
    config: Path
    manifest: dict
    tokens: dict[str, str]  # feed → token

    def page(self, feed: str) -> str:
        return f"{self.daemon.base}/c/{self.tokens[feed]}"

    def feed(self, feed: str) -> str:
        return f"{self.daemon.base}/feed/{self.tokens[feed]}.ics"


def start_site(tmp: Path, events: int = 300) -> PageSite:
    data, manifest = generated_feed(events, seed=11, subcalendars=6)
    (tmp / "teamup.ics").write_bytes(data)
    names = [entry["name"] for entry in manifest["subcalendars"]]
    quoted = [name.replace('"', '\\"') for name in names]
    config = tmp / "config.yaml"
    config.write_text(
        "state_dir: state\n"
        "sources:\n"
        f"  teamup: {{url: '{tmp / 'teamup.ics'}', every: 1h}}\n"
        "feeds:\n"
        f'  alpha: {{title: "Alpha & Co", where: {{subcalendar: "{quoted[0]}"}}, page_past_days: 30}}\n'
        f"  beta: {{title: Beta, locale: de, timezone: Europe/Berlin,\n"
        f"         where: {{subcalendar: \"{quoted[1]}\"}}}}\n"
        f'  gamma: {{title: Gamma, locale: fr, where: {{subcalendar: "{quoted[2]}"}}}}\n'
    )
    tokens = {feed: create_token(config, feed, feed) for feed in ("alpha", "beta", "gamma")}
    daemon = Daemon(config, tmp).start()
    return PageSite(daemon, config, manifest, tokens)


def token_id(config: Path, label: str) -> str:
    listing = subprocess.run(
        [sys.executable, "-m", "icalproxy.cli", "token", "list", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return next(line.split()[0] for line in listing.splitlines()[1:] if line.split()[-1] == label)
