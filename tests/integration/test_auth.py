"""Auth modes and key placements over loopback; a 401 never echoes the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytest_twisted
import treq

from tests.integration.harness import accounts, start_stack

HELLO = json.dumps({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}).encode()
GENERATE = "/v1beta/models/gemini-3-flash:generateContent"
KEY = "gw-key-0123456789abcdef"


def keyed(mode: str) -> dict:
    return {"auth": {"mode": mode, "keys": (KEY, "second-key-xyz")}}


@pytest.mark.parametrize(
    "where",
    ["x-goog-api-key", "query", "bearer", "x-api-key"],
)
@pytest_twisted.ensureDeferred
async def test_each_key_placement_is_accepted(tmp_path: Path, where: str) -> None:
    async with start_stack(tmp_path, accounts(1), **keyed("strict")) as stack:
        headers = {b"Content-Type": [b"application/json"]}
        path = GENERATE
        if where == "x-goog-api-key":
            headers[b"x-goog-api-key"] = [KEY.encode()]
        elif where == "query":
            path += f"?key={KEY}"
        elif where == "bearer":
            headers[b"Authorization"] = [b"Bearer " + KEY.encode()]
        else:
            headers[b"x-api-key"] = [KEY.encode()]
        response = await stack.client.post(stack.url + path, data=HELLO, headers=headers)
        assert response.code == 200, await treq.content(response)
        await treq.content(response)


@pytest.mark.parametrize("sent", [None, "wrong-key-9876543210"])
@pytest_twisted.ensureDeferred
async def test_missing_or_wrong_key_is_401_without_echo(tmp_path: Path, sent: str | None) -> None:
    async with start_stack(tmp_path, accounts(1), **keyed("strict")) as stack:
        headers = {b"Content-Type": [b"application/json"]}
        if sent:
            headers[b"x-goog-api-key"] = [sent.encode()]
        response = await stack.client.post(stack.url + GENERATE, data=HELLO, headers=headers)
        raw = await treq.content(response)
        assert response.code == 401
        error = json.loads(raw)["error"]
        assert error["status"] == "UNAUTHENTICATED" and error["code"] == 401
        assert (sent or KEY).encode() not in raw and KEY.encode() not in raw
        assert stack.emulator.state.requests("generateContent") == []


@pytest.mark.parametrize("mode, health_open", [("strict", False), ("all_except_health", True)])
@pytest_twisted.ensureDeferred
async def test_health_is_open_except_in_strict_mode(tmp_path: Path, mode: str, health_open: bool) -> None:
    async with start_stack(tmp_path, accounts(1), **keyed(mode)) as stack:
        health = await stack.get("/healthz")
        await treq.content(health)
        assert (health.code == 200) is health_open
        models = await stack.get("/v1beta/models")
        await treq.content(models)
        assert models.code == 401


@pytest_twisted.ensureDeferred
async def test_auth_off_accepts_any_key_the_sdks_insist_on(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        response = await stack.client.post(
            stack.url + GENERATE, data=HELLO,
            headers={b"Content-Type": [b"application/json"], b"x-goog-api-key": [b"anything"]},
        )
        assert response.code == 200
        await treq.content(response)
