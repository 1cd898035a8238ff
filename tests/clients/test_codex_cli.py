"""Codex CLI (npm ``@openai/codex``) against a ``twist``-started gateway and emulator.

``codex exec`` with a custom provider in a temporary ``CODEX_HOME``
(``wire_api = "responses"``, ``env_key``), exactly as docs/responses-and-codex.md
tells users to configure it. The emulator calls Codex's shell tool
(``exec_command``) when the prompt says ``call function exec_command``, with
schema-valid arguments taken from the prompt (the backquoted command), so
Codex really runs the command and sends its output back through the gateway.

The CLI comes from ``tests/clients/js`` (``npm ci`` there; ``.ci/run`` does it),
like every npm client (``tests.clients.npm``): a private HOME, no proxies, and
traffic anywhere but the gateway sent to a closed port.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.clients import npm
from tests.clients.stack import ClientStack

pytestmark = pytest.mark.clients

CONFIG = """\
model = "gemini-3-flash"
model_provider = "antigravity"

[model_providers.antigravity]
name = "Antigravity gateway"
base_url = "{url}/v1"
env_key = "ANTIGRAVITY_GATEWAY_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
"""



def run_codex(gw: ClientStack, tmp_path: Path, prompt: str) -> subprocess.CompletedProcess[str]:
    codex = npm.tool("codex")
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(CONFIG.format(url=gw.url))
    work = tmp_path / "work"
    work.mkdir()
    env = npm.env(tmp_path / "home", CODEX_HOME=str(home), ANTIGRAVITY_GATEWAY_KEY="any-key")
    return npm.run([str(codex), "exec", "--skip-git-repo-check", "--color", "never", prompt], env, work)


def test_codex_exec_one_prompt(gw: ClientStack, tmp_path: Path) -> None:
    result = run_codex(gw, tmp_path, "Hello from codex")
    assert result.returncode == 0, result.stdout + result.stderr + gw.logs()
    # Codex sends its environment context and the prompt as two user messages (one Gemini turn); the
    # emulator echoes the turn (or, once it skips context blocks, the prompt alone)
    assert "Echo: " in result.stdout and result.stdout.rstrip().endswith("Hello from codex")
    [call] = gw.requests("streamGenerateContent")
    assert call["body"]["model"] == "gemini-3-flash"
    request = call["body"]["request"]
    assert request["systemInstruction"]["parts"]  # Codex's developer messages
    names = {d["name"] for d in request["tools"][0]["functionDeclarations"]}
    assert "exec_command" in names and "multi_agent_v1__spawn_agent" in names  # a namespace tool, flattened


def test_codex_exec_shell_tool_round_trip(gw: ClientStack, tmp_path: Path) -> None:
    result = run_codex(gw, tmp_path, "call function exec_command to run `echo codex-round-trip`")
    assert result.returncode == 0, result.stdout + result.stderr + gw.logs()
    first, second = gw.requests("streamGenerateContent")
    call_turn = second["body"]["request"]["contents"][-2]
    [call] = [p for p in call_turn["parts"] if "functionCall" in p]
    assert call["functionCall"]["name"] == "exec_command"
    assert call["thoughtSignature"] != "skip_thought_signature_validator"  # came back through encrypted_content
    [answer] = second["body"]["request"]["contents"][-1]["parts"]
    assert answer["functionResponse"]["id"] == call["functionCall"]["id"]
    assert call["functionCall"]["args"]["cmd"] == "echo codex-round-trip", call
    assert "codex-round-trip" in json.dumps(answer["functionResponse"]["response"]), answer  # Codex ran it
    assert "Results: exec_command=" in result.stdout
