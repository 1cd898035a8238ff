"""Real database servers for the tests (redis-server from Debian's package), each on its own port and data dir.

A test that needs one skips with a clear reason only when the binary is
absent (CI installs it: .ci/run). The server is stopped by its pid.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.processes import free_port

REDIS_SERVER = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)


def redis_command(port: int, *args: str, timeout: float = 2.0) -> bytes:
    """One command over a raw socket (the tests' own tiny client): the reply's first line(s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args))
        return s.recv(65536)


class RedisServer:
    def __init__(self, directory: Path, port: int | None = None) -> None:
        if REDIS_SERVER is None:
            pytest.skip("redis-server is not installed (Debian package redis-server; .ci/run installs it)")
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        log = open(self.directory / "redis.log", "ab")
        self.popen = subprocess.Popen(
            [str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis_command(self.port, "PING").startswith(b"+PONG"):
                    return self
            except OSError:
                pass
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"redis-server did not start: {(self.directory / 'redis.log').read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()  # as a crash: no goodbye to the clients
            self.popen.wait(10)
        self.popen = None


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return found[-1].parent if found else None


class PostgresServer:
    """``$AGW_TEST_POSTGRES_URL`` (started by .ci/run), else one started here on its own port and data dir."""

    def __init__(self, directory: Path) -> None:
        import os

        self.url = os.environ.get("AGW_TEST_POSTGRES_URL", "")
        self.pid: int | None = None
        self.directory: Path | None = None
        if self.url:
            return
        bin_dir = _pg_bin()
        if bin_dir is None:
            pytest.skip("PostgreSQL is not installed (Debian package postgresql; .ci/run installs and starts it)")
        import tempfile

        # Not under pytest's temp dir: that one is private to root, and the server runs as postgres.
        directory = self.directory = Path(tempfile.mkdtemp(prefix="agw-test-pg."))
        directory.chmod(0o755)
        port = free_port()
        as_pg: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run the server as Debian's postgres user
            shutil.chown(directory, "postgres")
            as_pg = ["runuser", "-u", "postgres", "--"]
        data = directory / "data"
        subprocess.run([*as_pg, str(bin_dir / "initdb"), "-D", str(data), "-U", "agw", "--auth=trust"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        subprocess.run([*as_pg, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(directory / "server.log"), "-w",
                        "-o", f"-p {port} -k {directory} -c listen_addresses=127.0.0.1", "start"],
                       check=True, stdout=subprocess.DEVNULL)
        self.pid = int((data / "postmaster.pid").read_text().split()[0])
        self.url = f"postgresql://agw@127.0.0.1:{port}/postgres"

    def fresh_database(self) -> str:
        """A new empty database on the server; its URL."""
        import uuid

        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        import os
        import signal

        if self.pid is not None:
            os.kill(self.pid, signal.SIGINT)  # fast shutdown of the postmaster we started
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            self.pid = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
