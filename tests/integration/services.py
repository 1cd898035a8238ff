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
