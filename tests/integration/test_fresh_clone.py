"""The README's first ten minutes on a fresh clone: set-up, the accounts command, the demo, the 503 it prevents.

Clones this repository (its committed HEAD) into a temporary directory and
follows the README there with a clean environment: ``./scripts/run`` creates
``.venv`` and says so, ``./scripts/accounts list`` names a command that works
as printed, the demo answers, and a gateway with no account answers a 503
whose command works as printed. It installs a second environment (about a
minute), so it runs where ``ANTIGRAVITY_FRESH_CLONE_TEST=1`` (``.ci/run`` sets
it) and is skipped, saying so, elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.processes import ROOT, Process, call, free_port

pytestmark = pytest.mark.skipif(
    os.environ.get("ANTIGRAVITY_FRESH_CLONE_TEST") != "1" or shutil.which("git") is None,
    reason="installs a second .venv from a fresh clone (slow): set ANTIGRAVITY_FRESH_CLONE_TEST=1 (CI does)",
)


def clean_env(tmp: Path) -> dict[str, str]:
    """What a new user's shell has: no project venv on PATH, no PYTHONPATH, an empty data/config home."""
    venv_bin = str(ROOT / ".venv" / "bin")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "ANTIGRAVITY_VENV", "ANTIGRAVITY_GATEWAY_CONFIG", "STATE_DIRECTORY")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin)
    env["XDG_DATA_HOME"] = str(tmp / "data")
    env["XDG_CONFIG_HOME"] = str(tmp / "config")
    return env


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=str(cwd), env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_readme_set_up_and_printed_commands_work_on_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "antigravity-gateway"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    env = clean_env(tmp_path)

    first = run(["./scripts/run", "--version"], clone, env, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert re.fullmatch(r"antigravity-gateway \S+\n", first.stdout)
    assert "setup: creating the environment" in first.stderr and re.search(r"setup: done in \d+ s", first.stderr)
    again = run(["./scripts/run", "--version"], clone, env)
    assert again.returncode == 0 and "setup:" not in again.stderr  # set-up happens once

    listed = run(["./scripts/accounts", "list"], clone, env)
    assert listed.returncode == 0, listed.stderr
    printed = re.search(r"add one: (.+?) add\)", listed.stdout)
    assert printed and printed.group(1) == "./scripts/accounts", listed.stdout
    works = run([printed.group(1), "add", "--help"], clone, env)
    assert works.returncode == 0 and "--no-browser" in works.stdout

    demo = run(["./scripts/demo", "--port", str(free_port()), "--emulator-port", str(free_port())], clone, env, timeout=120)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "Echo: Hello from the demo" in demo.stdout and "totalTokens" in demo.stdout
    logs = re.search(r"logs kept in (\S+)", demo.stderr)
    assert logs and (Path(logs.group(1)) / "gateway.log").exists()

    # The gateway with an empty pool: the 503 names a command that works here, as printed.
    port = free_port()
    log = tmp_path / "gateway.log"
    with open(log, "w") as out:
        popen = subprocess.Popen(["./scripts/run", "--port", str(port)], cwd=str(clone), env=env, stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    gateway = Process("gateway", popen, log)
    try:
        gateway.wait_for_log("plugins:", timeout=60)
        assert "0 accounts: run `./scripts/accounts add`" in gateway.text()
        status, _, body = call("POST", f"http://127.0.0.1:{port}/v1beta/models/gemini-3-flash:generateContent",
                               {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]})
    finally:
        gateway.stop()
    message = json.loads(body)["error"]["message"]
    assert status == 503 and "`./scripts/accounts add`" in message, message
    assert run(["./scripts/accounts", "enable", "--help"], clone, env).returncode == 0
