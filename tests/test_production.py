"""The README's production guide, run: its nginx snippet in front of a real daemon over TLS
(subscribers get their feed, /readyz and /metrics are 404 without the ops token, no token in
the access log), and its systemd unit checked by systemd-analyze."""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.harness import Daemon, Upstream, create_token, daemon_config, free_port, http, raw_get, wait_until
from tests.support import FIXTURES, ROOT

OPS_TOKEN = "ops-token-for-the-proxy-test-0123"
README = (ROOT / "README.md").read_text()
PRODUCTION = README.split("## Production", 1)[1].split("\n## ", 1)[0]


def snippet(language: str) -> str:
    found = re.findall(rf"```{language}\n(.*?)```", PRODUCTION, re.S)
    assert len(found) == 1, language
    return found[0]


def missing(tool: str) -> None:
    """A real part that is not installed: skip here, fail in CI (scripts/test.sh installs it)."""
    if os.environ.get("CI"):
        pytest.fail(f"{tool} is not installed: CI must run the production-guide checks")
    pytest.skip(f"{tool} is not installed (Debian: apt-get install nginx-light)")


def test_the_guide_covers_what_ops_need() -> None:
    for heading in (
        "### Reverse proxy (TLS)",
        "### systemd",
        "### Where the ops endpoints listen",
        "### Backing up and restoring `state_dir`",
        "### Rotating a leaked link",
    ):
        assert heading in PRODUCTION
    caddy = snippet("caddyfile")
    assert "reverse_proxy 127.0.0.1:8080" in caddy and "respond 404" in caddy and "\tlog" not in caddy


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        missing("systemd-analyze")
    unit = snippet("ini")
    assert "ExecStart=/opt/icalproxy/bin/icalproxy serve --config /etc/icalproxy/config.yaml" in unit
    assert not [line for line in unit.splitlines() if "#" in line and not line.startswith("#")]
    env = tmp_path / "env"
    env.write_text("TEAMUP_JOBS_KEY=x\n")
    executable = ROOT / ".venv" / "bin" / "icalproxy"
    if not executable.exists():
        pytest.skip("no .venv/bin/icalproxy: scripts/test.sh creates it")
    path = tmp_path / "icalproxy.service"
    path.write_text(
        unit.replace("/opt/icalproxy/bin/icalproxy", str(executable)).replace("/etc/icalproxy/env", str(env))
    )
    result = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if path.name in line]
    assert result.returncode == 0 and complaints == [], result.stdout + result.stderr


def _certificate(folder: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        missing("openssl")
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=cal.example.com",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_the_nginx_snippet_in_front_of_the_daemon(
    tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        missing("nginx")
    upstream.state.mode = "ok"
    upstream.state.set_body((FIXTURES / "teamup-jobs.ics").read_bytes())
    config = daemon_config(tmp_path, upstream, server="{ops_token: '${ICALPROXY_OPS_TOKEN}'}")
    monkeypatch.setenv("ICALPROXY_OPS_TOKEN", OPS_TOKEN)
    token = create_token(config, "acme")
    daemon = Daemon(config, tmp_path).start()
    cert, key = _certificate(tmp_path)
    https_port, http_port = free_port(), free_port()
    site = (
        snippet("nginx")
        .replace("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
        .replace("listen 80;", f"listen 127.0.0.1:{http_port};")
        .replace("/etc/letsencrypt/live/cal.example.com/fullchain.pem", str(cert))
        .replace("/etc/letsencrypt/live/cal.example.com/privkey.pem", str(key))
        .replace("http://127.0.0.1:8080", f"http://127.0.0.1:{daemon.port}")
        .replace("root /var/www/html;", f"root {tmp_path};")
    )
    site = "\n".join(line for line in site.splitlines() if "[::]" not in line)  # no IPv6 needed here
    access_log = tmp_path / "access.log"
    (tmp_path / "nginx.conf").write_text(
        f"daemon off;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\nhttp {{\n"
        f"  access_log {access_log};\n  client_body_temp_path {tmp_path}/body;\n"
        f"  proxy_temp_path {tmp_path}/proxy;\n  fastcgi_temp_path {tmp_path}/fcgi;\n"
        f"  uwsgi_temp_path {tmp_path}/uwsgi;\n  scgi_temp_path {tmp_path}/scgi;\n{site}\n}}\n"
    )
    proxy = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False  # the test certificate names cal.example.com, we ask 127.0.0.1

    def get(path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(f"https://127.0.0.1:{https_port}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10, context=context) as response:  # loopback only
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    try:
        wait_until(lambda: _answers(get), timeout=20, what="nginx listening")
        direct = http(f"{daemon.base}/feed/{token}.ics")[2]
        assert get(f"/feed/{token}.ics") == (200, direct)
        for path in ("/readyz", "/metrics"):
            status, body = get(path)
            assert status == 404 and b"acme" not in body
            assert get(path, {"Authorization": "Bearer wrong"})[0] == 404
            status, body = get(path, {"Authorization": f"Bearer {OPS_TOKEN}"})
            assert status == 200 and b"acme" in body
        assert get("/state/tokens.json")[0] == 404 and get("/")[0] == 404
        status, response = raw_get(http_port, f"/feed/{token}.ics")
        assert status == 301 and f"Location: https://127.0.0.1/feed/{token}.ics".encode() in response
        time.sleep(0.5)  # nginx writes its log at the end of each request
        logged = access_log.read_text() if access_log.exists() else ""
        assert "/healthz" in logged and token not in logged and OPS_TOKEN not in logged
    finally:
        proxy.terminate()
        proxy.wait(10)
        daemon.stop()


def _answers(get: object) -> bool:
    try:
        return get("/healthz")[0] == 200  # type: ignore[operator]
    except OSError:
        return False


def test_the_backup_and_restore_commands_bring_back_links_and_feeds(
    tmp_path: Path, upstream: Upstream
) -> None:
    """The guide's two shell blocks, run as written (paths pointed at a temp folder, systemctl
    and chown left to the test): a backup taken while the daemon serves, a restore into an
    empty state_dir, and the client's link serves the same feed before any pull succeeds."""
    section = PRODUCTION.split("### Backing up and restoring `state_dir`", 1)[1].split("\n### ", 1)[0]
    backup, restore = re.findall(r"```sh\n(.*?)```", section, re.S)
    upstream.state.mode = "ok"
    upstream.state.set_body((FIXTURES / "teamup-jobs.ics").read_bytes())
    config = daemon_config(tmp_path, upstream)
    token = create_token(config, "acme")
    state, saved = tmp_path / "state", tmp_path / "backup" / "icalproxy-2026-12-01"

    def run(script: str) -> None:
        script = script.replace("STATE=/var/lib/icalproxy", f"STATE={state}")
        script = re.sub(r"^BACKUP=/backup/.*$", f"BACKUP={saved}", script, flags=re.M)
        kept = [line for line in script.splitlines() if not line.startswith(("systemctl ", "chown "))]
        subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(kept)], check=True, timeout=60)

    daemon = Daemon(config, tmp_path).start()
    try:
        served = http(f"{daemon.base}/feed/{token}.ics")
        assert served[0] == 200
        run(backup)  # while the daemon runs
    finally:
        daemon.stop()
    assert {p.name for p in saved.iterdir()} == {"icalproxy.db", "alerts.db", "installation.key"}
    assert all(p.stat().st_mode & 0o077 == 0 for p in saved.iterdir()), "token hashes are private"
    shutil.rmtree(state)
    upstream.state.mode = "500"  # the restored feed is served before any pull succeeds
    run(restore)
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in state.iterdir())
    restored = Daemon(config, tmp_path).start()
    try:
        again = http(f"{restored.base}/feed/{token}.ics")
        assert again[0] == 200 and again[2] == served[2], "same link, same bytes after the restore"
    finally:
        restored.stop()
