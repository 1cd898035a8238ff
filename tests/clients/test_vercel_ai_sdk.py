"""The Vercel AI SDK (npm ``ai`` with @ai-sdk/google, @ai-sdk/anthropic, @ai-sdk/openai) against the gateway.

``js/ai_sdk.mjs`` runs, per provider: generateText, streamText, a tool with
a zod schema over two steps (the SDK validates the arguments before calling
``execute``), and structured output (``Output.object`` with a zod schema the
SDK validates). The default ``openai(model)`` provider speaks the Responses
API (``POST /v1/responses``); ``openai-chat`` uses chat completions.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.clients import npm
from tests.clients.stack import ClientStack

pytestmark = pytest.mark.clients

CASES = [
    ("google", "gemini-3-flash"),
    ("anthropic", "claude-sonnet-4-6"),
    ("openai-chat", "gemini-3-flash"),
    ("openai", "gemini-3-flash"),
]


@pytest.mark.parametrize(("provider", "model"), CASES)
def test_generate_stream_tools_and_structured_output(gw: ClientStack, tmp_path: Path, provider: str, model: str) -> None:
    node = npm.tool("node")
    result = subprocess.run([str(node), str(npm.JS / "ai_sdk.mjs"), provider, model], env=npm.env(tmp_path / "home", GATEWAY_URL=gw.url),
                            cwd=npm.JS, capture_output=True, text=True, timeout=npm.TIMEOUT)
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["generate"] == "Echo: Hello from the AI SDK"
    assert out["stream"] == "Echo: Stream to the AI SDK"
    assert out["tools"]["calls"] == [{"city": "Paris", "unit": "celsius"}] and out["tools"]["steps"] == 2
    assert "sunny" in out["tools"]["text"]
    movie = out["object"]
    assert movie["year"] == 2021 and movie["genres"] == ["scifi"] and 0 <= movie["rating"] <= 5
    assert set(movie["director"]) == {"name", "born"}
