"""Issue 11's rough edges, as a new user met them: each one run the way the user ran it
(a real subprocess, real files, a real port), each failing before its fix."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from icalproxy.config.load import load_config
from icalproxy.config.model import Source
from icalproxy.daemon.tokens import TokenStore
from icalproxy.daemon.web import prefers_gzip
from icalproxy.errors import ConfigError, FetchError
from icalproxy.fetch import SourceFetcher, Validators
from tests.harness import Daemon, Upstream, create_token, daemon_config, free_port, http
from tests.support import FIXTURES, ROOT

JOBS = (FIXTURES / "teamup-jobs.ics").read_bytes()
SECRET_KEY = "SECRETLINKKEY0123456789"


def icalproxy(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "icalproxy.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def write_config(tmp_path: Path, body: str, name: str = "c.yaml") -> Path:
    (tmp_path / "jobs.ics").write_bytes(JOBS)
    config = tmp_path / name
    config.write_text(body)
    return config


SIMPLE = "state_dir: state\nsources:\n  jobs: {url: jobs.ics}\nfeeds:\n  acme: {title: Acme, from: [jobs]}\n"


# ---------------------------------------------------------------- the README after the quick start


def test_the_readme_says_how_to_call_icalproxy_and_its_commands_work_that_way(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "source .venv/bin/activate" in quick and ".venv/bin/icalproxy" in quick
    assert "pipx install ." in quick and "pip install ." in quick
    activate = ROOT / ".venv" / "bin" / "activate"
    if not activate.exists():
        pytest.skip("no .venv here: scripts/test.sh creates it")
    commands = [
        line.split("#", 1)[0].strip()
        for line in readme.split("## Commands", 1)[1].split("\n## ", 1)[0].splitlines()
        if line.startswith(("icalproxy check", "icalproxy preview", "icalproxy --version"))
    ]
    assert len(commands) >= 4
    path = ":".join(p for p in os.environ.get("PATH", "").split(":") if ".venv" not in p)
    env = {"PATH": path, "HOME": str(tmp_path), "ICALPROXY_STATE_DIR": str(tmp_path / "state")}
    script = "source .venv/bin/activate && " + " && ".join(f"{c} > /dev/null" for c in commands)
    result = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert (
        subprocess.run(["bash", "-c", "command -v icalproxy"], env=env, capture_output=True).returncode != 0
    )


# ---------------------------------------------------------------- a port already in use


@pytest.mark.parametrize("busy", ["listen", "ops_listen"])
def test_a_port_in_use_is_one_error_line_before_anything_is_pulled_or_written(
    tmp_path: Path, upstream: Upstream, busy: str
) -> None:
    upstream.state.mode = "ok"
    upstream.state.set_body(JOBS)
    before = upstream.state.requests
    config = write_config(
        tmp_path,
        f"state_dir: state\nsources:\n  jobs: {{url: '{upstream.url}'}}\n"
        "feeds:\n  acme: {title: A, from: [jobs]}\n",
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        other = free_port()
        listen, ops = (port, other) if busy == "listen" else (other, port)
        result = icalproxy(
            "serve",
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{listen}",
            "--ops-listen",
            f"127.0.0.1:{ops}",
        )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if not line.startswith("note:")]
    assert errors == [f"error: cannot listen on 127.0.0.1:{port} ({busy}): address already in use"]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert upstream.state.requests == before  # nothing pulled
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").rglob("*.state"))
    # The one-off --listen does not reach the URLs `token new` prints: it says so.
    assert "URLs printed by `token new` use server.listen" in result.stderr


# ---------------------------------------------------------------- durations need units


@pytest.mark.parametrize(
    ("snippet", "line", "message"),
    [
        ("  acme: {title: A, from: [jobs], where: {window: {past: 30}}}\n", 5, "past: 30 needs a unit"),
        (
            "  acme: {title: A, from: [jobs], where: {window: {future: '365'}}}\n",
            5,
            "future: '365' needs a unit",
        ),
    ],
)
def test_a_bare_number_as_a_duration_is_an_error_with_file_and_line(
    tmp_path: Path, snippet: str, line: int, message: str
) -> None:
    config = write_config(tmp_path, "state_dir: state\nsources:\n  jobs: {url: jobs.ics}\nfeeds:\n" + snippet)
    result = icalproxy("check", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}:{line}: {message}" in result.stderr


def test_every_without_a_unit_is_an_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, SIMPLE.replace("{url: jobs.ics}", "{url: jobs.ics, every: 900}"))
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert caught.value.problems == [f"{config}:3: every: 900 needs a unit, such as 900d, 900h, 900m or 900s"]


# ---------------------------------------------------------------- Accept-Encoding q-values


@pytest.mark.parametrize(
    ("header", "gzip"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("gzip;q=0", False),
        ("GZIP ; Q=0.000", False),
        ("deflate, gzip;q=0", False),
        ("*", True),
        ("*;q=0", False),
        ("gzip;q=0, *", False),
        ("identity;q=0", False),
        ("identity;q=0, gzip;q=0.2", True),
        ("gzip;q=0.4, identity;q=0.8", False),
        ("br", False),
        ("", False),
    ],
)
def test_accept_encoding_q_values(header: str, gzip: bool) -> None:
    assert prefers_gzip(header) is gzip


def test_a_client_that_refuses_gzip_never_gets_it(tmp_path: Path, upstream: Upstream) -> None:
    upstream.state.mode = "ok"
    upstream.state.set_body(JOBS)
    config = daemon_config(tmp_path, upstream, server="{gzip: true}")
    token = create_token(config, "acme")
    daemon = Daemon(config, tmp_path).start()
    try:
        url = f"{daemon.base}/feed/{token}.ics"
        for header in ("gzip;q=0", "identity, gzip;q=0", "*;q=0, identity"):
            status, headers, body = http(url, {"Accept-Encoding": header})
            assert status == 200 and "Content-Encoding" not in headers and body.startswith(b"BEGIN:VCALENDAR")
        assert http(url, {"Accept-Encoding": "gzip"})[1].get("Content-Encoding") == "gzip"
    finally:
        daemon.stop()


# ---------------------------------------------------------------- YAML 1.1 booleans


def test_status_values_no_off_yes_on_stay_text(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        SIMPLE + "statuses:\n  values:\n    No: {label: Off}\n    Off: {label: 'Not today'}\n    Yes: Yes\n"
        "    on: {label: On, show: true}\n",
    )
    entries = load_config(config).rules.statuses.entries
    assert sorted(entries) == ["no", "off", "on", "yes"]
    assert [(entries[k].value, entries[k].label) for k in ("no", "off", "yes", "on")] == [
        ("No", "Off"),
        ("Off", "Not today"),
        ("Yes", "Yes"),
        ("on", "On"),
    ]
    yes_as_bool = write_config(tmp_path, SIMPLE + "server: {gzip: yes}\n", "bool.yaml")
    with pytest.raises(ConfigError) as caught:
        load_config(yes_as_bool)
    assert caught.value.problems == [f"{yes_as_bool}:6: gzip must be true or false"]


# ---------------------------------------------------------------- token URLs and --listen


def test_token_urls_default_from_the_listen_address_and_say_so(tmp_path: Path) -> None:
    config = write_config(tmp_path, SIMPLE + "server: {listen: '127.0.0.1:8181'}\n")
    result = icalproxy("token", "new", "--config", str(config), "acme")
    assert result.returncode == 0
    assert result.stdout.splitlines()[1].strip().startswith("http://127.0.0.1:8181/feed/")
    assert "server.public_url is not set" in result.stderr
    with_public = write_config(
        tmp_path, SIMPLE + "server: {public_url: 'https://cal.example.test/'}\n", "p.yaml"
    )
    result = icalproxy("token", "new", "--config", str(with_public), "acme")
    assert result.stdout.splitlines()[1].strip().startswith("https://cal.example.test/feed/")
    assert "public_url is not set" not in result.stderr


# ---------------------------------------------------------------- "nothing was changed"


def test_read_only_commands_do_not_claim_nothing_was_changed(tmp_path: Path) -> None:
    bad = write_config(tmp_path, SIMPLE.replace("title: Acme", "title: Acme, profile: nope"))
    said = {}
    for command in (
        ["check"],
        ["check", "--sources"],
        ["preview", "--feed", "acme"],
        ["token", "list"],
        ["render", "--out", str(tmp_path / "out")],
        ["token", "new", "acme"],
    ):
        result = (
            icalproxy(*command[:2], "--config", str(bad), *command[2:])
            if command[0] == "token"
            else icalproxy(command[0], "--config", str(bad), *command[1:])
        )
        assert result.returncode == 2
        said[" ".join(command[:2])] = result.stderr.splitlines()[-1]
    assert (
        said["check"]
        == said["check --sources"]
        == said["preview --feed"]
        == said["token list"]
        == "1 problem(s)."
    )
    assert said["render --out"] == "1 problem(s); nothing was written."
    assert said["token new"] == "1 problem(s); nothing was changed."


# ---------------------------------------------------------------- connection errors


def test_a_connection_error_names_host_and_reason_never_the_url(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(
        tmp_path,
        SIMPLE.replace(
            "{url: jobs.ics}", f"{{url: 'http://127.0.0.1:{port}/feed/{SECRET_KEY}/0.ics', retries: 0}}"
        ),
    )
    result = icalproxy("check", "--config", str(config), "--sources")
    assert result.returncode == 1
    assert f"source jobs: cannot connect to 127.0.0.1:{port}: connection refused" in result.stderr
    assert SECRET_KEY not in result.stderr + result.stdout and "ClientConnectorError" not in result.stderr


def test_an_unresolvable_host_is_named(tmp_path: Path) -> None:
    async def pull() -> str:
        async with aiohttp.ClientSession() as session:
            try:
                await SourceFetcher(session).fetch(
                    Source("jobs", f"https://no-such-host.invalid/feed/{SECRET_KEY}/0.ics", retries=0),
                    Validators(),
                )
            except FetchError as exc:
                return exc.reason
        return "no error"

    reason = asyncio.run(pull())
    assert reason.startswith("cannot resolve host no-such-host.invalid: ")
    assert SECRET_KEY not in reason


# ---------------------------------------------------------------- a missing file source


def test_check_sources_names_the_missing_file_as_written_and_its_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, SIMPLE.replace("{url: jobs.ics}", "{url: data/missing.ics}"))
    result = icalproxy("check", "--config", str(config), "--sources")
    assert result.returncode == 1
    line = next(line for line in result.stderr.splitlines() if line.startswith("source jobs"))
    assert "'data/missing.ics'" in line and f"{config}:3" in line and "not found" in line


# ---------------------------------------------------------------- --days


@pytest.mark.parametrize("days", ["-5", "0", "x"])
def test_preview_days_must_be_positive(days: str) -> None:
    result = icalproxy(
        "preview", "--config", str(ROOT / "config.example.yaml"), "--feed", "acme", "--days", days
    )
    assert result.returncode == 2
    assert "--days" in result.stderr and "Traceback" not in result.stderr


# ---------------------------------------------------------------- revoking twice


def test_revoking_twice_says_it_was_already_revoked(tmp_path: Path) -> None:
    config = write_config(tmp_path, SIMPLE)
    created = icalproxy("token", "new", "--config", str(config), "acme")
    token_id = created.stdout.split("token id ", 1)[1].split()[0]
    first = icalproxy("token", "revoke", "--config", str(config), token_id)
    assert first.returncode == 0 and "revoked at" in first.stdout
    second = icalproxy("token", "revoke", "--config", str(config), token_id)
    assert second.returncode == 1
    assert re.fullmatch(rf"token {token_id} of feed acme was already revoked at \S+\n", second.stderr)


# ---------------------------------------------------------------- demo.sh tokens


def test_each_demo_run_leaves_one_active_quick_start_token(tmp_path: Path) -> None:
    line = next(
        line for line in (ROOT / "scripts" / "demo.sh").read_text().splitlines() if " token new " in line
    )
    argv = shlex.split(line.split(" 2>", 1)[0])
    assert argv[0] == ".venv/bin/icalproxy"
    env = {**os.environ, "ICALPROXY_STATE_DIR": str(tmp_path / "state")}
    for _ in range(3):
        result = icalproxy(*argv[1:], env=env)
        assert result.returncode == 0, result.stderr
    records = TokenStore.in_state_dir(tmp_path / "state").records()
    assert len(records) == 3
    assert [r.label for r in records if r.revoked is None] == ["quick start"]


# ---------------------------------------------------------------- the run report's units


def test_the_run_report_counts_series_in_and_out(tmp_path: Path) -> None:
    source = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n"
        b"BEGIN:VEVENT\r\nUID:s1\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261201T090000Z\r\n"
        b"RRULE:FREQ=DAILY;COUNT=3\r\nSUMMARY:Daily\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:s1\r\nDTSTAMP:20261101T000000Z\r\nRECURRENCE-ID:20261202T090000Z\r\n"
        b"DTSTART:20261202T100000Z\r\nSUMMARY:Daily, later\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:s2\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261203T090000Z\r\nSUMMARY:Once\r\nEND:VEVENT\r\n"
        b"END:VCALENDAR\r\n"
    )
    config = write_config(tmp_path, SIMPLE)
    (tmp_path / "jobs.ics").write_bytes(source)
    result = icalproxy("render", "--config", str(config), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "feed acme: 2 series in, 2 series out (3 VEVENTs)" in result.stdout


# ---------------------------------------------------------------- an invalid IDNA host


def test_an_invalid_idna_host_is_a_clear_config_error(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, SIMPLE.replace("{url: jobs.ics}", f"{{url: 'https://cal..example.com/{SECRET_KEY}.ics'}}")
    )
    result = icalproxy("check", "--config", str(config), "--sources")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        f"{config}:3: source 'jobs' url: host 'cal..example.com' is not a valid internationalised domain "
        "name (label empty or too long)"
    )
    assert "Traceback" not in result.stderr and SECRET_KEY not in result.stderr


def test_an_invalid_idna_host_at_pull_time_is_a_fetch_error() -> None:
    async def pull() -> str:
        async with aiohttp.ClientSession() as session:
            try:
                await SourceFetcher(session).fetch(
                    Source("jobs", f"https://a..b/{SECRET_KEY}", retries=0), Validators()
                )
            except FetchError as exc:
                return exc.reason
        return "no error"

    assert asyncio.run(pull()) == "invalid host 'a..b' in the URL"
