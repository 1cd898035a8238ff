"""A real gateway and emulator, started with ``twist`` as users start them (helpers).

``conftest.py`` starts one pair per test session (``gw``): the emulator plays Cloud Code and Google's
token endpoint, the gateway is wired to it by a config file in a temporary
directory, and the blocking SDKs under test talk to the gateway over loopback
from the test thread (the gateway runs in another process, so nothing here
touches a reactor). Faults are injected and the emulator's record of upstream
requests is read through its ``/_emulator/`` control API; every test starts
with the emulator reset (no faults, no records, initial settings).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
TWIST = str(VENV_BIN / "twist") if (VENV_BIN / "twist").exists() else (shutil.which("twist") or "twist")
CLIENT_ID = "emulator-client-id"
CLIENT_SECRET = "emulator-client-secret"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
ACCOUNTS = [
    {"email": "alice@example.com", "refresh_token": "1//alice-refresh", "project_id": "alice-project", "tier": "standard-tier"},
    {"email": "bob@example.com", "refresh_token": "1//bob-refresh", "project_id": "bob-project", "tier": "standard-tier"},
]


def free_port() -> int:
    """A loopback port nobody listens on right now (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env() -> dict[str, str]:
    """The environment for ``twist``: this checkout importable, no stray config."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("ANTIGRAVITY_GATEWAY_CONFIG", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def http(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    """A blocking JSON call with the standard library (control API, health checks)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError as e:
            return f"(no log: {e})"

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(STOP_TIMEOUT)


@dataclass
class ClientStack:
    """What tests get: where to point the SDKs, and the emulator's control API."""

    url: str
    emulator_url: str
    directory: Path
    processes: list[Process] = field(default_factory=list)

    # -- emulator control --

    def control(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = http(method, f"{self.emulator_url}/_emulator/{path}", body)
        if status != 200:
            raise AssertionError(f"emulator {method} /_emulator/{path} -> {status}: {answer}")
        return answer

    def add_fault(self, **spec: Any) -> str:
        """One fault rule (see ``Fault`` in gateway/emulator/state.py); returns its id."""
        return self.control("POST", "faults", spec)["id"]

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")

    def reset(self) -> None:
        """No faults, no recorded requests, no quotas, initial settings (accounts kept).

        The gateway learns from failures (cooldowns, disabled accounts), so a
        test's faults would leak into the next: every account is re-enabled
        the way an operator does it (``antigravity-gateway accounts enable``),
        which the running gateway picks up from the store.
        """
        self.control("POST", "reset", {})
        import contextlib
        import io

        from gateway.cli import main as cli

        with contextlib.redirect_stdout(io.StringIO()):
            for account in ACCOUNTS:
                assert cli(["accounts", "enable", account["email"], "--config", str(self.directory / "gateway.toml")]) == 0

    def requests(self, method: str | None = None) -> list[dict[str, Any]]:
        """Upstream calls the emulator saw since the last reset (secrets redacted)."""
        query = f"?method={method}" if method else ""
        return self.control("GET", "requests" + query)["requests"]

    def logs(self) -> str:
        return "\n".join(f"===== {p.name} ({p.log}) =====\n{p.output()}" for p in self.processes)


def spawn(name: str, args: list[str], directory: Path) -> Process:
    log = directory / f"{name}.log"
    handle = open(log, "wb")
    try:
        popen = subprocess.Popen(
            [TWIST, "--log-format=text", *args],
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=subprocess_env(),
            cwd=str(directory),
        )
    finally:
        handle.close()
    return Process(name, popen, log)


def wait_healthy(stack: ClientStack) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    checks = ((stack.emulator_url + "/_emulator/health", "emulator"), (stack.url + "/healthz", "gateway"))
    pending = list(checks)
    while pending:
        for p in stack.processes:
            if p.popen.poll() is not None:
                raise RuntimeError(f"{p.name} exited with {p.popen.returncode} during start-up\n{stack.logs()}")
        url, _ = pending[0]
        try:
            status, _body = http("GET", url, timeout=1.0)
            if status == 200:
                pending.pop(0)
                continue
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no 200 from {url} within {START_TIMEOUT:.0f}s\n{stack.logs()}")
        time.sleep(0.1)


def write_files(directory: Path, gateway_port: int, emulator_port: int) -> Path:
    """Seed (emulator side), account store and config (gateway side); returns the config."""
    (directory / "seed.json").write_text(json.dumps({"accounts": ACCOUNTS}))
    store = directory / "accounts.json"
    store.write_text(json.dumps({"accounts": [{"email": a["email"], "refresh_token": a["refresh_token"]} for a in ACCOUNTS]}))
    store.chmod(0o600)
    emulator = f"http://127.0.0.1:{emulator_port}"
    config = directory / "gateway.toml"
    config.write_text(
        "[server]\n"
        f'listen = ["tcp:{gateway_port}:interface=127.0.0.1"]\n'
        "[upstream]\n"
        f'hosts = ["{emulator}"]\n'
        f'token_url = "{emulator}/token"\n'
        f'client_id = "{CLIENT_ID}"\n'
        f'client_secret = "{CLIENT_SECRET}"\n'
        "max_attempts = 3\n"
        "stream_idle_timeout = 10\n"
        "[accounts]\n"
        f'path = "{store}"\n'
    )
    return config
