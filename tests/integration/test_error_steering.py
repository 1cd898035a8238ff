"""Upstream errors that steer the pool, against the emulator (PROTOCOL.md 2b).

One-host 403s, model-family refusals, bans, per-model rate limits and empty
streams each change what happens to the account in a specific way; these tests
fail if the gateway goes back to retiring accounts for any 403.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted
import treq

from tests.integration.harness import accounts, body_json, start_stack

FLASH = "/v1beta/models/gemini-3-flash:generateContent"
SONNET = "/v1beta/models/claude-sonnet-4-6:generateContent"
STREAM = "/v1beta/models/gemini-3-flash:streamGenerateContent?alt=sse"


def ask(text: str = "Hello") -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def stored(stack: Any) -> dict[str, dict[str, Any]]:
    return {a["email"]: a for a in stack.stored()}


@pytest_twisted.ensureDeferred
async def test_a_403_from_one_host_moves_to_the_next_host_and_hurts_no_account(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), hosts=("sandbox", "prod")) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "host": "sandbox", "status": 403,
                                        "reason": "PERMISSION_DENIED", "message": "Permission denied.", "times": -1})
        response = await stack.post(FLASH, ask())
        assert response.code == 200, await body_json(response)
        await treq.content(response)
        hosts = [r["host"] for r in stack.emulator.state.requests("generateContent")]
        assert hosts == ["sandbox", "prod"]
        account = stored(stack)["user0@example.com"]
        assert not account.get("disabled") and not account.get("model_cooldowns") and not account.get("cooldown_until")


@pytest_twisted.ensureDeferred
async def test_a_403_for_one_model_family_rests_that_model_on_that_account_only(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(2)) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "email": "user0@example.com", "family": "claude",
                                        "status": 403, "reason": "PERMISSION_DENIED", "message": "Claude is not available for this account.",
                                        "times": -1})
        for i in range(3):
            response = await stack.post(SONNET, ask(f"c{i}"))
            assert response.code == 200, await body_json(response)
            await treq.content(response)
        user0 = stored(stack)["user0@example.com"]
        assert not user0.get("disabled")
        assert "claude-sonnet-4-6" in user0["model_cooldowns"]
        flash = [r["email"] for r in stack.emulator.state.requests("generateContent")]
        refused = sum(1 for r in stack.emulator.state.requests("generateContent") if r["email"] == "user0@example.com")
        assert refused == 1 and flash.count("user1@example.com") == 3
        for i in range(2):  # Gemini still goes to user0
            await treq.content(await stack.post(FLASH, ask(f"g{i}")))
        assert "user0@example.com" in [r["email"] for r in stack.emulator.state.requests("generateContent")][-2:]


@pytest_twisted.ensureDeferred
async def test_only_account_disabled_retires_an_account(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(2)) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "email": "user0@example.com", "status": 403,
                                        "reason": "ACCOUNT_DISABLED", "message": "This account has been disabled.", "times": -1})
        for i in range(3):
            response = await stack.post(FLASH, ask(f"c{i}"))
            assert response.code == 200
            await treq.content(response)
        user0 = stored(stack)["user0@example.com"]
        assert user0["disabled"] is True and "ACCOUNT_DISABLED" in user0["disabled_reason"]


@pytest_twisted.ensureDeferred
async def test_an_empty_200_stream_is_retried_once(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        stack.emulator.state.add_fault({"method": "streamGenerateContent", "kind": "empty", "times": 1})
        response = await stack.post(STREAM, ask("Hello stream 3 events"))
        raw = (await treq.content(response)).decode()
        assert response.code == 200 and raw.count("data: ") == 3 and '"candidates"' in raw
        assert len(stack.emulator.state.requests("streamGenerateContent")) == 2


@pytest_twisted.ensureDeferred
async def test_an_empty_stream_twice_is_a_clear_503(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        stack.emulator.state.add_fault({"method": "streamGenerateContent", "kind": "empty", "times": -1})
        response = await stack.post(STREAM, ask())
        error = (await body_json(response))["error"]
        assert response.code == 503 and "empty stream" in error["message"]
        assert len(stack.emulator.state.requests("streamGenerateContent")) == 2
        assert not stored(stack)["user0@example.com"].get("disabled")


@pytest_twisted.ensureDeferred
async def test_a_days_long_model_cooldown_ends_when_a_quota_poll_shows_quota_again(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        state = stack.emulator.state
        await treq.content(await stack.post(FLASH, ask()))  # the pool has a quota snapshot with quota left
        state.set_quota({"email": "user0@example.com", "model": "gemini-3-flash", "remaining_fraction": 0, "reset_in": 5 * 86400})
        first = await stack.post(FLASH, ask())
        assert first.code == 429
        await treq.content(first)
        assert stored(stack)["user0@example.com"]["model_cooldowns"]["gemini-3-flash"]["until"] > stack.gateway.pool.clock() + 4 * 86400
        state.set_quota({"email": "user0@example.com", "model": "gemini-3-flash", "remaining_fraction": 1})  # Google grants it back
        await stack.gateway.quota.poll("user0@example.com")  # may join the poll the 429 started
        await stack.gateway.quota.poll("user0@example.com")  # a fresh one, after the grant
        assert "gemini-3-flash" not in (stored(stack)["user0@example.com"].get("model_cooldowns") or {})
        again = await stack.post(FLASH, ask())
        assert again.code == 200, await body_json(again)
        await treq.content(again)
