"""Failures upstream, as the gateway handles them: other accounts, other hosts, dead grants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest_twisted
import treq
from twisted.internet import defer

from tests.integration.harness import accounts, body_json, start_stack

HELLO = {"contents": [{"role": "user", "parts": [{"text": "Hello there"}]}]}
GENERATE = "/v1beta/models/gemini-3-flash:generateContent"


def emails(stack: object, method: str = "generateContent") -> list[str]:
    return [r["email"] for r in stack.emulator.state.requests(method)]  # type: ignore[attr-defined]


@pytest_twisted.ensureDeferred
async def test_429_moves_to_another_account_never_the_same_one(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(3)) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "status": 429, "reason": "RATE_LIMIT_EXCEEDED", "retry_delay": 30, "times": 2})
        response = await stack.post(GENERATE, HELLO)
        assert response.code == 200, await treq.content(response)
        await treq.content(response)
        tried = emails(stack)
        assert len(tried) == 3 and len(set(tried)) == 3


@pytest_twisted.ensureDeferred
async def test_429_on_every_attempt_is_passed_through_with_retry_info(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(4)) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "status": 429, "reason": "RATE_LIMIT_EXCEEDED", "retry_delay": 42, "times": -1})
        response = await stack.post(GENERATE, HELLO)
        error = (await body_json(response))["error"]
        assert response.code == 429 and error["status"] == "RESOURCE_EXHAUSTED"
        retry = [d for d in error["details"] if d["@type"].endswith("RetryInfo")]
        assert retry and retry[0]["retryDelay"] == "42s"
        # max_attempts (3) accounts, each once, though 4 exist
        tried = emails(stack)
        assert len(tried) == 3 and len(set(tried)) == 3


@pytest_twisted.ensureDeferred
async def test_max_attempts_is_configurable(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(4), upstream={"max_attempts": 2}, accounts={"capacity_backoff": 0.01}) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "status": 503, "times": -1})
        response = await stack.post(GENERATE, HELLO)
        assert response.code == 503
        # a 503 is capacity trouble upstream: backed off, and the client is told rotating rarely helps
        assert "other accounts rarely help" in (await body_json(response))["error"]["message"]
        assert len(emails(stack)) == 2


@pytest_twisted.ensureDeferred
async def test_a_400_is_the_answer_and_is_not_retried(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(3)) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "status": 400, "message": "Invalid value at 'request.generation_config.temperature'"})
        response = await stack.post(GENERATE, HELLO)
        error = (await body_json(response))["error"]
        assert response.code == 400 and error["status"] == "INVALID_ARGUMENT"
        assert "temperature" in error["message"]
        assert len(emails(stack)) == 1


@pytest_twisted.ensureDeferred
async def test_hosts_are_tried_in_order_on_5xx_and_connection_errors(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), hosts=("sandbox", "daily", "prod")) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "host": "sandbox", "status": 503, "times": -1})
        stack.emulator.state.add_fault({"method": "generateContent", "host": "daily", "status": 404, "times": -1})
        response = await stack.post(GENERATE, HELLO)
        assert response.code == 200, await treq.content(response)
        await treq.content(response)
        hosts = [r["host"] for r in stack.emulator.state.requests("generateContent")]
        assert hosts == ["sandbox", "daily", "prod"]
        # the account is fine: one account served it
        assert len(set(emails(stack))) == 1


@pytest_twisted.ensureDeferred
async def test_unreachable_first_host_falls_back(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        dead = "http://127.0.0.1:9"  # discard port: nothing listens
        from gateway.upstream.client import UpstreamClient

        client: UpstreamClient = stack.gateway.forwarder.client
        client.hosts = (dead,) + client.hosts
        response = await stack.post(GENERATE, HELLO)
        assert response.code == 200, await treq.content(response)
        await treq.content(response)


@pytest_twisted.ensureDeferred
async def test_all_hosts_unreachable_is_503(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        stack.gateway.forwarder.client.hosts = ("http://127.0.0.1:9",)
        # token refresh goes to the emulator; generation cannot reach anything
        response = await stack.post(GENERATE, HELLO)
        error = (await body_json(response))["error"]
        assert response.code == 503 and error["status"] == "UNAVAILABLE"
        assert "unreachable" in error["message"].lower()


@pytest_twisted.ensureDeferred
async def test_invalid_grant_disables_the_account_persistently_and_another_serves(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(2)) as stack:
        stack.emulator.state.revoke("user0@example.com", refresh=True)
        for _ in range(2):
            response = await stack.post(GENERATE, HELLO)
            assert response.code == 200, await treq.content(response)
            await treq.content(response)
        assert set(emails(stack)) == {"user1@example.com"}
        stored = {a["email"]: a for a in stack.stored()}
        assert stored["user0@example.com"]["disabled"] is True
        assert "invalid_grant" in stored["user0@example.com"]["disabled_reason"]
        assert stored["user1@example.com"]["disabled"] is False
        assert "1//refresh" not in stored["user0@example.com"]["disabled_reason"]


@pytest_twisted.ensureDeferred
async def test_401_refreshes_the_token_once_and_retries_on_the_same_account(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(2)) as stack:
        session = {b"x-session-id": [b"conversation-1"]}  # sticky: both requests go to one account
        first = await stack.post(GENERATE, HELLO, headers=dict(session))
        await treq.content(first)
        [served] = emails(stack)
        stack.emulator.state.revoke(served)  # its access tokens die, its refresh token lives
        second = await stack.post(GENERATE, HELLO, headers=dict(session))
        assert second.code == 200, await treq.content(second)
        await treq.content(second)
        calls = stack.emulator.state.requests("generateContent")[1:]
        # the rejected call and its retry, both on the account whose token died
        assert [c["status"] for c in calls] == [401, 200]
        assert [c["body"]["project"] for c in calls] == [stack.emulator.state.accounts[served].project_id] * 2
        assert stack.emulator.state.stats.token_refreshes[served] == 2
        [record] = [a for a in stack.stored() if a["email"] == served]
        assert record["disabled"] is False and "cooldown_until" not in record


@pytest_twisted.ensureDeferred
async def test_a_second_401_after_the_refresh_moves_on_and_cools_the_account(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(2)) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "email": "user0@example.com", "status": 401, "times": -1})
        for _ in range(2):
            response = await stack.post(GENERATE, HELLO)
            assert response.code == 200, await treq.content(response)
            await treq.content(response)
        user0 = [c["status"] for c in stack.emulator.state.requests("generateContent") if c["email"] == "user0@example.com"]
        assert user0 == [401, 401]  # once, refreshed once, then never again while it cools
        stored = {a["email"]: a for a in stack.stored()}
        assert stored["user0@example.com"]["cooldown_until"] > 0


@pytest_twisted.ensureDeferred
async def test_concurrent_requests_share_one_refresh(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        responses = await defer.gatherResults([stack.post(GENERATE, HELLO) for _ in range(6)])
        assert [r.code for r in responses] == [200] * 6
        for r in responses:
            await treq.content(r)
        assert stack.emulator.state.stats.token_refreshes == {"user0@example.com": 1}
        assert len(stack.emulator.state.requests("loadCodeAssist")) == 1


@pytest_twisted.ensureDeferred
async def test_missing_project_is_onboarded_once_and_stored(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1, projects=False), emulator_settings={"onboard_polls": 1}) as stack:
        stack.gateway.forwarder.projects._poll_interval = 0.01
        response = await stack.post(GENERATE, HELLO)
        assert response.code == 200, await treq.content(response)
        await treq.content(response)
        [record] = stack.stored()
        assert record["project_id"]
        assert stack.emulator.state.requests("generateContent")[0]["body"]["project"] == record["project_id"]
        assert len(stack.emulator.state.requests("onboardUser")) == 1
        again = await stack.post(GENERATE, HELLO)
        await treq.content(again)
        assert len(stack.emulator.state.requests("loadCodeAssist")) == 1


@pytest_twisted.ensureDeferred
async def test_ineligible_account_is_disabled_with_its_reason(tmp_path: Path) -> None:
    from gateway.emulator.state import Account

    blocked = Account("blocked@example.com", "1//blocked", None, "free-tier",
                      [{"reasonCode": "UNSUPPORTED_LOCATION", "reasonMessage": "Not available in your country"}])
    async with start_stack(tmp_path, [blocked]) as stack:
        response = await stack.post(GENERATE, HELLO)
        assert response.code == 503
        await treq.content(response)
        [record] = stack.stored()
        assert record["disabled"] is True and "UNSUPPORTED_LOCATION" in record["disabled_reason"]


@pytest_twisted.ensureDeferred
async def test_disabled_accounts_in_the_store_are_never_used(tmp_path: Path) -> None:
    store = [
        {"email": "user0@example.com", "refresh_token": "1//refresh-0", "disabled": True, "disabled_reason": "operator"},
        {"email": "user1@example.com", "refresh_token": "1//refresh-1"},
    ]
    async with start_stack(tmp_path, accounts(2), store_accounts=store) as stack:
        for _ in range(3):
            response = await stack.post(GENERATE, HELLO)
            await treq.content(response)
        assert set(emails(stack)) == {"user1@example.com"}


@pytest_twisted.ensureDeferred
async def test_rotated_refresh_token_is_stored(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), emulator_settings={"rotate_refresh_tokens": True}) as stack:
        response = await stack.post(GENERATE, HELLO)
        assert response.code == 200
        await treq.content(response)
        [record] = stack.stored()
        assert record["refresh_token"] != "1//refresh-0"
        assert stack.emulator.state.account_for_refresh(record["refresh_token"]) is not None


@pytest_twisted.ensureDeferred
async def test_upstream_error_bodies_never_leak_tokens(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "status": 403, "message": "Bearer ya29.secret-token denied for project-0", "times": -1})
        response = await stack.post(GENERATE, HELLO)
        raw = await treq.content(response)
        assert response.code == 403
        assert b"ya29.secret-token" not in raw
        assert json.loads(raw)["error"]["status"] == "PERMISSION_DENIED"
