"""Serving benchmark: requests/s for one 10k-event client feed, icalproxy vs nginx, same bytes;
then the client page (/c/<token>) of a client with 200 jobs, 200 and 304 paths.

    .venv/bin/python benchmarks/serve.py [--events 10000] [--seconds 10] [--connections 32]
                                         [--page-jobs 200] [--page-only]

Needs wrk and nginx (Debian: apt-get install wrk nginx-light). Starts ``icalproxy serve``
on a generated Teamup-shaped feed, fetches the client feed once, lets nginx serve exactly
those bytes (ETag on), then runs wrk against both for the 200 path and for the 304 path
(If-None-Match), all on 127.0.0.1, and prints the ratios measured in this run.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT.parent / "shared" / "tools" / "teamup_feed.py"
sys.path.insert(0, str(ROOT))

from tests.harness import free_port, wait_until  # noqa: E402

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  etag on;
  types {{ text/calendar ics; }}
  client_body_temp_path {dir}/tmp; proxy_temp_path {dir}/tmp; fastcgi_temp_path {dir}/tmp;
  uwsgi_temp_path {dir}/tmp; scgi_temp_path {dir}/tmp;
  server {{
    listen 127.0.0.1:{port};
    root {dir}/www;
  }}
}}
"""


def wrk(url: str, seconds: int, connections: int, header: str | None = None) -> float:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if header:
        command[1:1] = ["-H", header]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        sys.exit(f"wrk saw {errors[1]} error responses from {url}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert match, output
    return float(match[1])


def new_token(config: Path, feed: str) -> str:
    """The feed's https URL of a new token."""
    token_out = subprocess.run(
        [sys.executable, "-m", "icalproxy.cli", "token", "new", "--config", str(config), feed],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return token_out.splitlines()[1].strip()


def first_response(url: str, what: str) -> tuple[bytes, str]:
    """Wait until the daemon serves ``url`` with a 200; its body and ETag."""

    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # loopback only
                return response.status == 200
        except OSError:
            return False

    wait_until(ready, timeout=120, what=what)
    with urllib.request.urlopen(url) as response:
        return response.read(), response.headers["ETag"]


def start_daemon(config: Path, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "icalproxy.cli",
            "serve",
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
            "--log-format",
            "json",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(work / "daemon.log").open("wb"),
    )
    return daemon, port


def measure_page(jobs: int, seconds: int, connections: int) -> dict[str, float]:
    """The client page of one client with ``jobs`` jobs around today (all on the page)."""
    from datetime import date, timedelta

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        start = (date.today() - timedelta(days=10)).isoformat()
        subprocess.run(
            [sys.executable, str(GENERATOR), "--events", str(jobs), "--subcalendars", "1",
             "--start", start, "--days", "120", "--out", str(work / "feed.ics")],
            check=True,
        )  # fmt: skip
        config = work / "config.yaml"
        config.write_text(
            "state_dir: state\nsources:\n  teamup: {url: feed.ics}\n"
            "feeds:\n  client: {title: Client page, profile: client}\n"
        )
        token = new_token(config, "client").rsplit("/", 1)[1].removesuffix(".ics")
        daemon, port = start_daemon(config, work)
        url = f"http://127.0.0.1:{port}/c/{token}"
        try:
            body, etag = first_response(url, "client page")
            shown = body.count(b'<li class="job">')
            print(f"client page: {jobs} jobs in the source, {shown} listed, {len(body) / 1e3:.1f} kB")
            return {
                "page 200": wrk(url, seconds, connections),
                "page 304": wrk(url, seconds, connections, f"If-None-Match: {etag}"),
            }
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(20)


def print_page(results: dict[str, float]) -> None:
    for name, value in results.items():
        print(f"{name:<15} {value:>10.1f} req/s")
    verdict = "meets" if results["page 200"] >= PAGE_TARGET else "MISSES"
    print(f"client page 200 path {verdict} the target of {PAGE_TARGET} req/s")


PAGE_TARGET = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--page-jobs", type=int, default=200, help="jobs of the client page's client")
    parser.add_argument("--page-only", action="store_true", help="measure only the client page")
    args = parser.parse_args()
    if args.page_only:
        if not shutil.which("wrk"):
            sys.exit("needs wrk: apt-get install wrk")
        print_page(measure_page(args.page_jobs, args.seconds, args.connections))
        return
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not shutil.which("wrk") or not Path(nginx).exists():
        sys.exit("needs wrk and nginx: apt-get install wrk nginx-light")
    if not GENERATOR.exists():
        sys.exit(f"{GENERATOR} not found: the benchmark needs ../shared next to the project")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        subprocess.run(
            [sys.executable, str(GENERATOR), "--events", str(args.events), "--out", str(work / "feed.ics")],
            check=True,
        )
        config = work / "config.yaml"
        config.write_text(
            "state_dir: state\nsources:\n  teamup: {url: feed.ics}\n"
            "feeds:\n  client: {title: Client feed, profile: client}\n"
        )
        path = "/feed/" + new_token(config, "client").rsplit("/feed/", 1)[1]
        daemon, port = start_daemon(config, work)
        nginx_port = free_port()
        (work / "www").mkdir()
        (work / "tmp").mkdir()
        try:
            ours = f"http://127.0.0.1:{port}{path}"
            body, etag = first_response(ours, "icalproxy feed")
            (work / "www" / "client.ics").write_bytes(body)
            for readable in (work, work / "www", work / "www" / "client.ics"):
                readable.chmod(0o755)  # nginx workers drop root
            (work / "nginx.conf").write_text(NGINX_CONF.format(dir=work, port=nginx_port))
            server = subprocess.Popen(
                [nginx, "-c", str(work / "nginx.conf"), "-p", str(work)], stderr=subprocess.DEVNULL
            )
            try:
                theirs = f"http://127.0.0.1:{nginx_port}/client.ics"
                time.sleep(0.5)
                with urllib.request.urlopen(theirs) as response:
                    assert response.read() == body
                    nginx_etag = response.headers["ETag"]
                print(
                    f"feed: {args.events} events in, {len(body) / 1e6:.2f} MB out; "
                    f"wrk -t2 -c{args.connections} -d{args.seconds}s on 127.0.0.1"
                )
                results = {
                    "icalproxy 200": wrk(ours, args.seconds, args.connections),
                    "nginx 200": wrk(theirs, args.seconds, args.connections),
                    "icalproxy 304": wrk(ours, args.seconds, args.connections, f"If-None-Match: {etag}"),
                    "nginx 304": wrk(theirs, args.seconds, args.connections, f"If-None-Match: {nginx_etag}"),
                }
            finally:
                server.send_signal(signal.SIGQUIT)
                server.wait(10)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(20)
    for name, value in results.items():
        print(f"{name:<15} {value:>10.1f} req/s")
    print(f"200 path: icalproxy / nginx = {results['icalproxy 200'] / results['nginx 200']:.2f}x")
    print(f"304 path: icalproxy / nginx = {results['icalproxy 304'] / results['nginx 304']:.2f}x")
    print(f"icalproxy 304 / 200 = {results['icalproxy 304'] / results['icalproxy 200']:.1f}x")
    print_page(measure_page(args.page_jobs, args.seconds, args.connections))


if __name__ == "__main__":
    main()
