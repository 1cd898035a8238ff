"""The emulator as strict as Cloud Code today (PROTOCOL.md 2b): what it refuses, ignores, and changes mid-run."""

from __future__ import annotations

from typing import Any

import pytest_twisted

from gateway.emulator.rules import AGENT_SDK_IDENTITY
from tests.integration.test_emulator import call, control, emu, envelope, http, token_for  # noqa: F401 (fixtures)


@pytest_twisted.ensureDeferred
async def test_todays_catalogue_with_deprecated_ids_and_families(emu: Any, http: Any) -> None:  # noqa: F811
    token = await token_for(http, emu)
    code, body, _ = await call(http, emu.url, "fetchAvailableModels", {"project": "proj-a"}, token)
    assert code == 200
    assert "gemini-pro-agent" in body["models"] and not any(m.startswith("gemini-2.5") for m in body["models"])
    assert body["models"]["gemini-pro-agent"]["modelFamily"] == "gemini-3"
    assert body["deprecatedModelIds"]["claude-sonnet-4-5"] == {"newModelId": "claude-sonnet-4-6"}
    code, _, _ = await call(http, emu.url, "generateContent", envelope(model="gemini-2.5-flash"), token)
    assert code == 404


@pytest_twisted.ensureDeferred
async def test_models_can_vanish_and_appear_mid_run(emu: Any, http: Any) -> None:  # noqa: F811
    token = await token_for(http, emu)
    code, listed = await control(http, emu, "DELETE", "models/gemini-3.7-flash-high")
    assert code == 200 and "gemini-3.7-flash-high" not in listed["models"]
    code, _, _ = await call(http, emu.url, "generateContent", envelope(model="gemini-3.7-flash-high"), token)
    assert code == 404
    code, listed = await control(http, emu, "POST", "models", {"id": "gemini-3.8-flash-high", "like": "gemini-3-flash"})
    assert code == 200 and "gemini-3.8-flash-high" in listed["models"]
    code, body, _ = await call(http, emu.url, "generateContent", envelope(model="gemini-3.8-flash-high"), token)
    assert code == 200 and body["response"]["modelVersion"] == "gemini-3.8-flash-high"
    code, _ = await control(http, emu, "POST", "models", {"id": "x", "bogus": 1})
    assert code == 400


@pytest_twisted.ensureDeferred
async def test_the_agent_sdk_identity_draws_a_429_that_is_no_rate_limit(emu: Any, http: Any) -> None:  # noqa: F811
    token = await token_for(http, emu)
    body = envelope(model="claude-sonnet-4-6", systemInstruction={"parts": [{"text": AGENT_SDK_IDENTITY}]})
    code, answer, _ = await call(http, emu.url, "generateContent", body, token)
    assert code == 429 and answer["error"]["status"] == "RESOURCE_EXHAUSTED" and "details" not in answer["error"]
    longer = envelope(model="claude-sonnet-4-6", systemInstruction={"parts": [{"text": AGENT_SDK_IDENTITY + " And more."}]})
    code, _, _ = await call(http, emu.url, "generateContent", longer, token)
    assert code == 200


@pytest_twisted.ensureDeferred
async def test_parameters_json_schema_is_ignored_and_output_limits_are_enforced(emu: Any, http: Any) -> None:  # noqa: F811
    token = await token_for(http, emu)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    tools = [{"functionDeclarations": [{"name": "get_weather", "parametersJsonSchema": schema}]}]
    code, body, _ = await call(http, emu.url, "generateContent", envelope("call function get_weather", tools=tools), token)
    parts = body["response"]["candidates"][0]["content"]["parts"]
    assert code == 200 and next(p["functionCall"] for p in parts if "functionCall" in p)["args"] == {}
    too_many = envelope(generationConfig={"maxOutputTokens": 65537})
    code, _, _ = await call(http, emu.url, "generateContent", too_many, token)
    assert code == 400


@pytest_twisted.ensureDeferred
async def test_an_empty_stream_fault(emu: Any, http: Any) -> None:  # noqa: F811
    token = await token_for(http, emu)
    await control(http, emu, "POST", "faults", {"method": "streamGenerateContent", "kind": "empty"})
    code, raw, _ = await call(http, emu.url, "streamGenerateContent", envelope(), token, query="?alt=sse")
    assert code == 200 and b"candidates" not in raw and b"error" not in raw
