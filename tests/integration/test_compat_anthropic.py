"""POST /v1/messages and /v1/messages/count_tokens over loopback, against the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import treq

from gateway.emulator.content import PIXEL_PNG
from tests.integration.harness import accounts, body_json, start_stack

MESSAGES = "/v1/messages?beta=true"
COUNT = "/v1/messages/count_tokens?beta=true"
HEADERS = {b"anthropic-version": [b"2023-06-01"], b"anthropic-beta": [b"interleaved-thinking-2025-05-14"]}
TOOL = {"name": "get_weather", "description": "Weather", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string", "minLength": 1}}, "required": ["city"]}}


def message(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": extra.pop("model", "gemini-3-flash"), "max_tokens": extra.pop("max_tokens", 1024),
            "messages": [{"role": "user", "content": text}], **extra}


def named_events(raw: bytes) -> list[tuple[str, Any]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = block.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        event = lines[0][len("event: "):]
        data = json.loads(lines[1][len("data: "):])
        assert data["type"] == event
        out.append((event, data))
    return out


@pytest_twisted.ensureDeferred
async def test_message_with_system_blocks_and_sampling(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        body = message("Hello there", system=[
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=1.0; cch=abc"},
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
            temperature=0.3, top_p=0.8, top_k=20, stop_sequences=["STOP"], metadata={"user_id": "user_abc_session_1"})
        response = await stack.post(MESSAGES, body, headers=dict(HEADERS))
        answer = await body_json(response)
        assert response.code == 200, answer
        assert answer["type"] == "message" and answer["role"] == "assistant" and answer["id"].startswith("msg_")
        assert answer["content"] == [{"type": "text", "text": "Echo: Hello there"}]
        assert answer["stop_reason"] == "end_turn" and answer["stop_sequence"] is None
        assert answer["usage"]["input_tokens"] > 0 and answer["usage"]["output_tokens"] > 0
        sent = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]
        assert sent["systemInstruction"]["parts"] == [{"text": "You are Claude Code."}]
        assert sent["generationConfig"] == {"maxOutputTokens": 1024, "temperature": 0.3, "topP": 0.8, "topK": 20,
                                            "stopSequences": ["STOP"]}
        assert sent["sessionId"] == "user_abc_session_1"


@pytest_twisted.ensureDeferred
async def test_claude_ids_map_and_claude_upstream_rules_apply(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        for asked, sent_model in (("claude-sonnet-4-6", "claude-sonnet-4-6"), ("claude-3-5-haiku-20241022", "gemini-3.1-flash-lite"),
                                  ("claude-opus-4-6", "claude-opus-4-6-thinking")):
            response = await stack.post(MESSAGES, message("hi", model=asked, tools=[TOOL], max_tokens=100000,
                                                          thinking={"type": "enabled", "budget_tokens": 500}))
            answer = await body_json(response)
            assert response.code == 200, answer
            assert answer["model"] == asked
            envelope = stack.emulator.state.requests("generateContent")[-1]["body"]
            assert envelope["model"] == sent_model
            if sent_model.startswith("claude"):
                request = envelope["request"]
                assert request["toolConfig"]["functionCallingConfig"]["mode"] == "VALIDATED"
                assert request["generationConfig"]["maxOutputTokens"] == 64000
                assert request["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 1024


@pytest_twisted.ensureDeferred
async def test_tool_use_and_tool_result_round_trip(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        first = await body_json(await stack.post(MESSAGES, message("call function get_weather", model="gemini-3-flash",
                                                                   tools=[TOOL], tool_choice={"type": "auto"})))
        assert first["stop_reason"] == "tool_use"
        tool_use = next(b for b in first["content"] if b["type"] == "tool_use")
        assert tool_use["name"] == "get_weather" and tool_use["input"] == {"city": "Paris"}
        sent = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]
        assert sent["tools"][0]["functionDeclarations"][0]["parameters"]["properties"]["city"] == {
            "type": "string", "description": "minLength: 1"}
        history = [
            {"role": "user", "content": "call function get_weather"},
            {"role": "assistant", "content": first["content"]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": tool_use["id"], "content": [
                    {"type": "text", "text": "sunny"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL_PNG}}]},
            ]},
        ]
        second = await stack.post(MESSAGES, {"model": "gemini-3-flash", "max_tokens": 512, "messages": history, "tools": [TOOL]})
        answer = await body_json(second)
        assert second.code == 200, answer
        assert answer["content"][0]["text"] == 'Results: get_weather={"output":"sunny"}'
        sent = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]
        call_part = next(p for p in sent["contents"][1]["parts"] if "functionCall" in p)
        assert call_part["functionCall"]["id"] == tool_use["id"]
        assert call_part["thoughtSignature"] and call_part["thoughtSignature"] != "skip_thought_signature_validator"
        results = sent["contents"][2]["parts"]
        assert results[0]["functionResponse"] == {"id": tool_use["id"], "name": "get_weather", "response": {"output": "sunny"}}
        assert results[1] == {"inlineData": {"mimeType": "image/png", "data": PIXEL_PNG}}
        # an error result travels as {"error": …}
        history[2]["content"] = [{"type": "tool_result", "tool_use_id": tool_use["id"], "content": "boom", "is_error": True}]
        await body_json(await stack.post(MESSAGES, {"model": "gemini-3-flash", "max_tokens": 512, "messages": history, "tools": [TOOL]}))
        sent = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]
        assert sent["contents"][2]["parts"][0]["functionResponse"]["response"] == {"error": "boom"}


@pytest_twisted.ensureDeferred
async def test_full_named_event_stream_with_thinking(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        body = message("Think then stream 3 events", stream=True, thinking={"type": "enabled", "budget_tokens": 2048})
        response = await stack.post(MESSAGES, body, headers=dict(HEADERS))
        raw = await treq.content(response)
        assert response.code == 200, raw
        assert response.headers.getRawHeaders(b"content-type") == [b"text/event-stream"]
        events = named_events(raw)
        kinds = [e for e, _ in events]
        assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
        starts = [d for e, d in events if e == "content_block_start"]
        assert [s["index"] for s in starts] == [0, 1]
        assert [s["content_block"]["type"] for s in starts] == ["thinking", "text"]
        thinking = "".join(d["delta"]["thinking"] for e, d in events if e == "content_block_delta" and d["delta"]["type"] == "thinking_delta")
        assert thinking.startswith("Thinking about")
        signature_at = kinds.index("content_block_stop") - 1
        assert events[signature_at][1]["delta"]["type"] == "signature_delta"
        text = "".join(d["delta"]["text"] for e, d in events if e == "content_block_delta" and d["delta"]["type"] == "text_delta")
        assert text == "Echo: Think then stream 3 events"
        delta = events[-2][1]
        assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None} and delta["usage"]["output_tokens"] > 0
        config = stack.emulator.state.requests("streamGenerateContent")[-1]["body"]["request"]["generationConfig"]
        assert config["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 2048}


@pytest_twisted.ensureDeferred
async def test_streamed_tool_use_is_input_json_deltas(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        raw = await treq.content(await stack.post(MESSAGES, message("call function get_weather", stream=True, tools=[TOOL])))
        events = named_events(raw)
        tool_start = next(d for e, d in events if e == "content_block_start" and d["content_block"]["type"] == "tool_use")
        pieces = [d["delta"]["partial_json"] for e, d in events
                  if e == "content_block_delta" and d["index"] == tool_start["index"]]
        assert json.loads("".join(pieces)) == {"city": "Paris"}
        assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


@pytest_twisted.ensureDeferred
async def test_pings_keep_a_slow_stream_alive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.web.compat_routes import CompatApp

    monkeypatch.setattr(CompatApp, "ping_interval", 0.05)
    async with start_stack(tmp_path, accounts(1), emulator_settings={"event_delay": 0.25}) as stack:
        body = message("long thinking stream 3 events", stream=True, thinking={"type": "enabled", "budget_tokens": 1024})
        raw = await treq.content(await stack.post(MESSAGES, body))
        kinds = [e for e, _ in named_events(raw)]
        assert kinds[0] == "message_start" and "ping" in kinds and kinds[-1] == "message_stop"


@pytest_twisted.ensureDeferred
async def test_thinking_signatures_go_back_only_to_the_same_family(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        first = await body_json(await stack.post(MESSAGES, message("ponder", model="claude-sonnet-4-6",
                                                                   thinking={"type": "enabled", "budget_tokens": 2048})))
        thinking = first["content"][0]
        assert thinking["type"] == "thinking" and thinking["signature"]

        def follow_up(model: str, block: dict[str, Any]) -> dict[str, Any]:
            return {"model": model, "max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 2048},
                    "messages": [{"role": "user", "content": "ponder"},
                                 {"role": "assistant", "content": [block, {"type": "text", "text": "done"}]},
                                 {"role": "user", "content": "again"}]}

        for model, kept in (("claude-sonnet-4-6", True), ("gemini-3-flash", False)):
            response = await stack.post(MESSAGES, follow_up(model, thinking))
            assert response.code == 200, await treq.content(response)
            await treq.content(response)
            parts = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]["contents"][1]["parts"]
            if kept:
                assert parts[0] == {"text": thinking["thinking"], "thought": True, "thoughtSignature": thinking["signature"]}
            else:
                assert parts == [{"text": "done"}]
        # a signature the gateway never issued is never passed on (nor invented)
        forged = dict(thinking, signature="Zm9yZ2Vk")
        await treq.content(await stack.post(MESSAGES, follow_up("claude-sonnet-4-6", forged)))
        parts = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]["contents"][1]["parts"]
        assert parts == [{"text": "done"}]


@pytest_twisted.ensureDeferred
async def test_count_tokens_counts_everything_the_request_carries(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        base = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "Hello"}]}

        async def count(body: dict[str, Any]) -> int:
            response = await stack.post(COUNT, body, headers=dict(HEADERS))
            answer = await body_json(response)
            assert response.code == 200, answer
            assert set(answer) == {"input_tokens"}
            return answer["input_tokens"]

        plain = await count(base)
        assert plain > 0
        with_system = await count({**base, "system": "You are a careful assistant with a long system prompt."})
        with_tools = await count({**base, "tools": [TOOL]})
        conversation = {**base, "tools": [TOOL], "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Let me think about the weather for a while.", "signature": "unknown"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny and warm"}]}]}
        with_calls = await count(conversation)
        assert with_system > plain and with_tools > plain and with_calls > with_tools
        sent = stack.emulator.state.requests("countTokens")[-1]["body"]["request"]
        texts = json.dumps(sent["contents"])
        assert "Let me think about the weather" in texts and "sunny and warm" in texts and "get_weather" in texts
        assert sent["model"] == "models/claude-sonnet-4-6"


@pytest.mark.parametrize("status, kind, expected", [
    (400, "invalid_request_error", 400), (404, "not_found_error", 404), (429, "rate_limit_error", 429),
    (500, "api_error", 500), (403, "overloaded_error", 503)])
@pytest_twisted.ensureDeferred
async def test_upstream_errors_are_anthropic_shaped(tmp_path: Path, status: int, kind: str, expected: int) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "kind": "error", "status": status, "times": -1,
                                        "message": "upstream said no"})
        response = await stack.post(MESSAGES, message("hi"))
        body = await body_json(response)
        assert response.code == expected, body
        assert body["type"] == "error" and body["error"]["type"] == kind and body["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_context_overflow_says_prompt_is_too_long(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        response = await stack.post(MESSAGES, message("word " * 170_000, model="claude-sonnet-4-6"))
        body = await body_json(response)
        assert response.code == 400 and body["error"]["type"] == "invalid_request_error"
        assert body["error"]["message"].startswith("prompt is too long")


@pytest_twisted.ensureDeferred
async def test_request_errors_and_stream_errors(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        missing = await stack.post(MESSAGES, {"model": "gemini-3-flash", "messages": [{"role": "user", "content": "hi"}]})
        body = await body_json(missing)
        assert missing.code == 400 and body["error"]["type"] == "invalid_request_error" and "max_tokens" in body["error"]["message"]
        broken = await stack.post(MESSAGES, b"{")
        assert broken.code == 400 and (await body_json(broken))["type"] == "error"
        # an upstream failure before the first event: a real HTTP status the SDK can retry
        stack.emulator.state.add_fault({"method": "streamGenerateContent", "kind": "stream_error", "after_events": 0,
                                        "status": 429, "message": "slow down"})
        early = await stack.post(MESSAGES, message("hi", stream=True))
        body = await body_json(early)
        assert early.code == 429 and body["error"]["type"] == "rate_limit_error"
        # after the start: event: error
        stack.emulator.state.add_fault({"method": "streamGenerateContent", "kind": "stream_error", "after_events": 2,
                                        "status": 500, "message": "went wrong"})
        late = await stack.post(MESSAGES, message("hi stream 5 events", stream=True))
        events = named_events(await treq.content(late))
        assert late.code == 200 and events[0][0] == "message_start"
        assert events[-1] == ("error", {"type": "error", "error": {"type": "api_error", "message": "went wrong"}})


@pytest_twisted.ensureDeferred
async def test_auth_accepts_x_api_key_and_bearer_and_answers_401_in_shape(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), auth={"mode": "strict", "keys": ("sekrit-key",)}) as stack:
        denied = await stack.post(MESSAGES, message("hi"), headers={b"x-api-key": [b"wrong"]})
        body = await body_json(denied)
        assert denied.code == 401 and body["error"]["type"] == "authentication_error" and "wrong" not in json.dumps(body)
        openai_denied = await stack.post("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})
        assert openai_denied.code == 401 and (await body_json(openai_denied))["error"]["code"] == "invalid_api_key"
        for headers in ({b"x-api-key": [b"sekrit-key"]}, {b"Authorization": [b"Bearer sekrit-key"]}):
            ok = await stack.post(MESSAGES, message("hi"), headers=headers)
            assert ok.code == 200, await treq.content(ok)
            await treq.content(ok)
        models = await stack.get("/v1/models", headers={b"x-api-key": [b"sekrit-key"], b"anthropic-version": [b"2023-06-01"]})
        assert models.code == 200 and (await body_json(models))["has_more"] is False
