"""Today's catalogue through every door: aliases, the 404, a model vanishing mid-run, and request hygiene.

The emulator is as strict as Cloud Code (PROTOCOL.md 2b): each test here fails
if the gateway stops resolving or cleaning what Google would refuse or ignore.
"""

from __future__ import annotations

from pathlib import Path

import pytest_twisted

from gateway.emulator.rules import AGENT_SDK_IDENTITY
from gateway.protocol.hygiene import CLAUDE_CODE_IDENTITY
from tests.integration.harness import accounts, body_json, start_stack

HELLO = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}


def sent(stack, method: str = "generateContent") -> dict:
    return stack.emulator.state.requests(method)[-1]["body"]


@pytest_twisted.ensureDeferred
async def test_old_names_resolve_to_todays_models_and_the_list_is_live(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        response = await stack.post("/v1beta/models/gemini-2.5-flash:generateContent", HELLO)
        assert response.code == 200, await body_json(response)
        await body_json(response)
        assert sent(stack)["model"] == "gemini-3.7-flash-high"
        listed = await body_json(await stack.get("/v1beta/models"))
        names = [m["name"] for m in listed["models"]]
        assert "models/gemini-pro-agent" in names and not any(n.startswith("models/gemini-2.5") for n in names)
        assert {m["id"] for m in listed["data"]} == {n.removeprefix("models/") for n in names}
        alias = await body_json(await stack.get("/v1beta/models/gemini-2.5-flash"))
        assert alias["name"] == "models/gemini-2.5-flash" and alias["baseModelId"] == "gemini-3.7-flash-high"


@pytest_twisted.ensureDeferred
async def test_an_unknown_model_is_a_404_in_the_shape_of_each_door(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        native = await stack.post("/v1beta/models/llama-3-70b:generateContent", HELLO)
        error = (await body_json(native))["error"]
        assert native.code == 404 and error["status"] == "NOT_FOUND"
        assert "'llama-3-70b'" in error["message"] and "gemini-3-flash" in error["message"]
        chat = await stack.post("/v1/chat/completions", {"model": "llama-3-70b", "messages": [{"role": "user", "content": "hi"}]})
        body = await body_json(chat)
        assert chat.code == 404 and "llama-3-70b" in body["error"]["message"] and "claude-sonnet-4-6" in body["error"]["message"]
        messages = await stack.post("/v1/messages", {"model": "llama-3-70b", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
        body = await body_json(messages)
        assert messages.code == 404 and body["type"] == "error" and "llama-3-70b" in body["error"]["message"]
        assert stack.emulator.state.requests("generateContent") == []


@pytest_twisted.ensureDeferred
async def test_a_model_that_disappears_mid_run_is_replaced_without_a_failed_request(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        first = await stack.post("/v1beta/models/gemini-2.5-flash:generateContent", HELLO)
        await body_json(first)
        assert sent(stack)["model"] == "gemini-3.7-flash-high"
        assert stack.emulator.state.catalogue.remove("gemini-3.7-flash-high")  # Google drops it
        second = await stack.post("/v1beta/models/gemini-2.5-flash:generateContent", HELLO)
        assert second.code == 200, await body_json(second)
        await body_json(second)
        tried = [r["body"]["model"] for r in stack.emulator.state.requests("generateContent")]
        assert tried[-2:] == ["gemini-3.7-flash-high", "gemini-3.6-flash-high"]  # one 404, then today's best flash
        listed = await body_json(await stack.get("/v1beta/models"))
        assert "models/gemini-3.7-flash-high" not in [m["name"] for m in listed["models"]]
        gone = await stack.post("/v1beta/models/gemini-3.7-flash-high:generateContent", HELLO)
        await body_json(gone)
        assert gone.code == 200 and sent(stack)["model"] == "gemini-3.6-flash-high"  # its alias family still serves


@pytest_twisted.ensureDeferred
async def test_parameters_json_schema_tools_keep_their_parameters_on_the_native_route(tmp_path: Path) -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "properties": {"city": {"$ref": "#/$defs/city"}}, "required": ["city"],
              "additionalProperties": False, "$defs": {"city": {"type": "string", "minLength": 1}}}
    body = {"contents": [{"role": "user", "parts": [{"text": "call function get_weather"}]}],
            "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Weather", "parametersJsonSchema": schema}]}]}
    async with start_stack(tmp_path, accounts(1)) as stack:
        response = await stack.post("/v1beta/models/gemini-3-flash:generateContent", body)
        answer = await body_json(response)
        assert response.code == 200, answer
        call = next(p["functionCall"] for p in answer["candidates"][0]["content"]["parts"] if "functionCall" in p)
        assert call["args"] == {"city": "Paris"}  # upstream saw the parameters (ignored: {})
        decl = sent(stack)["request"]["tools"][0]["functionDeclarations"][0]
        assert "parametersJsonSchema" not in decl
        assert decl["parameters"]["properties"]["city"]["type"] == "string" and "$defs" not in decl["parameters"]


@pytest_twisted.ensureDeferred
async def test_max_output_tokens_is_clamped_and_gemini3_history_calls_are_signed(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        body = {**HELLO, "generationConfig": {"maxOutputTokens": 1_000_000}}
        response = await stack.post("/v1beta/models/gemini-3-flash:generateContent", body)
        assert response.code == 200, await body_json(response)
        await body_json(response)
        assert sent(stack)["request"]["generationConfig"]["maxOutputTokens"] == 65536
        history = {"contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"ok": 1}}}]},
        ], "tools": [{"functionDeclarations": [{"name": "f"}]}]}
        agent = await stack.post("/v1beta/models/gemini-pro-agent:generateContent", history)  # Gemini 3, by catalogue
        assert agent.code == 200, await body_json(agent)
        await body_json(agent)
        call = sent(stack)["request"]["contents"][1]["parts"][0]
        assert call["thoughtSignature"] == "skip_thought_signature_validator"


@pytest_twisted.ensureDeferred
async def test_the_agent_sdk_identity_is_normalised_at_the_anthropic_door(tmp_path: Path) -> None:
    body = {"model": "claude-sonnet-4-6", "max_tokens": 100,
            "system": [{"type": "text", "text": AGENT_SDK_IDENTITY}, {"type": "text", "text": "Be brief."}],
            "messages": [{"role": "user", "content": "hi"}]}
    async with start_stack(tmp_path, accounts(1)) as stack:
        response = await stack.post("/v1/messages", body, headers={b"anthropic-version": [b"2023-06-01"]})
        answer = await body_json(response)
        assert response.code == 200, answer
        texts = [p["text"] for p in sent(stack)["request"]["systemInstruction"]["parts"]]
        assert texts == [CLAUDE_CODE_IDENTITY, "Be brief."]
        [state] = stack.gateway.pool.states()
        assert state.account.cooldown_until == 0 and not state.account.disabled
