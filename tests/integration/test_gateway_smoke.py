from __future__ import annotations

from pathlib import Path

import pytest_twisted

from tests.integration.harness import accounts, body_json, start_stack

HELLO = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}


@pytest_twisted.ensureDeferred
async def test_generate_through_the_gateway(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, accounts(1))
    try:
        response = await stack.post("/v1beta/models/gemini-3-flash:generateContent", HELLO)
        body = await body_json(response)
        assert response.code == 200, body
        assert "response" not in body
        assert body["candidates"][0]["content"]["parts"][0]["text"]
    finally:
        await stack.stop()
