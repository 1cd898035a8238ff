"""The emulator and the gateway as ``twist`` subprocesses, as operators run them (helpers).

Signals (SIGTERM drain, SIGHUP reload) and systemd socket activation only
mean something for a real process, so these tests start one: the emulator
plays Cloud Code and Google's token endpoint, the gateway is wired to it by a
config file, and the test talks to both with blocking standard-library
clients (no reactor in this process is involved).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
TWIST = str(VENV_BIN / "twist") if (VENV_BIN / "twist").exists() else (shutil.which("twist") or "twist")
CLIENT_ID = "emulator-client-id"
CLIENT_SECRET = "emulator-client-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ANTIGRAVITY_GATEWAY_CONFIG", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def events(self) -> list[dict[str, Any]]:
        """The JSON log events written so far (``--log-format=json``)."""
        found = []
        for line in self.text().splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    pass
        return found

    def signal(self, number: int) -> None:
        self.popen.send_signal(number)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def wait_for_log(self, needle: str, timeout: float = 10.0, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while self.text().count(needle) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} never logged {needle!r}:\n{self.text()[-4000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def spawn(name: str, args: list[str], directory: Path, prefix: Iterable[str] = ()) -> Process:
    log = directory / f"{name}.log"
    with open(log, "wb") as handle:
        popen = subprocess.Popen([*prefix, TWIST, "--log-format=json", *args], stdin=subprocess.DEVNULL,
                                 stdout=handle, stderr=subprocess.STDOUT, env=child_env(), cwd=str(directory))
    return Process(name, popen, log)


def call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
         timeout: float = 15.0) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection; returns (status, lower-case headers, body)."""
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    path = "/" + url.split("://", 1)[1].split("/", 1)[1] if "/" in url.split("://", 1)[1] else "/"
    conn = http.client.HTTPConnection(host_port, timeout=timeout)
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json"} if data is not None else {}
    all_headers.update(headers or {})
    try:
        conn.request(method, path, body=data, headers=all_headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def wait_until_up(url: str, processes: Iterable[Process], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for p in processes:
            if p.popen.poll() is not None:
                raise AssertionError(f"{p.name} exited with {p.popen.returncode}:\n{p.text()[-4000:]}")
        try:
            if call("GET", url, timeout=1.0)[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no 200 from {url} within {timeout:.0f} s")
        time.sleep(0.1)


@dataclass
class Stack:
    directory: Path
    emulator_url: str
    gateway_url: str
    config: Path
    store: Path
    processes: list[Process] = field(default_factory=list)

    @property
    def gateway(self) -> Process:
        return self.processes[-1]

    def fault(self, **spec: Any) -> None:
        status, _, body = call("POST", f"{self.emulator_url}/_emulator/faults", spec)
        assert status == 200, body

    def upstream_requests(self, method: str) -> list[dict[str, Any]]:
        status, _, body = call("GET", f"{self.emulator_url}/_emulator/requests?method={method}")
        assert status == 200, body
        return json.loads(body)["requests"]

    def close(self) -> None:
        for p in reversed(self.processes):
            p.stop()


EMULATOR_ACCOUNTS = [
    {"email": f"user{i}@example.com", "refresh_token": f"1//proc-refresh-{i}", "project_id": f"proc-project-{i}", "tier": "standard-tier"}
    for i in range(3)
]


def gateway_toml(listen: str, emulator_url: str, store: Path, extra: str = "", server: str = "", upstream: str = "") -> str:
    """A gateway config wired to the emulator; ``server``/``upstream`` add lines to those tables; ``extra`` follows ``[accounts] path``."""
    return (
        "[server]\n"
        f'listen = ["{listen}"]\n'
        + server
        + "[upstream]\n"
        f'hosts = ["{emulator_url}"]\n'
        f'token_url = "{emulator_url}/token"\n'
        f'client_id = "{CLIENT_ID}"\nclient_secret = "{CLIENT_SECRET}"\n'
        f'version_url = "{emulator_url}/manifest/latest-arm64-mac.yml"\n'
        + upstream
        + "[accounts]\n"
        f'path = "{store}"\n'
        "store_check_interval = 0\n"  # tests edit the store and expect the next request to see it
        + extra
    )


def start(directory: Path, *, store_accounts: int = 1, event_delay: float = 0.0, extra_toml: str = "",
          gateway_args: Iterable[str] = (), prefix: Iterable[str] = (), listen: str | None = None,
          gateway_port: int | None = None, health_url: str | None = None, server_toml: str = "") -> Stack:
    """Emulator (all three accounts) + gateway (the first ``store_accounts`` of them in its store)."""
    emulator_port = free_port()
    port = gateway_port or free_port()
    (directory / "seed.json").write_text(json.dumps({"accounts": EMULATOR_ACCOUNTS}))
    store = directory / "accounts.json"
    store.write_text(json.dumps({"accounts": [{"email": a["email"], "refresh_token": a["refresh_token"]}
                                              for a in EMULATOR_ACCOUNTS[:store_accounts]]}))
    store.chmod(0o600)
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    config = directory / "gateway.toml"
    config.write_text(gateway_toml(listen or f"tcp:{port}:interface=127.0.0.1", emulator_url, store, extra_toml, server_toml))
    stack = Stack(directory, emulator_url, f"http://127.0.0.1:{port}", config, store)
    try:
        stack.processes.append(spawn("emulator", ["antigravity-emulator", "--port", str(emulator_port), "--seed",
                                                  str(directory / "seed.json"), "--event-delay", str(event_delay)], directory))
        wait_until_up(f"{emulator_url}/_emulator/health", stack.processes)
        stack.processes.append(spawn("gateway", ["antigravity-gateway", "--config", str(config), *gateway_args], directory, prefix))
        wait_until_up(health_url or f"{stack.gateway_url}/healthz", stack.processes)
    except BaseException:
        stack.close()
        raise
    return stack


def ask(text: str) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


class StreamReader:
    """A streamGenerateContent?alt=sse request read event by event on its own connection."""

    def __init__(self, base_url: str, text: str, headers: dict[str, str] | None = None, path: str | None = None) -> None:
        host_port = base_url.split("://", 1)[1]
        self.conn = http.client.HTTPConnection(host_port, timeout=30)
        self.conn.request("POST", path or "/v1beta/models/gemini-3-flash:streamGenerateContent?alt=sse",
                          body=json.dumps(ask(text)).encode(),
                          headers={"Content-Type": "application/json", **(headers or {})})
        self.response = self.conn.getresponse()
        self.events: list[dict[str, Any]] = []

    def next_event(self) -> dict[str, Any] | None:
        while True:
            line = self.response.readline()
            if not line:
                return None
            if line.startswith(b"data: "):
                event = json.loads(line[len(b"data: "):])
                self.events.append(event)
                return event

    def rest(self) -> list[dict[str, Any]]:
        while self.next_event() is not None:
            pass
        self.conn.close()
        return self.events
