"""Running the npm clients (Claude Code, gemini-cli, Codex, the Vercel AI SDK, the openai Node SDK)
against the client stack (helpers).

They all live in ``tests/clients/js`` (one package.json + lockfile; ``.ci/run``
runs ``npm ci`` there once). The ``node`` npm package brings Node 22 into
``node_modules/.bin``, which goes first on PATH, so a machine with an older
Node still runs them. Each client gets a fresh HOME, no proxies, and every
switch that stops telemetry, update checks and other traffic away from the
gateway.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

JS = Path(__file__).parent / "js"
BIN = JS / "node_modules" / ".bin"
TIMEOUT = 180

#: Environment that keeps the npm clients off the network except for the gateway.
QUIET = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_BUG_COMMAND": "1",
    "CLAUDE_CODE_ATTRIBUTION_HEADER": "0",
    "GEMINI_CLI_TRUST_WORKSPACE": "true",
    "NO_COLOR": "1",
    "CI": "1",
}


#: Anything a client tries to reach besides the gateway on loopback goes to a closed port (and fails).
BLACKHOLE = {
    "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
}


def tool(name: str) -> Path:
    """``node_modules/.bin/<name>``, or skip the test saying how to install it."""
    path = BIN / name
    if not path.exists() or not (BIN / "node").exists():
        pytest.skip(f"{name} is not installed: run `npm ci` in {JS} (.ci/run does)")
    return path


def env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment: PATH with Node 22 first, a private HOME, no proxies or cloud credentials."""
    keep = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TERM", "TMPDIR", "SYSTEMROOT")}
    home.mkdir(parents=True, exist_ok=True)
    return {**keep, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(home),
            **QUIET, **BLACKHOLE, **extra}


def run(args: list[str], environment: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=environment, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL)


def json_output(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON a client printed (``--output-format json``), failing with its stderr when there is none."""
    text = result.stdout.strip()
    start = text.find("{")
    if result.returncode != 0 and start < 0:
        raise AssertionError(f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}")
    try:
        return json.loads(text[start:])
    except ValueError:
        raise AssertionError(f"no JSON in output\nstdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}") from None
