"""Anthropic Messages <-> Gemini, every mapping in COMPAT.md (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.compat import anthropic_request, anthropic_response
from gateway.compat.anthropic_request import count_request, to_gemini
from gateway.compat.anthropic_stream import PING, AnthropicStream
from gateway.compat.signatures import SignatureMemory
from gateway.protocol.errors import GatewayError

PNG = "iVBORw0KGgo="


def req(messages: list[dict[str, Any]], model: str = "gemini-2.5-flash", memory: SignatureMemory | None = None, **extra: Any) -> dict[str, Any]:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 1000, "messages": messages, **extra}
    return to_gemini(body, model, memory=memory, now=1.0)[0]


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def test_system_string_and_blocks_billing_header_stripped_cache_control_ignored() -> None:
    assert req([user("hi")], system="Be brief.")["systemInstruction"] == {"role": "user", "parts": [{"text": "Be brief."}]}
    system = [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.0.1; cch=123"},
              {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}]
    assert req([user("hi")], system=system)["systemInstruction"]["parts"] == [{"text": "You are Claude Code."}]
    assert "systemInstruction" not in req([user("hi")], system=[system[0]])


def test_sampling_fields_and_session_key() -> None:
    out = req([user("hi")], stop_sequences=["A", "B"], temperature=0.1, top_p=0.2, top_k=3, metadata={"user_id": "user_1"})
    assert out["generationConfig"] == {"maxOutputTokens": 1000, "temperature": 0.1, "topP": 0.2, "topK": 3, "stopSequences": ["A", "B"]}
    assert out["sessionId"] == "user_1"


def test_blocks_text_image_document_and_empty_text_skipped() -> None:
    blocks = [{"type": "text", "text": ""}, {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
              {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
              {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PNG}},
              {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain doc"}},
              {"type": "image", "source": {"type": "url", "url": "https://x/i.png"}}]
    body = {"model": "c", "max_tokens": 5, "messages": [user(blocks)]}
    assert anthropic_request.remote_urls(body) == ["https://x/i.png"]
    images = {"https://x/i.png": {"mimeType": "image/png", "data": PNG}}
    parts = to_gemini(body, "gemini-2.5-flash", images=images)[0]["contents"][0]["parts"]
    assert parts == [{"text": "look"}, {"inlineData": {"mimeType": "image/png", "data": PNG}},
                     {"inlineData": {"mimeType": "application/pdf", "data": PNG}}, {"text": "plain doc"},
                     {"inlineData": {"mimeType": "image/png", "data": PNG}}]
    with pytest.raises(GatewayError):
        to_gemini(body, "gemini-2.5-flash")  # the URL was not fetched: never sent upstream


def test_tool_use_and_tool_result_with_error_and_images() -> None:
    messages = [user("go"),
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Calling."},
                    {"type": "thinking", "thinking": "t", "signature": "unknown-sig"},
                    {"type": "redacted_thinking", "data": "xxx"},
                    {"type": "tool_use", "id": "toolu_1", "name": "read file", "input": {"p": 1}},
                    {"type": "tool_use", "id": "toolu_2", "name": "ls", "input": {}}]},
                user([{"type": "tool_result", "tool_use_id": "toolu_2", "content": "dir", "cache_control": {"type": "ephemeral"}},
                      {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True, "content": [
                          {"type": "text", "text": "denied"},
                          {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]},
                      {"type": "text", "text": "and?"}])]
    out = req(messages, tools=[{"name": "read file", "input_schema": {"type": "object"}}, {"name": "ls", "input_schema": {}}])
    model_turn = out["contents"][1]["parts"]
    assert model_turn == [{"text": "Calling."},
                          {"functionCall": {"id": "toolu_1", "name": "read_file", "args": {"p": 1}}},
                          {"functionCall": {"id": "toolu_2", "name": "ls", "args": {}}}]
    results = out["contents"][2]["parts"]
    assert results[0] == {"functionResponse": {"id": "toolu_1", "name": "read_file", "response": {"error": "denied"}}}
    assert results[1] == {"functionResponse": {"id": "toolu_2", "name": "ls", "response": {"output": "dir"}}}
    assert results[2:] == [{"inlineData": {"mimeType": "image/png", "data": PNG}}, {"text": "and?"}]


def test_model_turn_order_thinking_text_calls_with_known_signature() -> None:
    memory = SignatureMemory()
    memory.remember("sig-c", "claude-sonnet-4-6", now=0)
    messages = [user("q"), {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {}},
        {"type": "text", "text": "T"},
        {"type": "thinking", "thinking": "deep", "signature": "sig-c"}]},
        user([{"type": "tool_result", "tool_use_id": "toolu_9", "content": "r"}])]
    parts = req(messages, model="claude-opus-4-6-thinking", memory=memory)["contents"][1]["parts"]
    assert parts == [{"text": "deep", "thought": True, "thoughtSignature": "sig-c"}, {"text": "T"},
                     {"functionCall": {"id": "toolu_9", "name": "f", "args": {}}}]
    # the same history sent to Gemini drops the Claude signature (and its thinking)
    parts = req(messages, model="gemini-2.5-flash", memory=memory)["contents"][1]["parts"]
    assert parts == [{"text": "T"}, {"functionCall": {"id": "toolu_9", "name": "f", "args": {}}}]


def test_gemini3_tool_use_gets_its_remembered_signature_or_the_sentinel() -> None:
    memory = SignatureMemory()
    memory.remember("g3sig", "gemini-3-flash", now=0, call_id="toolu_known")
    for call_id, expected in (("toolu_known", "g3sig"), ("toolu_other", "skip_thought_signature_validator")):
        messages = [user("q"), {"role": "assistant", "content": [{"type": "tool_use", "id": call_id, "name": "f", "input": {}}]},
                    user([{"type": "tool_result", "tool_use_id": call_id, "content": "r"}])]
        part = req(messages, model="gemini-3-flash", memory=memory)["contents"][1]["parts"][0]
        assert part["thoughtSignature"] == expected
    claude = req([user("q"), {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_known", "name": "f", "input": {}}]},
                  user([{"type": "tool_result", "tool_use_id": "toolu_known", "content": "r"}])], model="claude-sonnet-4-6", memory=memory)
    assert "thoughtSignature" not in claude["contents"][1]["parts"][0]


def test_tools_cleaned_and_tool_choice() -> None:
    tools = [{"name": "f", "description": "d", "input_schema": {"type": "object", "properties": {"a": {"type": "string", "pattern": "x"}},
                                                                "$schema": "s", "additionalProperties": False},
              "cache_control": {"type": "ephemeral"}},
             {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]
    out = req([user("q")], tools=tools, tool_choice={"type": "tool", "name": "f"})
    assert out["tools"] == [{"functionDeclarations": [{"name": "f", "description": "d", "parameters": {
        "type": "object", "properties": {"a": {"type": "string", "description": "pattern: x"}}}}]}]
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}}
    for choice, mode in (("auto", "AUTO"), ("any", "ANY"), ("none", "NONE")):
        assert req([user("q")], tools=tools, tool_choice={"type": choice})["toolConfig"] == {"functionCallingConfig": {"mode": mode}}


def test_thinking_budget_adaptive_and_claude_rules() -> None:
    config = req([user("q")], thinking={"type": "enabled", "budget_tokens": 5000})["generationConfig"]
    assert config["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 5000}
    config = req([user("q")], model="gemini-3-pro-preview", thinking={"type": "adaptive"}, output_config={"effort": "low"})["generationConfig"]
    assert config["thinkingConfig"] == {"includeThoughts": True, "thinkingLevel": "LOW"}
    assert "thinkingConfig" not in req([user("q")], thinking={"type": "disabled"}).get("generationConfig", {})
    # claude*: maxOutputTokens <= 64000 and 1024 <= budget < maxOutputTokens
    config = req([user("q")], model="claude-sonnet-4-6", max_tokens=128000, thinking={"type": "enabled", "budget_tokens": 10})["generationConfig"]
    assert config["maxOutputTokens"] == 64000 and config["thinkingConfig"]["thinkingBudget"] == 1024
    config = req([user("q")], model="claude-sonnet-4-6", max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 8000})["generationConfig"]
    assert config["thinkingConfig"]["thinkingBudget"] < config["maxOutputTokens"] <= 64000


def test_bad_requests_are_400() -> None:
    for body in ({"model": "m", "messages": [user("x")]}, {"max_tokens": 5, "messages": [user("x")]},
                 {"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
                 {"model": "m", "max_tokens": 5, "messages": [user("x")], "thinking": {"type": "enabled"}},
                 {"model": "m", "max_tokens": 5, "messages": [user("x")], "tool_choice": {"type": "maybe"}}):
        with pytest.raises(GatewayError) as caught:
            to_gemini(body, "gemini-2.5-flash")
        assert caught.value.code == 400


def test_count_request_keeps_thinking_tools_calls_results() -> None:
    body = {"model": "c", "system": "S", "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "messages": [user("q"), {"role": "assistant", "content": [{"type": "thinking", "thinking": "reasoned", "signature": "?"},
                                                                      {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}]},
                         user([{"type": "tool_result", "tool_use_id": "t1", "content": "res"}])]}
    counted = count_request(body, "claude-sonnet-4-6")["generateContentRequest"]
    assert counted["systemInstruction"]["parts"] == [{"text": "S"}] and counted["tools"]
    assert counted["contents"][1]["parts"] == [{"text": "reasoned"}, {"functionCall": {"id": "t1", "name": "f", "args": {"a": 1}}}]
    assert counted["contents"][2]["parts"][0]["functionResponse"]["response"] == {"output": "res"}
    assert "maxOutputTokens" not in counted.get("generationConfig", {})


# -- response ----------------------------------------------------------------------


def ctx(names: tuple[str, ...] = (), model: str = "gemini-2.5-flash") -> Any:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [user("x")],
            "tools": [{"name": n, "input_schema": {}} for n in names]}
    return to_gemini(body, model)[1]


def gemini(parts: list[dict[str, Any]], finish: str = "STOP") -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish}],
            "usageMetadata": {"promptTokenCount": 100, "cachedContentTokenCount": 40, "candidatesTokenCount": 7, "thoughtsTokenCount": 5}}


def test_message_shape_blocks_usage() -> None:
    memory = SignatureMemory()
    out = anthropic_response.message(gemini([{"text": "plan", "thought": True}, {"text": "Hi", "thoughtSignature": "S"},
                                             {"functionCall": {"name": "read_file", "args": {"p": 1}, "id": "bad id!"}}]),
                                     ctx(("read file",)), memory, 1.0)
    assert out["type"] == "message" and out["role"] == "assistant" and out["model"] == "claude-sonnet-4-5"
    assert out["id"].startswith("msg_") and out["stop_sequence"] is None and out["stop_reason"] == "tool_use"
    thinking, text, tool = out["content"]
    assert thinking == {"type": "thinking", "thinking": "plan", "signature": "S"}
    assert text == {"type": "text", "text": "Hi"}
    assert tool["type"] == "tool_use" and tool["name"] == "read file" and tool["input"] == {"p": 1}
    assert tool["id"].startswith("toolu_") and all(c.isalnum() or c in "_-" for c in tool["id"])
    assert out["usage"] == {"input_tokens": 60, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 40, "output_tokens": 12}
    assert memory.family_of("S", 2.0) == "gemini-2"


@pytest.mark.parametrize("finish, called, expected", [
    ("STOP", False, "end_turn"), ("STOP", True, "tool_use"), ("MAX_TOKENS", False, "max_tokens"), ("SAFETY", False, "refusal"),
    ("RECITATION", False, "refusal"), ("PROHIBITED_CONTENT", False, "refusal"), ("BLOCKLIST", False, "refusal"),
    ("SPII", False, "refusal"), ("OTHER", False, "end_turn"), (None, False, "end_turn")])
def test_stop_reasons(finish: str | None, called: bool, expected: str) -> None:
    assert anthropic_response.stop_reason(finish, called) == expected


@pytest.mark.parametrize("code, status, kind", [
    (400, 400, "invalid_request_error"), (401, 401, "authentication_error"), (403, 503, "overloaded_error"),
    (404, 404, "not_found_error"), (413, 413, "request_too_large"), (429, 429, "rate_limit_error"), (500, 500, "api_error"),
    (502, 502, "api_error"), (503, 503, "overloaded_error"), (504, 504, "api_error"), (529, 529, "overloaded_error")])
def test_error_statuses(code: int, status: int, kind: str) -> None:
    got, body = anthropic_response.shaped_error(code, "reason here")
    assert got == status and body["type"] == "error" and body["error"]["type"] == kind and "reason here" in body["error"]["message"]


def test_context_overflow_says_prompt_is_too_long() -> None:
    _, body = anthropic_response.shaped_error(400, "The input token count (250000) exceeds the maximum number of tokens allowed (200000).")
    assert body["error"]["message"] == "prompt is too long: 250000 tokens > 200000 maximum"
    _, other = anthropic_response.shaped_error(400, "Invalid value at 'x'")
    assert other["error"]["message"] == "Invalid value at 'x'"


# -- stream ------------------------------------------------------------------------


def events(data: bytes) -> list[tuple[str, Any]]:
    out = []
    for block in data.decode().split("\n\n"):
        if block:
            name, payload = block.split("\n")
            out.append((name[len("event: "):], json.loads(payload[len("data: "):])))
    return out


def event(parts: list[dict[str, Any]], **extra: Any) -> bytes:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}}
    if "finish" in extra:
        candidate["finishReason"] = extra.pop("finish")
    return json.dumps({"response": {"candidates": [candidate], **extra}}).encode()


def test_stream_event_order_indices_signature_before_stop() -> None:
    memory = SignatureMemory()
    s = AnthropicStream(ctx(("f",)), memory, 1.0)
    data = s.event(event([{"text": "a", "thought": True}], usageMetadata={"promptTokenCount": 9}))
    data += s.event(event([{"text": "b", "thought": True}]))
    data += s.event(event([{"text": "Hel", "thoughtSignature": "SIG"}]))
    data += s.event(event([{"text": "lo"}, {"functionCall": {"name": "f", "args": {"x": [1, 2]}}}], finish="STOP",
                          usageMetadata={"promptTokenCount": 9, "candidatesTokenCount": 4}))
    data += s.end()
    got = events(data)
    names = [e for e, _ in got]
    assert names == ["message_start",
                     "content_block_start", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop",
                     "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
                     "content_block_start", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]
    assert got[0][1]["message"]["usage"]["input_tokens"] == 9 and got[0][1]["message"]["content"] == []
    assert [d["index"] for e, d in got if e == "content_block_start"] == [0, 1, 2]
    assert got[4][1]["delta"] == {"type": "signature_delta", "signature": "SIG"}
    assert got[10][1]["content_block"]["type"] == "tool_use" and got[10][1]["content_block"]["input"] == {}
    assert json.loads(got[11][1]["delta"]["partial_json"]) == {"x": [1, 2]}
    assert got[-2][1]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert got[-2][1]["usage"]["output_tokens"] == 4
    assert memory.family_of("SIG", 2.0) == "gemini-2"


def test_stream_error_ping_and_empty_stream() -> None:
    s = AnthropicStream(ctx(), SignatureMemory(), 1.0)
    assert s.ping() == b""  # nothing before message_start
    s.event(event([{"text": "x"}]))
    assert s.ping() == PING
    got = events(s.event(json.dumps({"error": {"code": 503, "message": "gone"}}).encode()))
    assert got == [("error", {"type": "error", "error": {"type": "overloaded_error", "message": "gone"}})]
    assert s.end() == b"" and s.ping() == b""
    empty = events(AnthropicStream(ctx(), SignatureMemory(), 1.0).end())
    assert [e for e, _ in empty] == ["message_start", "message_delta", "message_stop"]
