"""The emulator's Google of late 2026: OAuth clients per token, the version gate and manifest,
AI credits and quota windows (PROTOCOL.md 2b)."""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

import pytest
import pytest_twisted
from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.web.client import Agent, HTTPConnectionPool

from gateway.emulator.clients import ANTIGRAVITY_ID, ANTIGRAVITY_SECRET, GEMINI_CLI_ID, GEMINI_CLI_SECRET
from gateway.emulator.state import Account
from gateway.emulator.testing import RunningEmulator, start_emulator

ANTIGRAVITY = {"client_id": ANTIGRAVITY_ID, "client_secret": ANTIGRAVITY_SECRET}
GEMINI_CLI = {"client_id": GEMINI_CLI_ID, "client_secret": GEMINI_CLI_SECRET}
NEW_UA = "antigravity/hub/2.9.1 darwin/arm64"


@pytest_twisted.async_yield_fixture
async def emu() -> AsyncIterator[RunningEmulator]:
    running = start_emulator(reactor, [
        Account("ag@example.com", "rt-ag", "proj-ag", client="antigravity"),
        Account("cli@example.com", "rt-cli", "proj-cli", client="gemini-cli"),
        Account("ws@example.com", "rt-ws", "proj-ws", client="gemini-cli", workspace=True),
        Account("rich@example.com", "rt-rich", "proj-rich", "standard-tier", credits=500),
    ])
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def http() -> HTTPClient:
    return HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))


async def token(http: HTTPClient, emu: RunningEmulator, refresh: str, client: dict[str, str]) -> tuple[int, dict[str, Any]]:
    response = await http.post(emu.token_url, data={"grant_type": "refresh_token", "refresh_token": refresh, **client})
    return response.code, json.loads(await response.content())


async def call(http: HTTPClient, emu: RunningEmulator, method: str, body: Any, access: str, ua: str = NEW_UA, query: str = "") -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", "User-Agent": ua, "Authorization": "Bearer " + access}
    response = await http.post(f"{emu.url}/v1internal:{method}{query}", json.dumps(body).encode(), headers=headers)
    content = await response.content()
    try:
        return response.code, json.loads(content)
    except ValueError:
        return response.code, content


def envelope(project: str, model: str = "gemini-3-flash", **extra: Any) -> dict[str, Any]:
    return {"model": model, "project": project, "requestId": "agent-1", "requestType": "agent", "userAgent": "antigravity",
            "request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, **extra}


@pytest_twisted.ensureDeferred
async def test_a_refresh_token_works_only_with_its_own_client(emu: RunningEmulator, http: HTTPClient) -> None:
    code, body = await token(http, emu, "rt-ag", GEMINI_CLI)
    assert (code, body["error"]) == (401, "unauthorized_client")
    code, body = await token(http, emu, "rt-ag", ANTIGRAVITY)
    assert code == 200 and body["access_token"]


@pytest_twisted.ensureDeferred
async def test_retired_client_gets_unsupported_client(emu: RunningEmulator, http: HTTPClient) -> None:
    _, body = await token(http, emu, "rt-cli", GEMINI_CLI)
    code, loaded = await call(http, emu, "loadCodeAssist", {"metadata": {"ideType": "ANTIGRAVITY"}}, body["access_token"])
    assert code == 200 and "currentTier" not in loaded
    [tier] = loaded["ineligibleTiers"]
    assert tier["reasonCode"] == "UNSUPPORTED_CLIENT" and tier["tierId"] == "free-tier"
    assert "migrate to the Antigravity suite" in tier["reasonMessage"]
    code, error = await call(http, emu, "generateContent", envelope("proj-cli"), body["access_token"])
    assert code == 403 and error["error"]["details"][0]["reason"] == "UNSUPPORTED_CLIENT"
    # A Workspace account still works through the retired client.
    _, body = await token(http, emu, "rt-ws", GEMINI_CLI)
    code, loaded = await call(http, emu, "loadCodeAssist", {}, body["access_token"])
    assert code == 200 and loaded["currentTier"]["id"] == "free-tier"


@pytest_twisted.ensureDeferred
async def test_old_client_versions_are_refused(emu: RunningEmulator, http: HTTPClient) -> None:
    _, body = await token(http, emu, "rt-ag", ANTIGRAVITY)
    access = body["access_token"]
    code, error = await call(http, emu, "generateContent", envelope("proj-ag"), access, ua="antigravity/1.11.9 linux/amd64")
    assert code == 503 and error["error"]["message"].startswith("This version of Antigravity is no longer supported")
    code, error = await call(http, emu, "generateContent", envelope("proj-ag", "claude-sonnet-4-6"), access, ua="antigravity/hub/2.8.0 darwin/arm64")
    assert code == 404 and error["error"]["message"] == "Requested entity was not found."
    code, _ = await call(http, emu, "generateContent", envelope("proj-ag", "claude-sonnet-4-6"), access)
    assert code == 200
    emu.state.settings.update({"min_client_version": "2.10.0"})
    code, error = await call(http, emu, "generateContent", envelope("proj-ag"), access)
    assert code == 503
    emu.state.settings.update({"version_reject_in_stream": True})
    code, raw = await call(http, emu, "streamGenerateContent", envelope("proj-ag"), access, query="?alt=sse")
    assert code == 200 and b"no longer supported" in raw


@pytest_twisted.ensureDeferred
async def test_manifest_serves_the_version_the_control_api_sets(emu: RunningEmulator, http: HTTPClient) -> None:
    response = await http.get(emu.url + "/manifest/latest-arm64-mac.yml")
    assert response.code == 200 and b"version: 2.9.4\n" in await response.content()
    await http.post(emu.url + "/_emulator/settings", json.dumps({"manifest_version": "3.0.1"}).encode(), headers={"Content-Type": "application/json"})
    response = await http.get(emu.url + "/manifest/latest-arm64-mac.yml")
    assert (await response.content()).startswith(b"version: 3.0.1\n")


@pytest_twisted.ensureDeferred
async def test_credits_are_reported_and_spent_only_when_present(emu: RunningEmulator, http: HTTPClient) -> None:
    _, body = await token(http, emu, "rt-rich", {"client_id": "emulator-client-id", "client_secret": "emulator-client-secret"})
    rich = body["access_token"]
    _, loaded = await call(http, emu, "loadCodeAssist", {}, rich)
    assert loaded["paidTier"]["availableCredits"] == [{"creditType": "GOOGLE_ONE_AI", "creditAmount": "500", "minimumCreditAmountForUsage": "50"}]
    emu.state.set_quota({"model": "gemini-3-flash", "remaining_fraction": 0})
    code, error = await call(http, emu, "generateContent", envelope("proj-rich"), rich)
    assert code == 429 and error["error"]["details"][0]["reason"] == "QUOTA_EXHAUSTED"
    code, _ = await call(http, emu, "generateContent", envelope("proj-rich", enabledCreditTypes=["GOOGLE_ONE_AI"]), rich)
    assert code == 200 and emu.state.accounts["rich@example.com"].credits == 499
    _, body = await token(http, emu, "rt-ag", ANTIGRAVITY)
    code, error = await call(http, emu, "generateContent", envelope("proj-ag", enabledCreditTypes=["GOOGLE_ONE_AI"]), body["access_token"])
    assert code == 400 and "no AI credits" in error["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_quota_summary_has_five_hour_and_weekly_groups(emu: RunningEmulator, http: HTTPClient) -> None:
    _, body = await token(http, emu, "rt-ag", ANTIGRAVITY)
    emu.state.set_quota_window({"email": "ag@example.com", "group": "weekly", "remaining_fraction": 0.25, "reset_in": 3600})
    code, summary = await call(http, emu, "retrieveUserQuotaSummary", {"project": "proj-ag"}, body["access_token"])
    assert code == 200
    groups = {g["groupId"]: g for g in summary["quotaGroups"]}
    assert set(groups) == {"five-hour", "weekly"}
    assert groups["weekly"]["remainingFraction"] == 0.25 and groups["five-hour"]["remainingFraction"] == 1.0
