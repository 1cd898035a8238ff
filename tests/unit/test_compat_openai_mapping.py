"""OpenAI Chat Completions <-> Gemini, every mapping in COMPAT.md (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.compat import openai_request, openai_response
from gateway.compat.openai_request import to_gemini
from gateway.compat.openai_stream import OpenAIStream
from gateway.compat.signatures import SignatureMemory
from gateway.protocol.errors import GatewayError

PNG = "iVBORw0KGgo="


def req(messages: list[dict[str, Any]], model: str = "gemini-2.5-flash", **extra: Any) -> dict[str, Any]:
    body = {"model": "gpt-4o", "messages": messages, **extra}
    return to_gemini(body, model)[0]


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


# -- request -----------------------------------------------------------------------


def test_system_and_developer_become_system_instruction() -> None:
    out = req([{"role": "system", "content": "A"}, {"role": "developer", "content": [{"type": "text", "text": "B"}]}, user("hi")])
    assert out["systemInstruction"] == {"role": "user", "parts": [{"text": "A"}, {"text": "B"}]}
    assert out["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


def test_only_a_system_message_is_sent_as_user_content() -> None:
    out = req([{"role": "system", "content": "Only me"}])
    assert out["contents"] == [{"role": "user", "parts": [{"text": "Only me"}]}] and "systemInstruction" not in out


def test_assistant_turn_order_reasoning_text_calls() -> None:
    memory = SignatureMemory()
    memory.remember("sig-r", "gemini-2.5-flash", now=0)
    assistant = {"role": "assistant", "content": "Let me check.", "reasoning_content": "thinking...",
                 "extra_content": {"google": {"thought_signature": "sig-r"}},
                 "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "a", "arguments": '{"x":1}'}},
                                {"id": "c2", "type": "function", "function": {"name": "b", "arguments": ""}}]}
    body = {"model": "m", "messages": [user("q"), assistant,
                                       {"role": "tool", "tool_call_id": "c2", "content": "B"},
                                       {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "A"}]}]}
    out, _ = to_gemini(body, "gemini-2.5-flash", memory=memory, now=1)
    model_turn = out["contents"][1]
    assert model_turn == {"role": "model", "parts": [
        {"text": "thinking...", "thought": True, "thoughtSignature": "sig-r"},
        {"text": "Let me check."},
        {"functionCall": {"name": "a", "args": {"x": 1}, "id": "c1"}},
        {"functionCall": {"name": "b", "args": {}, "id": "c2"}}]}
    # all responses in ONE user content right after, in call order, names from the calls
    assert out["contents"][2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "a", "response": {"output": "A"}, "id": "c1"}},
        {"functionResponse": {"name": "b", "response": {"output": "B"}, "id": "c2"}}]}


def test_reasoning_without_a_known_signature_is_not_sent() -> None:
    out = req([user("q"), {"role": "assistant", "content": "A", "reasoning_content": "secret"}, user("again")])
    assert out["contents"][1] == {"role": "model", "parts": [{"text": "A"}]}


def test_missing_tool_result_gets_an_error_response_and_history_starting_with_a_call_gets_a_user_turn() -> None:
    call = {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                                                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}}]}
    out = req([call, {"role": "tool", "tool_call_id": "c1", "content": "ok"}])
    assert out["contents"][0]["role"] == "user"
    responses = out["contents"][2]["parts"]
    assert len(responses) == 2 and responses[1]["functionResponse"]["response"] == {"error": "No result was sent for this tool call."}


def test_empty_text_parts_are_dropped_and_turns_merged() -> None:
    out = req([user(""), user("a"), {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "b"}]}])
    assert out["contents"] == [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}]
    with pytest.raises(GatewayError) as caught:
        req([user("")])
    assert caught.value.code == 400


def test_content_parts_images_audio_files() -> None:
    images = {"https://x/cat.png": {"mimeType": "image/png", "data": PNG}}
    body = {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
        {"type": "input_audio", "input_audio": {"data": PNG, "format": "mp3"}},
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PNG}", "filename": "a.pdf"}},
        {"type": "file", "file": {"file_data": PNG, "filename": "notes.txt"}}]}]}
    assert openai_request.remote_image_urls(body) == ["https://x/cat.png"]
    parts = to_gemini(body, "gemini-2.5-flash", images=images)[0]["contents"][0]["parts"]
    assert [p["inlineData"]["mimeType"] for p in parts] == ["image/jpeg", "image/png", "audio/mp3", "application/pdf", "text/plain"]


def test_an_unfetched_url_is_never_passed_upstream() -> None:
    with pytest.raises(GatewayError) as caught:
        req([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}])
    assert caught.value.code == 400
    with pytest.raises(GatewayError):
        req([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}])


def test_tools_declarations_names_and_strict() -> None:
    tools = [{"type": "function", "function": {"name": "get weather", "strict": True, "description": "W",
                                               "parameters": {"type": "object", "properties": {"c": {"type": "string"}},
                                                              "additionalProperties": False}}},
             {"type": "function", "function": {"name": "noargs"}}]
    body = {"model": "m", "messages": [user("hi")], "tools": tools, "tool_choice": {"type": "function", "function": {"name": "get weather"}}}
    out, ctx = to_gemini(body, "gemini-2.5-flash")
    declarations = out["tools"][0]["functionDeclarations"]
    assert declarations == [{"name": "get_weather", "description": "W", "parameters": {"type": "object", "properties": {"c": {"type": "string"}}}},
                            {"name": "noargs", "parameters": {"type": "object", "properties": {}}}]
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    assert ctx.names.client("get_weather") == "get weather"


@pytest.mark.parametrize("choice, mode", [("none", "NONE"), ("auto", "AUTO"), ("required", "ANY")])
def test_tool_choice_modes(choice: str, mode: str) -> None:
    out = req([user("hi")], tools=[{"type": "function", "function": {"name": "f"}}], tool_choice=choice)
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": mode}}


def test_response_format() -> None:
    assert req([user("x")], response_format={"type": "json_object"})["generationConfig"] == {"responseMimeType": "application/json"}
    schema = {"type": "object", "properties": {"a": {"type": "string", "format": "date"}}, "additionalProperties": False}
    config = req([user("x")], response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}})["generationConfig"]
    assert config == {"responseMimeType": "application/json",
                      "responseSchema": {"type": "object", "properties": {"a": {"type": "string", "description": "format: date"}}}}
    assert "generationConfig" not in req([user("x")], response_format={"type": "text"})


def test_sampling_parameters_and_dropped_penalties() -> None:
    config = req([user("x")], temperature=0.2, top_p=0.5, max_completion_tokens=99, stop="END", n=2, seed=3,
                 presence_penalty=1.0, frequency_penalty=0.5)["generationConfig"]
    assert config == {"temperature": 0.2, "topP": 0.5, "maxOutputTokens": 99, "stopSequences": ["END"], "candidateCount": 2, "seed": 3}
    assert req([user("x")], max_tokens=7)["generationConfig"] == {"maxOutputTokens": 7}
    kept = req([user("x")], model="gemini-2.0-flash", presence_penalty=1.0)["generationConfig"]
    assert kept == {"presencePenalty": 1.0}


@pytest.mark.parametrize("effort, budget", [("none", 0), ("minimal", 512), ("low", 1024), ("medium", 8192), ("high", 24576)])
def test_reasoning_effort_gemini_25_budget(effort: str, budget: int) -> None:
    thinking = req([user("x")], reasoning_effort=effort)["generationConfig"]["thinkingConfig"]
    assert thinking["thinkingBudget"] == budget and "thinkingLevel" not in thinking
    assert thinking.get("includeThoughts", False) is (budget > 0)


@pytest.mark.parametrize("model, effort, level", [
    ("gemini-3-pro-preview", "low", "LOW"), ("gemini-3-pro-preview", "minimal", "LOW"), ("gemini-3-pro-preview", "medium", "HIGH"),
    ("gemini-3-pro-preview", "high", "HIGH"), ("gemini-3-flash", "minimal", "MINIMAL"), ("gemini-3-flash", "medium", "MEDIUM")])
def test_reasoning_effort_gemini_3_level_clamped(model: str, effort: str, level: str) -> None:
    thinking = req([user("x")], model=model, reasoning_effort=effort)["generationConfig"]["thinkingConfig"]
    assert thinking == {"includeThoughts": True, "thinkingLevel": level}


def test_bad_requests_are_400() -> None:
    for body in ({"messages": [user("x")]}, {"model": "m"}, {"model": "m", "messages": [{"role": "robot", "content": "x"}]},
                 {"model": "m", "messages": [user("x")], "tool_choice": "sometimes", "tools": [{"type": "function", "function": {"name": "f"}}]},
                 {"model": "m", "messages": [user("x")], "reasoning_effort": "extreme"}, [1, 2]):
        with pytest.raises(GatewayError) as caught:
            to_gemini(body, "gemini-2.5-flash")
        assert caught.value.code == 400


def test_claude_upstream_gets_validated_mode_and_output_cap() -> None:
    out = req([user("x")], model="claude-sonnet-4-6", tools=[{"type": "function", "function": {"name": "f"}}], max_tokens=100000)
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "VALIDATED"}}
    assert out["generationConfig"]["maxOutputTokens"] == 64000


# -- response ----------------------------------------------------------------------


def gemini(parts: list[dict[str, Any]], finish: str = "STOP", **usage: int) -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}],
            "usageMetadata": usage or {"promptTokenCount": 10, "candidatesTokenCount": 4, "thoughtsTokenCount": 6,
                                       "cachedContentTokenCount": 3},
            "responseId": "r1"}


def answer(response: dict[str, Any], names: list[str] = ()) -> dict[str, Any]:
    _, ctx = to_gemini({"model": "gpt-4o", "messages": [user("x")],
                        "tools": [{"type": "function", "function": {"name": n}} for n in names]}, "gemini-3-flash")
    return openai_response.completion(response, ctx, SignatureMemory(), 1700000000.0)


def test_completion_shape_reasoning_and_usage() -> None:
    out = answer(gemini([{"text": "hmm", "thought": True}, {"text": "Hello"}, {"text": " world"}]))
    assert out["object"] == "chat.completion" and out["model"] == "gpt-4o" and out["created"] == 1700000000
    assert out["id"] == "chatcmpl-r1"
    assert out["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "Hello world", "reasoning_content": "hmm"},
                               "finish_reason": "stop", "logprobs": None}]
    assert out["usage"] == {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20,
                            "prompt_tokens_details": {"cached_tokens": 3}, "completion_tokens_details": {"reasoning_tokens": 6}}


def test_function_calls_names_back_and_signature_in_extra_content() -> None:
    memory = SignatureMemory()
    _, ctx = to_gemini({"model": "gpt-4o", "messages": [user("x")], "tools": [{"type": "function", "function": {"name": "get weather"}}]},
                       "gemini-3-flash")
    out = openai_response.completion(gemini([{"functionCall": {"name": "get_weather", "args": {"c": "P"}}, "thoughtSignature": "S1"}]),
                                     ctx, memory, 5.0)
    message = out["choices"][0]["message"]
    [call] = message["tool_calls"]
    assert message["content"] is None and out["choices"][0]["finish_reason"] == "tool_calls"
    assert call["function"] == {"name": "get weather", "arguments": '{"c":"P"}'} and call["type"] == "function"
    assert call["extra_content"] == {"google": {"thought_signature": "S1"}}
    assert memory.for_call(call["id"], 6.0) == ("S1", "gemini-3")


@pytest.mark.parametrize("finish, called, expected", [
    ("STOP", False, "stop"), ("STOP", True, "tool_calls"), ("MAX_TOKENS", False, "length"), ("MAX_TOKENS", True, "tool_calls"),
    ("SAFETY", False, "content_filter"), ("RECITATION", False, "content_filter"), ("BLOCKLIST", False, "content_filter"),
    ("PROHIBITED_CONTENT", False, "content_filter"), ("SPII", False, "content_filter"), ("OTHER", False, "stop"),
    ("MALFORMED_FUNCTION_CALL", False, "stop"), (None, False, "stop")])
def test_finish_reasons(finish: str | None, called: bool, expected: str) -> None:
    assert openai_response.finish_reason(finish, called) == expected


def test_blocked_prompt_is_content_filter() -> None:
    out = answer({"promptFeedback": {"blockReason": "SAFETY"}})
    assert out["choices"][0]["finish_reason"] == "content_filter"


@pytest.mark.parametrize("code, kind", [(400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
                                        (404, "invalid_request_error"), (429, "rate_limit_error"), (500, "server_error"), (503, "server_error")])
def test_error_shapes(code: int, kind: str) -> None:
    status, body, headers = openai_response.error_from(GatewayError(code, "nope", headers={"Retry-After": "3"}))
    assert status == code and body == {"error": {"message": "nope", "type": kind, "param": None, "code": body["error"]["code"]}}
    assert headers == {"Retry-After": "3"}
    overflow = openai_response.error_dict(400, "The input token count (9) exceeds the maximum number of tokens allowed (5).")
    assert overflow["error"]["code"] == "context_length_exceeded"


# -- stream ------------------------------------------------------------------------


def chunks(data: bytes) -> list[Any]:
    out = []
    for event in data.decode().split("\n\n"):
        if event:
            assert event.startswith("data: ")
            body = event[6:]
            out.append(body if body == "[DONE]" else json.loads(body))
    return out


def stream(include_usage: bool = False, names: tuple[str, ...] = ()) -> OpenAIStream:
    body = {"model": "gpt-4o", "messages": [user("x")], "stream": True,
            "tools": [{"type": "function", "function": {"name": n}} for n in names]}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    _, ctx = to_gemini(body, "gemini-2.5-flash")
    return OpenAIStream(ctx, SignatureMemory(), 1700000000.0)


def event(parts: list[dict[str, Any]], **candidate: Any) -> bytes:
    return json.dumps({"response": {"candidates": [{"content": {"role": "model", "parts": parts}, **candidate}]}}).encode()


def test_stream_chunks_role_first_tool_call_indices_and_finish() -> None:
    s = stream(names=("get weather",))
    out = chunks(s.event(event([{"text": "hm", "thought": True}, {"text": "Hi"}])))
    out += chunks(s.event(event([{"functionCall": {"name": "get_weather", "args": {}}}, {"functionCall": {"name": "get_weather", "args": {"a": 1}}}],
                                finishReason="STOP")))
    out += chunks(s.end())
    assert out[-1] == "[DONE]"
    deltas = [c["choices"][0]["delta"] for c in out[:-1]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1] == {"reasoning_content": "hm"} and deltas[2] == {"content": "Hi"}
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert [c["index"] for c in calls] == [0, 1] and calls[0]["function"]["name"] == "get weather"
    assert calls[1]["function"]["arguments"] == '{"a":1}'
    assert deltas[-1] == {} and out[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert len({c["id"] for c in out[:-1]}) == 1 and all(c["object"] == "chat.completion.chunk" for c in out[:-1])
    assert all("usage" not in c for c in out[:-1])


def test_stream_include_usage() -> None:
    s = stream(include_usage=True)
    data = s.event(event([{"text": "a"}])) + s.event(json.dumps({"response": {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "b"}]}, "finishReason": "MAX_TOKENS"}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}}).encode()) + s.end()
    out = chunks(data)
    assert all(c["usage"] is None for c in out[:-2])
    assert out[-3]["choices"][0]["finish_reason"] == "length"
    assert out[-2]["choices"] == [] and out[-2]["usage"]["total_tokens"] == 5 and out[-1] == "[DONE]"


def test_stream_error_after_start_then_done_and_nothing_more() -> None:
    s = stream()
    s.event(event([{"text": "a"}]))
    out = chunks(s.event(json.dumps({"error": {"code": 429, "message": "slow", "status": "RESOURCE_EXHAUSTED"}}).encode()))
    assert out == [{"error": {"message": "slow", "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"}}, "[DONE]"]
    assert s.end() == b"" and s.error(500, "x") == b""


def test_empty_stream_still_ends_properly() -> None:
    out = chunks(stream().end())
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert out[1]["choices"][0]["finish_reason"] == "stop" and out[2] == "[DONE]"
