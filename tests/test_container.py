"""The Dockerfile, checked without a container engine: its essentials by parsing it, and its
install and start steps by running the same commands in a fresh virtual environment."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.harness import free_port, http, stored_feed, wait_until
from tests.support import ROOT


def instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_dockerfile_essentials() -> None:
    steps = instructions()
    keywords = [keyword for keyword, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim")
    user = [rest for keyword, rest in steps if keyword == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    assert ("VOLUME", '["/var/lib/icalproxy"]') in steps
    assert ("EXPOSE", "8080 9090") in steps
    healthcheck = next(rest for keyword, rest in steps if keyword == "HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert json.loads(next(rest for keyword, rest in steps if keyword == "ENTRYPOINT")) == ["icalproxy"]
    command = json.loads(next(rest for keyword, rest in steps if keyword == "CMD"))
    assert command[:3] == ["serve", "--config", "/etc/icalproxy/config.yaml"]
    assert command[command.index("--ops-listen") + 1] == "0.0.0.0:9090"  # published on loopback
    for keyword, rest in steps:
        if keyword == "COPY":
            for source in shlex.split(rest)[:-1]:
                assert (ROOT / source).exists(), source


@pytest.mark.slow
def test_install_and_start_steps_in_a_fresh_venv(tmp_path: Path) -> None:
    """``pip install .`` then the container's command, with its paths under tmp_path."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(ROOT)],
        check=True,
        timeout=600,
    )
    etc = tmp_path / "etc" / "icalproxy"
    etc.mkdir(parents=True)
    shutil.copy(ROOT / "config.example.yaml", etc / "config.yaml")
    shutil.copytree(ROOT / "rules", etc / "rules")
    shutil.copytree(ROOT / "fixtures", etc / "fixtures")
    port, ops_port = free_port(), free_port()
    command = json.loads(next(rest for keyword, rest in instructions() if keyword == "CMD"))
    command = [
        c.replace("/etc/icalproxy", str(etc))
        .replace("0.0.0.0:8080", f"127.0.0.1:{port}")
        .replace("0.0.0.0:9090", f"127.0.0.1:{ops_port}")
        for c in command
    ]
    env = {**os.environ, "ICALPROXY_STATE_DIR": str(tmp_path / "state")}
    process = subprocess.Popen(
        [str(env_dir / "bin" / "icalproxy"), *command],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _get(f"http://127.0.0.1:{ops_port}/readyz") == 200, timeout=60, what="ready")
        assert _get(f"http://127.0.0.1:{port}/readyz") == 404  # not on the public port
        healthcheck = next(rest for keyword, rest in instructions() if keyword == "HEALTHCHECK")
        probe = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
        probe = [part.replace("8080", str(port)) for part in probe]
        probe[0] = str(python)
        assert subprocess.run(probe, timeout=30).returncode == 0
        wait_until(lambda: stored_feed(tmp_path / "state", "acme") is not None, what="feed stored")
    finally:
        process.terminate()
        assert process.wait(20) == 0


def _get(url: str) -> int:
    try:
        return http(url, timeout=2)[0]
    except OSError:
        return 0


assert sys.version_info >= (3, 11)
