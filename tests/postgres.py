"""A private PostgreSQL server for tests: ``initdb`` in a temp dir, ``postgres`` on a free
loopback port, removed afterwards. As root it runs as the system user ``icalproxy-test``
(created if missing; the processes are started as that user), since PostgreSQL refuses to run
as root. Without PostgreSQL installed
the tests that need it skip with a reason; in CI (``CI`` set) that is a failure instead."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NoReturn

import pytest

from tests.harness import free_port

USER = "icalproxy-test"
ROLE = "icalproxy"


def missing(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the PostgreSQL store tests (scripts/test.sh installs it)")
    pytest.skip(f"{reason} (apt-get install postgresql)")


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class PgServer:
    def __init__(self) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            missing("PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/initdb")
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="icalproxy-pg-"))
        self.data = self.root / "data"
        self.password = secrets.token_hex(12)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._databases = 0
        self._user: dict[str, int] = {}  # Popen's user/group: the server runs as that user itself
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(USER)
            except KeyError:
                subprocess.run(
                    ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                    check=True,
                    capture_output=True,
                )
            entry = pwd.getpwnam(USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._user = {"user": entry.pw_uid, "group": entry.pw_gid}
        self.root.chmod(0o700)
        secret = self.root / "password"
        secret.write_text(self.password)
        if self._user:
            entry = pwd.getpwnam(USER)
            os.chown(secret, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                ROLE,
                f"--pwfile={secret}",
                "--auth=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
            cwd=self.root,
            **self._user,  # type: ignore[arg-type]
        )
        self.start()

    def start(self) -> None:
        self.log = open(self.root / "postgres.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                str(self.bin / "postgres"),
                "-D",
                str(self.data),
                "-k",
                str(self.root),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-c",
                "fsync=off",  # kills in these tests hit icalproxy, never the server's machine
                "-c",
                "max_connections=200",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            **self._user,  # type: ignore[arg-type]
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.execute("SELECT 1")
                return
            except Exception:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: sessions are ended
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
        with contextlib.suppress(Exception):
            self.log.close()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        return f"postgresql://{ROLE}:{password or self.password}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True, connect_timeout=3) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def new_database(self) -> str:
        """A fresh, empty database; returns its name."""
        self._databases += 1
        name = f"icalproxy_{self._databases}_{secrets.token_hex(3)}"
        self.execute(f"CREATE DATABASE {name}")
        return name
