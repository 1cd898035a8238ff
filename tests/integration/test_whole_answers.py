"""A whole (non-streamed) answer, or an error, goes out in one piece with its Content-Length on every door
that is served without Klein (gateway.web.direct), not chunked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytest_twisted

from tests.integration.harness import accounts, start_stack
from tests.integration.rawhttp import exchange, parse

HI = "Say hello."
DOORS = {
    "gemini": ("/v1beta/models/gemini-3-flash:generateContent", {"contents": [{"role": "user", "parts": [{"text": HI}]}]}),
    "openai": ("/v1/chat/completions", {"model": "gemini-3-flash", "messages": [{"role": "user", "content": HI}]}),
    "anthropic": ("/v1/messages", {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": HI}]}),
    "responses": ("/v1/responses", {"model": "gemini-3-flash", "input": HI, "store": False}),
}


def post(path: str, body: dict) -> bytes:
    data = json.dumps(body).encode()
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(data) + data)


@pytest.mark.parametrize("door", sorted(DOORS))
@pytest_twisted.ensureDeferred
async def test_answers_and_errors_carry_their_length(tmp_path: Path, door: str) -> None:
    path, body = DOORS[door]
    unknown = dict(body, model="no-such-model") if "model" in body else body
    unknown_path = path.replace("gemini-3-flash", "no-such-model")
    async with start_stack(tmp_path, accounts(1)) as stack:
        port = stack.port.getHost().port
        answers = [parse(await exchange(port, [post(path, body)])),
                   parse(await exchange(port, [post(unknown_path, unknown)]))]
    assert [status for status, _, _ in answers] == [200, 404], answers
    for _, headers, raw in answers:
        assert "transfer-encoding" not in headers, headers
        assert int(headers["content-length"]) == len(raw)
        json.loads(raw)  # the whole document, nothing after it
