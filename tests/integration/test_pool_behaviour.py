"""The pool against the emulator: rotation, cooldowns per account and model, stickiness,
concurrency limits, quota polling, restarts, hot reloads and the admin view."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from gateway.pool.account import Account
from gateway.pool.json_store import JSONAccountStore
from tests.integration.harness import accounts, body_json, start_stack

PRO = "/v1beta/models/gemini-3.1-pro-low:generateContent"
FLASH = "/v1beta/models/gemini-3-flash:generateContent"
STREAM = "/v1beta/models/gemini-3-flash:streamGenerateContent?alt=sse"


def ask(text: str = "Hello there") -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def calls(stack: Any, method: str = "generateContent", model: str | None = None) -> list[dict[str, Any]]:
    found = stack.emulator.state.requests(method)
    if model is not None:
        found = [c for c in found if c["body"]["model"] == model]
    return found


def emails(stack: Any, method: str = "generateContent", model: str | None = None) -> list[str]:
    return [c["email"] for c in calls(stack, method, model)]


async def ok(response: Any) -> bytes:
    body = await treq.content(response)
    assert response.code == 200, body
    return body


async def sleep(seconds: float) -> None:
    await deferLater(reactor, seconds, lambda: None)


@pytest_twisted.ensureDeferred
async def test_rotation_never_reuses_a_failed_account_within_a_request(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(5), upstream={"max_attempts": 5}) as stack:
        state = stack.emulator.state
        state.add_fault({"method": "generateContent", "status": 429, "reason": "RATE_LIMIT_EXCEEDED", "retry_delay": 30, "times": 1})
        state.add_fault({"method": "generateContent", "status": 500, "times": 1})
        state.add_fault({"method": "generateContent", "status": 429, "reason": "QUOTA_EXHAUSTED", "quota_reset_delay": 600, "times": 1})
        state.add_fault({"method": "generateContent", "status": 403, "times": 1})
        await ok(await stack.post(FLASH, ask()))
        tried = emails(stack)
        assert [c["status"] for c in calls(stack)] == [429, 500, 429, 403, 200]
        assert len(tried) == 5 and len(set(tried)) == 5


@pytest_twisted.ensureDeferred
async def test_a_short_rate_limit_is_retried_once_on_the_same_account(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(3)) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "status": 429, "reason": "RATE_LIMIT_EXCEEDED", "retry_delay": 0.05, "times": 1})
        await ok(await stack.post(FLASH, ask()))
        first, second = emails(stack)
        assert first == second
        assert not any(a.get("cooldown_until") for a in stack.stored())


@pytest_twisted.ensureDeferred
async def test_a_rate_limit_naming_a_model_rests_that_model_on_that_account(tmp_path: Path) -> None:
    """PROTOCOL.md 2b: RATE_LIMIT_EXCEEDED carries metadata.model and limits that model, not the account."""
    async with start_stack(tmp_path, accounts(2)) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "email": "user0@example.com", "model": "gemini-3-flash",
                                        "status": 429, "reason": "RATE_LIMIT_EXCEEDED", "retry_delay": 120, "times": -1})
        for i in range(4):
            await ok(await stack.post(FLASH, ask(f"conversation {i}")))
        assert emails(stack, model="gemini-3-flash").count("user0@example.com") <= 1
        [user0] = [a for a in stack.stored() if a["email"] == "user0@example.com"]
        assert not user0.get("cooldown_until")  # the account itself is not resting
        cooled = user0["model_cooldowns"]["gemini-3-flash"]
        assert cooled["until"] > stack.gateway.pool.clock() + 100 and "RATE_LIMIT_EXCEEDED" in cooled["reason"]
        for i in range(2):  # other models still use user0
            await ok(await stack.post(PRO, ask(f"pro {i}")))
        assert "user0@example.com" in emails(stack, model="gemini-3.1-pro-low")


@pytest_twisted.ensureDeferred
async def test_a_model_cooldown_leaves_the_account_serving_other_models(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "model": "gemini-3.1-pro-low", "status": 429, "reason": "QUOTA_EXHAUSTED", "quota_reset_delay": 3600, "times": 1})
        first = await stack.post(PRO, ask())
        assert first.code == 429
        await treq.content(first)
        # pro is cooling on the only account: answered from the pool without calling upstream
        again = await stack.post(PRO, ask())
        error = (await body_json(again))["error"]
        assert again.code == 429 and error["status"] == "RESOURCE_EXHAUSTED"
        [retry] = [d for d in error["details"] if d["@type"].endswith("RetryInfo")]
        assert 3590 <= float(retry["retryDelay"].rstrip("s")) <= 3600
        assert 3590 <= int(again.headers.getRawHeaders(b"retry-after")[0]) <= 3600
        assert len(calls(stack, model="gemini-3.1-pro-low")) == 1
        # flash is still served by the same account
        await ok(await stack.post(FLASH, ask()))
        assert emails(stack, model="gemini-3-flash") == ["user0@example.com"]
        [record] = stack.stored()
        assert set(record["model_cooldowns"]) == {"gemini-3.1-pro-low"} and not record.get("cooldown_until")


@pytest_twisted.ensureDeferred
async def test_when_every_account_cools_the_client_learns_when_the_first_comes_back(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(2)) as stack:
        state = stack.emulator.state
        state.add_fault({"method": "generateContent", "email": "user0@example.com", "status": 429, "reason": "RATE_LIMIT_EXCEEDED", "retry_delay": 40, "times": 1})
        state.add_fault({"method": "generateContent", "email": "user1@example.com", "status": 429, "reason": "RATE_LIMIT_EXCEEDED", "retry_delay": 90, "times": 1})
        response = await stack.post(FLASH, ask())
        error = (await body_json(response))["error"]
        assert response.code == 429 and error["status"] == "RESOURCE_EXHAUSTED"
        [retry] = [d for d in error["details"] if d["@type"].endswith("RetryInfo")]
        assert 38 <= float(retry["retryDelay"].rstrip("s")) <= 40
        assert "first comes back" in error["message"]


@pytest_twisted.ensureDeferred
async def test_capacity_failures_back_off_and_say_rotation_does_not_help(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(3), accounts={"capacity_backoff": 0.01}) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "status": 503, "reason": "MODEL_CAPACITY_EXHAUSTED", "times": -1})
        response = await stack.post(FLASH, ask())
        error = (await body_json(response))["error"]
        assert response.code == 503 and error["status"] == "UNAVAILABLE"
        assert "no capacity" in error["message"].lower() and "other accounts" in error["message"]
        assert len(calls(stack)) == 3
        assert not any(a.get("cooldown_until") or a.get("disabled") for a in stack.stored())


@pytest_twisted.ensureDeferred
async def test_capacity_recovers_after_a_backoff(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), accounts={"capacity_backoff": 0.01}) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "status": 429, "reason": "MODEL_CAPACITY_EXHAUSTED", "times": 1, "retry_delay": 0})
        await ok(await stack.post(FLASH, ask()))
        assert emails(stack) == ["user0@example.com"] * 2


@pytest_twisted.ensureDeferred
async def test_validation_required_rests_the_account_and_shows_its_url(tmp_path: Path) -> None:
    """PROTOCOL.md 2b: VALIDATION_REQUIRED is temporary: rest [accounts] validation_rest_seconds, stay enabled."""
    url = "https://accounts.google.com/signin/continue?sarp=1&scc=1&plt=AKgnsbs"
    async with start_stack(tmp_path, accounts(2), accounts={"validation_rest_seconds": 900}) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "email": "user0@example.com", "status": 403, "reason": "VALIDATION_REQUIRED", "validation_url": url, "times": -1})
        for i in range(3):
            await ok(await stack.post(FLASH, ask(f"c{i}")))
        stored = {a["email"]: a for a in stack.stored()}
        user0 = stored["user0@example.com"]
        assert not user0.get("disabled")
        assert user0["validation_url"] == url
        assert user0["cooldown_until"] > stack.gateway.pool.clock() + 800
        assert "VALIDATION_REQUIRED" in user0["cooldown_reason"]
        assert emails(stack).count("user0@example.com") == 1
        view = await body_json(await stack.get("/admin/accounts"))
        [shown] = [a for a in view["accounts"] if a["email"] == "user0@example.com"]
        assert shown["validation_url"] == url and shown["state"] == "cooling"


@pytest_twisted.ensureDeferred
async def test_restart_keeps_cooldowns_and_disable_reasons(tmp_path: Path) -> None:
    first_dir, second_dir = tmp_path / "one", tmp_path / "two"
    first_dir.mkdir()
    second_dir.mkdir()
    async with start_stack(first_dir, accounts(2)) as stack:
        state = stack.emulator.state
        state.add_fault({"method": "generateContent", "model": "gemini-3.1-pro-low", "email": "user0@example.com", "status": 429, "reason": "QUOTA_EXHAUSTED", "quota_reset_delay": 3600, "times": 1})
        state.add_fault({"method": "generateContent", "email": "user1@example.com", "status": 429, "reason": "RATE_LIMIT_EXCEEDED", "retry_delay": 600, "times": 1})
        for path in (PRO, PRO):
            response = await stack.post(path, ask())
            await treq.content(response)
        saved = stack.stored()
    # a new gateway (and a fresh upstream, where nothing is exhausted) on the same store
    async with start_stack(second_dir, accounts(2), store_accounts=saved) as stack:
        response = await stack.post(PRO, ask())
        assert response.code == 429, await treq.content(response)
        await treq.content(response)
        assert calls(stack) == []  # user0 still cools for pro (quota), user1 too (a long per-model rate limit)
        await ok(await stack.post(FLASH, ask()))
        # the stored access token means nothing to the new upstream: refreshed after a 401 (while
        # the live catalogue was fetched, or on this call), the request stays on the same account
        flash = calls(stack)
        assert [c["status"] for c in flash] in ([200], [401, 200])


@pytest_twisted.ensureDeferred
async def test_concurrent_401s_share_one_refresh(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        await ok(await stack.post(FLASH, ask()))
        stack.emulator.state.revoke("user0@example.com")
        responses = await defer.gatherResults([stack.post(FLASH, ask(f"c{i}")) for i in range(5)])
        for response in responses:
            await ok(response)
        assert stack.emulator.state.stats.token_refreshes == {"user0@example.com": 2}


@pytest_twisted.ensureDeferred
async def test_a_conversation_sticks_to_its_account(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(3)) as stack:
        conversation = ask("Let us talk about sticky sessions")
        for turn in range(4):
            conversation["contents"].append({"role": "model", "parts": [{"text": f"reply {turn}"}]})
            conversation["contents"].append({"role": "user", "parts": [{"text": f"follow-up {turn}"}]})
            await ok(await stack.post(FLASH, conversation))
        assert len(set(emails(stack))) == 1
        for i in range(3):  # other conversations spread over the idle accounts
            await ok(await stack.post(FLASH, ask(f"another topic {i}")))
        assert len(set(emails(stack))) == 3


@pytest_twisted.ensureDeferred
async def test_a_session_header_is_the_conversation_key(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(3), accounts={"session_header": "X-Conversation"}) as stack:
        for i in range(3):
            await ok(await stack.post(FLASH, ask(f"different text {i}"), headers={b"X-Conversation": [b"one"]}))
        assert len(set(emails(stack))) == 1


@pytest_twisted.ensureDeferred
async def test_sticky_sessions_can_be_turned_off(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(3), accounts={"session_ttl": 0}) as stack:
        for _ in range(3):
            await ok(await stack.post(FLASH, ask("same conversation")))
        assert len(set(emails(stack))) == 3


@pytest_twisted.ensureDeferred
async def test_max_in_flight_makes_requests_wait_for_a_free_account(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), accounts={"max_in_flight": 1}, emulator_settings={"event_delay": 0.02}) as stack:
        responses = await defer.gatherResults([stack.post(STREAM, ask(f"stream {i}")) for i in range(3)])
        for response in responses:
            body = await ok(response)
            assert body.count(b"data: ") == 5
        assert stack.emulator.state.stats.max_in_flight == 1
        assert stack.gateway.pool.state("user0@example.com").in_flight == 0  # type: ignore[union-attr]


@pytest_twisted.ensureDeferred
async def test_a_request_waits_only_queue_timeout_for_a_busy_pool(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), accounts={"max_in_flight": 1, "queue_timeout": 0.1}) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "kind": "delay", "seconds": 0.5, "status": 200, "times": 1})
        slow = stack.post(FLASH, ask("slow"))
        await sleep(0.05)
        waiting = await stack.post(FLASH, ask("impatient"))
        error = (await body_json(waiting))["error"]
        assert waiting.code == 503 and "busy" in error["message"] and "max_in_flight" in error["message"]
        await ok(await slow)


@pytest_twisted.ensureDeferred
async def test_quota_is_polled_and_steers_selection(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(2), accounts={"quota_poll_interval": 0.2}) as stack:
        state = stack.emulator.state
        state.set_quota({"email": "user0@example.com", "model": "gemini-3-flash", "remaining_fraction": 0.1, "reset_in": 3600})
        state.set_quota({"email": "user1@example.com", "model": "gemini-3-flash", "remaining_fraction": 0.8, "reset_in": 3600})
        for _ in range(50):
            if all(a.get("quota") for a in stack.stored()):
                break
            await sleep(0.05)
        stored = {a["email"]: a for a in stack.stored()}
        assert stored["user0@example.com"]["quota"]["gemini-3-flash"]["remaining"] == 0.1
        assert stored["user1@example.com"]["quota"]["gemini-3-flash"]["remaining"] == 0.8
        for i in range(3):
            await ok(await stack.post(FLASH, ask(f"c{i}")))
        assert set(emails(stack)) == {"user1@example.com"}


@pytest_twisted.ensureDeferred
async def test_a_quota_error_triggers_a_poll_of_that_account(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(2)) as stack:
        state = stack.emulator.state
        state.set_quota({"email": "user0@example.com", "model": "gemini-3.1-pro-low", "remaining_fraction": 0.0, "reset_in": 7200})
        state.set_quota({"email": "user1@example.com", "model": "gemini-3.1-pro-low", "remaining_fraction": 0.0, "reset_in": 7200})
        response = await stack.post(PRO, ask())
        assert response.code == 429
        await treq.content(response)
        for _ in range(50):
            if len(calls(stack, "fetchAvailableModels")) >= 2 and all(a.get("quota") for a in stack.stored()):
                break
            await sleep(0.05)
        assert sorted(emails(stack, "fetchAvailableModels")) == ["user0@example.com", "user1@example.com"]
        assert all(a["quota"]["gemini-3.1-pro-low"]["remaining"] == 0.0 for a in stack.stored())


@pytest_twisted.ensureDeferred
async def test_models_list_is_what_the_pools_accounts_report(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(2)) as stack:
        first, second = await defer.gatherResults([stack.get("/v1beta/models?pageSize=1000"), stack.get("/v1/models")])
        listed = await body_json(first)
        await treq.content(second)
        names = {m["name"] for m in listed["models"]}
        assert {"models/gemini-3.1-pro-low", "models/gemini-3-flash"} <= names
        # concurrent listings share one fetch per account
        assert sorted(emails(stack, "fetchAvailableModels")) == ["user0@example.com", "user1@example.com"]
        assert all(a.get("quota") for a in stack.stored())


@pytest_twisted.ensureDeferred
async def test_store_changes_are_picked_up_without_a_restart(tmp_path: Path) -> None:
    from tests.integration.harness import EmulatorAccount

    extra = EmulatorAccount("late@example.com", "1//late", "project-late", "standard-tier")
    async with start_stack(tmp_path, accounts(2) + [extra], store_accounts=[{"email": "user0@example.com", "refresh_token": "1//refresh-0"}]) as stack:
        await ok(await stack.post(FLASH, ask()))
        store = JSONAccountStore(str(stack.store))
        store.update("user0@example.com", lambda a: a.__class__.from_json({**a.to_json(), "disabled": True, "disabled_reason": "operator"}, "cli"))
        store.put(Account("late@example.com", "1//late"))
        for i in range(2):
            await ok(await stack.post(FLASH, ask(f"c{i}")))
        assert emails(stack)[1:] == ["late@example.com", "late@example.com"]


@pytest_twisted.ensureDeferred
async def test_admin_view_shows_live_state_and_no_secrets(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(2)) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "model": "gemini-3.1-pro-low", "email": "user0@example.com", "status": 429, "reason": "QUOTA_EXHAUSTED", "quota_reset_delay": 3600, "times": 1})
        for path in (PRO, PRO, FLASH):
            response = await stack.post(path, ask())
            await treq.content(response)
        response = await stack.get("/admin/accounts")
        raw = await treq.content(response)
        assert response.code == 200, raw
        view = json.loads(raw)
        by_email = {a["email"]: a for a in view["accounts"]}
        user0 = by_email["user0@example.com"]
        assert user0["state"] == "active" and set(user0["cooldowns"]) == {"gemini-3.1-pro-low"}
        assert user0["cooldowns"]["gemini-3.1-pro-low"]["seconds_left"] > 3500
        assert "QUOTA_EXHAUSTED" in user0["last_error"]
        assert by_email["user1@example.com"]["requests_served"] == 2  # both pro requests
        assert sum(a["requests_served"] for a in view["accounts"]) == 3
        assert view["selection"] == "quota-aware"
        assert b"ya29." not in raw and b"1//refresh" not in raw and b"refresh_token" not in raw
        proxied = await stack.get("/admin/accounts", headers={b"X-Forwarded-For": [b"203.0.113.9"]})
        assert proxied.code == 403
        await treq.content(proxied)


@pytest_twisted.ensureDeferred
async def test_admin_view_needs_the_api_key_when_auth_is_on(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), auth={"mode": "all_except_health", "keys": ("k-123",)}) as stack:
        anonymous = await stack.get("/admin/accounts")
        assert anonymous.code == 401
        await treq.content(anonymous)
        keyed = await stack.get("/admin/accounts", headers={b"x-goog-api-key": [b"k-123"]})
        assert keyed.code == 200
        assert [a["email"] for a in (await body_json(keyed))["accounts"]] == ["user0@example.com"]
