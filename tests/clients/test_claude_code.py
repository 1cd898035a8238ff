"""Claude Code (npm @anthropic-ai/claude-code, `claude -p`) against a ``twist``-started gateway and emulator.

Run as a user would configure it: ANTHROPIC_BASE_URL + ANTHROPIC_AUTH_TOKEN,
its default model, and every switch that keeps it off the network otherwise
(npm.QUIET). One prompt makes it run its Bash tool and answer from the
result; its own requests carry a ``role: "system"`` message inside
``messages`` (beside adaptive thinking, ``output_config`` and
``context_management``), which used to fail with "messages.1.role: must be
user or assistant".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clients import npm
from tests.clients.stack import ClientStack

pytestmark = pytest.mark.clients


def claude_env(gw: ClientStack, tmp_path: Path) -> dict[str, str]:
    return npm.env(tmp_path / "home", ANTHROPIC_BASE_URL=gw.url, ANTHROPIC_AUTH_TOKEN="test-key")


def test_default_model_answers(gw: ClientStack, tmp_path: Path) -> None:
    claude = npm.tool("claude")
    out = npm.json_output(npm.run([str(claude), "-p", "Say hello", "--output-format", "json"], claude_env(gw, tmp_path), tmp_path))
    assert out["is_error"] is False and out["result"] == "Echo: Say hello", out
    sent = gw.requests("streamGenerateContent")
    assert sent and sent[-1]["body"]["model"].startswith("claude-opus")  # its default (an Opus id) resolved
    request = sent[-1]["body"]["request"]
    # Claude Code's mid-conversation system message arrived, in place, as reminder text
    texts = [p.get("text", "") for turn in request["contents"] for p in turn["parts"]]
    assert any(t.startswith("<system-reminder>\n# Environment") for t in texts), texts
    assert request["generationConfig"]["thinkingConfig"]["thinkingBudget"] > 0  # adaptive thinking + effort


def test_bash_tool_round_trip(gw: ClientStack, tmp_path: Path) -> None:
    claude = npm.tool("claude")
    result = npm.run([str(claude), "-p", "Use the Bash tool to run `echo twist-ok-42`", "--allowedTools", "Bash",
                      "--output-format", "json"], claude_env(gw, tmp_path), tmp_path)
    out = npm.json_output(result)
    assert out["is_error"] is False and out["num_turns"] == 2 and "twist-ok-42" in out["result"], out
    sent = gw.requests("streamGenerateContent")
    first = [p for p in sent[-2]["body"]["request"]["contents"][-1]["parts"]]
    assert any("Use the Bash tool" in p.get("text", "") for p in first)
    responses = [p["functionResponse"] for p in sent[-1]["body"]["request"]["contents"][-1]["parts"] if "functionResponse" in p]
    assert responses and responses[0]["name"] == "Bash" and "twist-ok-42" in json.dumps(responses[0]["response"])
