"""Processes for the benchmark: the emulator, a gateway in front of it, and /proc readings.

Every process is started with ``twist`` (as users run them), optionally pinned
to a CPU with ``taskset``, and stopped by its own pid. Nothing here imports
Twisted: the benchmark's driver stays a plain process.
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
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
TWIST = str(VENV_BIN / "twist")
CLIENT_ID = "emulator-client-id"
CLIENT_SECRET = "emulator-client-secret"
MODEL = "gemini-3-flash"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def use_source(ref: str | None, workdir: Path) -> dict[str, str]:
    """Run the gateway code of git ``ref`` (a snapshot via ``git archive``) instead of the work tree.

    The snapshot goes first on PYTHONPATH of every process started from here
    (and of this one), so before/after numbers come from exact commits even
    while the work tree is being edited. Returns what was measured.
    """
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if not ref:
        # The work tree itself first on the path (as pytest run from the root has it), so a module
        # added since the editable install was made is found by the started processes too.
        _prepend_path(ROOT)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "gateway", "twisted"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return {"source": "work tree", "commit": head, "dirty": bool(dirty)}
    commit = subprocess.run(["git", "rev-parse", "--verify", ref + "^{commit}"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.strip()
    snap = workdir / "source"
    snap.mkdir()
    archive = subprocess.Popen(["git", "archive", commit, "gateway", "twisted"], cwd=ROOT, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(snap)], stdin=archive.stdout, check=True)
    archive.wait()
    _prepend_path(snap)
    return {"source": "git " + ("commit" if commit.startswith(ref) else ref), "commit": commit, "dirty": False}


def _prepend_path(path: Path) -> None:
    os.environ["PYTHONPATH"] = str(path) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")
    sys.path.insert(0, str(path))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cpu: str | None, argv: list[str]) -> list[str]:
    if cpu is None or cpu == "" or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", cpu, *argv]


def http_json(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, form: bool = False) -> Any:
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        if form:
            from urllib.parse import urlencode

            data = urlencode(body).encode()
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        else:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


@dataclass
class ProcStat:
    """CPU seconds (user+system) and RSS of one pid, from /proc."""

    cpu_s: float
    rss_bytes: int
    at: float

    @classmethod
    def read(cls, pid: int) -> "ProcStat":
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        utime, stime = int(fields[11]), int(fields[12])
        with open(f"/proc/{pid}/statm") as f:
            rss_pages = int(f.read().split()[1])
        return cls((utime + stime) / CLK_TCK, rss_pages * PAGE, time.monotonic())


def cpu_percent(before: ProcStat, after: ProcStat) -> float:
    wall = after.at - before.at
    return 100.0 * (after.cpu_s - before.cpu_s) / wall if wall > 0 else 0.0


def machine_busy_s() -> float:
    """CPU seconds spent busy by the whole machine (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


def children_cpu_s() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


@dataclass
class Service:
    name: str
    argv: list[str]
    url: str
    health: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> "Service":
        out = open(self.log, "wb")
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(self.url + self.health, timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {self.health} in {timeout:g} s:\n{self.log.read_text()[-4000:]}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stat(self) -> ProcStat:
        return ProcStat.read(self.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def emulator(workdir: Path, cpu: str | None, event_delay: float = 0.0) -> Service:
    port = free_port()
    argv = pinned(cpu, [TWIST, "--log-format=text", "antigravity-emulator", "--listen", f"tcp:{port}:interface=127.0.0.1:backlog=2048",
                        "--event-delay", repr(event_delay), "--max-recorded", "0", "--demo-accounts", "1",
                        "--onboard-polls", "0"])
    return Service("emulator", argv, f"http://127.0.0.1:{port}", "/_emulator/health", workdir / "emulator.log")


def write_gateway_config(workdir: Path, upstream: str, port: int) -> Path:
    accounts = workdir / "accounts.json"
    accounts.write_text(json.dumps({"accounts": [
        {"email": "user1@example.com", "refresh_token": "emu-refresh-1", "project_id": "emu-project-1"},
    ]}))
    conf = workdir / "gateway.toml"
    conf.write_text(
        f'[server]\nlisten = ["tcp:{port}:interface=127.0.0.1:backlog=2048"]\n'
        f'[upstream]\nhosts = ["{upstream}"]\ntoken_url = "{upstream}/token"\n'
        f'client_id = "{CLIENT_ID}"\nclient_secret = "{CLIENT_SECRET}"\n'
        f'version_url = "{upstream}/manifest/latest-arm64-mac.yml"\n'
        f'[accounts]\npath = "{accounts}"\n'
    )
    return conf


def gateway(workdir: Path, upstream: str, cpu: str | None, tag: str = "") -> Service:
    port = free_port()
    conf = write_gateway_config(workdir, upstream, port)
    argv = pinned(cpu, [TWIST, "--log-format=text", "antigravity-gateway", "--config", str(conf)])
    return Service("gateway", argv, f"http://127.0.0.1:{port}", "/healthz", workdir / f"gateway{tag}.log")


def access_token(emulator_url: str) -> str:
    answer = http_json("POST", emulator_url + "/token", {
        "grant_type": "refresh_token", "refresh_token": "emu-refresh-1",
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
    }, form=True)
    return answer["access_token"]


def set_emulator(emulator_url: str, **settings: Any) -> None:
    http_json("POST", emulator_url + "/_emulator/settings", settings)


def public_body(prompt: str, pad_to: int = 0) -> dict[str, Any]:
    """A Gemini API generateContent body; ``pad_to`` grows it to that many bytes."""
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    if pad_to:
        size = len(json.dumps(body, separators=(",", ":")))
        words = ("lorem ipsum dolor sit amet " * (pad_to // 27 + 2))
        body["contents"][0]["parts"].append({"text": words[: max(0, pad_to - size - 11)]})
    return body


def upstream_body(public: dict[str, Any]) -> dict[str, Any]:
    """What the gateway sends upstream for ``public`` (the direct baseline's body)."""
    from gateway.protocol import envelope

    return envelope.wrap(public, model=MODEL, project="emu-project-1", request_id=envelope.new_request_id(),
                         session_id=envelope.session_id_for(public), user_agent="antigravity")


@dataclass
class Target:
    """One side of a comparison: where to send, what, with which auth."""

    name: str  # "direct" or "gateway"
    base: str
    generate_path: str
    stream_path: str
    token: str = ""
    wrap: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self, public: dict[str, Any]) -> bytes:
        obj = upstream_body(public) if self.wrap else public
        return json.dumps(obj, separators=(",", ":")).encode()


def direct_target(emulator_url: str) -> Target:
    return Target("direct", emulator_url, "/v1internal:generateContent", "/v1internal:streamGenerateContent?alt=sse",
                  token=access_token(emulator_url), wrap=True)


def gateway_target(gateway_url: str) -> Target:
    return Target("gateway", gateway_url, f"/v1beta/models/{MODEL}:generateContent",
                  f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse")
