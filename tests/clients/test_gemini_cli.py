"""gemini-cli (npm @google/gemini-cli, `gemini -p`) with its default model against a ``twist``-started gateway.

Configured as docs/clients.md says: GEMINI_API_KEY (any key the gateway
accepts) and GOOGLE_GEMINI_BASE_URL, plus settings that switch off its
telemetry and update checks. Its default model and the small model it asks
first to route the prompt are newer than the emulator's catalogue; the
client stack's config maps them (tests/clients/stack.py) until the
live-catalogue resolver does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clients import npm
from tests.clients.stack import ClientStack

pytestmark = pytest.mark.clients

SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
}


def gemini_env(gw: ClientStack, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(SETTINGS))
    return npm.env(home, GEMINI_API_KEY="test-key", GOOGLE_GEMINI_BASE_URL=gw.url)


def test_default_model_answers(gw: ClientStack, tmp_path: Path) -> None:
    gemini = npm.tool("gemini")
    out = npm.json_output(npm.run([str(gemini), "-p", "Say hello", "--output-format", "json"], gemini_env(gw, tmp_path), tmp_path))
    assert out.get("response") == "Echo: Say hello", out
    models = {r["body"]["model"] for r in gw.requests("streamGenerateContent")}
    assert models == {"gemini-3-flash"}


def test_read_file_tool_round_trip(gw: ClientStack, tmp_path: Path) -> None:
    gemini = npm.tool("gemini")
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("twist-notes-17\n")
    out = npm.json_output(npm.run([str(gemini), "-p", f"Use read_file to read `{work / 'notes.txt'}`", "--output-format", "json"],
                                  gemini_env(gw, tmp_path), work))
    assert "twist-notes-17" in out.get("response", ""), out
    last = gw.requests("streamGenerateContent")[-1]["body"]["request"]["contents"][-1]["parts"]
    assert any(p.get("functionResponse", {}).get("name") == "read_file" for p in last)
