"""POST /v1/chat/completions and GET /v1/models over loopback, against the emulator."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site

from gateway.emulator.content import PIXEL_PNG
from tests.integration.harness import accounts, body_json, start_stack

CHAT = "/v1/chat/completions"
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                                "required": ["city"], "additionalProperties": False}}}


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": extra.pop("model", "gemini-3-flash"), "messages": [{"role": "user", "content": text}], **extra}


def sse_chunks(raw: bytes) -> list[Any]:
    events = [e for e in raw.decode().split("\n\n") if e.strip()]
    out = []
    for event in events:
        assert event.startswith("data: "), event
        data = event[len("data: "):]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


@pytest_twisted.ensureDeferred
async def test_chat_completion_text_usage_and_envelope(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        body = {"model": "gemini-3-flash", "messages": [{"role": "system", "content": "Be terse."},
                                                           {"role": "user", "content": "Hello there"}],
                "temperature": 0.5, "top_p": 0.9, "max_tokens": 200, "stop": ["END"], "seed": 7,
                "presence_penalty": 0.5, "frequency_penalty": 0.2}
        response = await stack.post(CHAT, body)
        answer = await body_json(response)
        assert response.code == 200, answer
        assert answer["object"] == "chat.completion" and answer["model"] == "gemini-3-flash"
        choice = answer["choices"][0]
        assert choice["message"] == {"role": "assistant", "content": "Echo: Hello there"}
        assert choice["finish_reason"] == "stop" and choice["logprobs"] is None
        usage = answer["usage"]
        assert usage["prompt_tokens"] > 0 and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        [sent] = stack.emulator.state.requests("generateContent")
        request = sent["body"]["request"]
        assert request["systemInstruction"]["parts"] == [{"text": "Be terse."}]
        assert request["contents"] == [{"role": "user", "parts": [{"text": "Hello there"}]}]
        config = request["generationConfig"]
        assert config == {"temperature": 0.5, "topP": 0.9, "maxOutputTokens": 200, "stopSequences": ["END"], "seed": 7}


@pytest_twisted.ensureDeferred
async def test_model_mapping_defaults_and_config_entries(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), models={"mapping": (("gpt-4o-mini", "gemini-3.1-pro-low"),)}) as stack:
        for asked, sent_model in (("gpt-4o", "gemini-3.7-flash-high"), ("gpt-4o-mini", "gemini-3.1-pro-low"),
                                  ("o3-mini", "gemini-3.1-flash-lite"), ("o3", "gemini-3.1-pro-low"),
                                  ("gemini-3-flash", "gemini-3-flash")):
            response = await stack.post(CHAT, chat("hi", model=asked))
            answer = await body_json(response)
            assert response.code == 200, answer
            assert answer["model"] == asked
            assert stack.emulator.state.requests("generateContent")[-1]["body"]["model"] == sent_model


@pytest_twisted.ensureDeferred
async def test_stream_chunks_usage_and_done(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        response = await stack.post(CHAT, chat("Hello stream 4 events", stream=True, stream_options={"include_usage": True}))
        raw = await treq.content(response)
        assert response.code == 200, raw
        assert response.headers.getRawHeaders(b"content-type") == [b"text/event-stream"]
        chunks = sse_chunks(raw)
        assert chunks[-1] == "[DONE]"
        objects = chunks[:-1]
        assert len({c["id"] for c in objects}) == 1 and len({c["created"] for c in objects}) == 1
        assert objects[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        assert all(c["usage"] is None for c in objects[:-1])
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in objects if c["choices"])
        assert text == "Echo: Hello stream 4 events"
        last_choice = objects[-2]["choices"][0]
        assert last_choice["delta"] == {} and last_choice["finish_reason"] == "stop"
        assert objects[-1]["choices"] == [] and objects[-1]["usage"]["total_tokens"] > 0
        # without include_usage there is no usage anywhere
        plain = sse_chunks(await treq.content(await stack.post(CHAT, chat("hi", stream=True))))
        assert plain[-1] == "[DONE]" and all("usage" not in c for c in plain[:-1])


@pytest_twisted.ensureDeferred
async def test_tool_call_round_trip_with_gemini3_signature(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        tools = [WEATHER_TOOL]
        first = await body_json(await stack.post(CHAT, chat("call function get_weather", model="gemini-3-flash",
                                                            tools=tools, tool_choice="auto")))
        choice = first["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        [call] = choice["message"]["tool_calls"]
        assert call["type"] == "function" and call["function"]["name"] == "get_weather"
        assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
        signature = call["extra_content"]["google"]["thought_signature"]
        sent = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]
        assert sent["tools"][0]["functionDeclarations"][0]["parameters"] == {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
        # the client drops extra_content (as most do): the gateway restores the signature by call id
        bare_call = {k: v for k, v in call.items() if k != "extra_content"}
        history = [{"role": "user", "content": "call function get_weather"},
                   {"role": "assistant", "content": None, "tool_calls": [bare_call]},
                   {"role": "tool", "tool_call_id": call["id"], "content": "sunny, 21C"}]
        second = await stack.post(CHAT, {"model": "gemini-3-flash", "messages": history, "tools": tools})
        answer = await body_json(second)
        assert second.code == 200, answer
        assert answer["choices"][0]["message"]["content"] == 'Results: get_weather={"output":"sunny, 21C"}'
        sent = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]
        model_turn = sent["contents"][1]
        assert model_turn["parts"][0]["thoughtSignature"] == signature
        assert sent["contents"][2]["parts"][0]["functionResponse"]["id"] == call["id"]


@pytest_twisted.ensureDeferred
async def test_unknown_call_gets_the_sentinel_and_gemini3_accepts_it(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        history = [{"role": "user", "content": "go"},
                   {"role": "assistant", "tool_calls": [{"id": "call_elsewhere", "type": "function",
                                                         "function": {"name": "get_weather", "arguments": "{}"}}]},
                   {"role": "tool", "tool_call_id": "call_elsewhere", "content": "ok"}]
        response = await stack.post(CHAT, {"model": "gemini-3-flash", "messages": history, "tools": [WEATHER_TOOL]})
        assert response.code == 200, await treq.content(response)
        sent = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]
        assert sent["contents"][1]["parts"][0]["thoughtSignature"] == "skip_thought_signature_validator"


@pytest_twisted.ensureDeferred
async def test_streamed_tool_call_deltas(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        raw = await treq.content(await stack.post(CHAT, chat("call function get_weather", tools=[WEATHER_TOOL], stream=True)))
        chunks = sse_chunks(raw)[:-1]
        calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
        assert len(calls) == 1 and calls[0]["index"] == 0 and calls[0]["id"].startswith("call_")
        assert calls[0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
        assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest_twisted.ensureDeferred
async def test_json_mode_and_schema(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                  "properties": {"n": {"type": "integer", "minimum": 0, "default": 1}, "tag": {"const": "x"}},
                  "required": ["n", "ghost"], "additionalProperties": False}
        for fmt, expected in (({"type": "json_object"}, None),
                              ({"type": "json_schema", "json_schema": {"name": "s", "schema": schema, "strict": True}},
                               {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "description": "default: 1"},
                                                                 "tag": {"type": "string", "enum": ["x"]}}, "required": ["n"]})):
            response = await stack.post(CHAT, chat("json please", response_format=fmt))
            assert response.code == 200, await treq.content(response)
            await treq.content(response)
            config = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]["generationConfig"]
            assert config["responseMimeType"] == "application/json"
            assert config.get("responseSchema") == expected


@pytest_twisted.ensureDeferred
async def test_reasoning_effort_maps_to_thinking_and_reasoning_content(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        answer = await body_json(await stack.post(CHAT, chat("think", reasoning_effort="low")))
        message = answer["choices"][0]["message"]
        assert message["reasoning_content"].startswith("Thinking about: think")
        assert answer["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0
        config = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]["generationConfig"]
        assert config["thinkingConfig"] == {"includeThoughts": True, "thinkingLevel": "LOW"}
        await body_json(await stack.post(CHAT, chat("think", model="gemini-3.1-pro-low", reasoning_effort="medium")))
        config = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]["generationConfig"]
        assert config["thinkingConfig"] == {"includeThoughts": True, "thinkingLevel": "HIGH"}
        raw = await treq.content(await stack.post(CHAT, chat("think", reasoning_effort="high", stream=True)))
        reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content", "") for c in sse_chunks(raw)[:-1])
        assert reasoning.startswith("Thinking about")


class _Images(Resource):
    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        if request.path == b"/pixel.png":
            request.setHeader(b"Content-Type", b"image/png")
            return base64.b64decode(PIXEL_PNG)
        if request.path == b"/big.png":
            request.setHeader(b"Content-Type", b"image/png")
            return b"\0" * 4096
        request.setResponseCode(404)
        return b"no"


@pytest_twisted.ensureDeferred
async def test_images_data_uri_and_fetched_url(tmp_path: Path) -> None:
    server = reactor.listenTCP(0, Site(_Images()), interface="127.0.0.1")
    base = f"http://127.0.0.1:{server.getHost().port}"
    try:
        # Loopback is refused by default (SSRF); the operator setting lets this test's server in.
        async with start_stack(tmp_path, accounts(1), image_fetch={"max_bytes": 1024, "allow_networks": ("127.0.0.0/8",)}) as stack:
            content = [{"type": "text", "text": "what is this"},
                       {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL_PNG}"}},
                       {"type": "image_url", "image_url": {"url": base + "/pixel.png", "detail": "low"}}]
            response = await stack.post(CHAT, {"model": "gemini-3-flash", "messages": [{"role": "user", "content": content}]})
            assert response.code == 200, await treq.content(response)
            await treq.content(response)
            parts = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]["contents"][0]["parts"]
            assert parts[1] == parts[2] == {"inlineData": {"mimeType": "image/png", "data": PIXEL_PNG}}
            for path in ("/big.png", "/missing.png"):
                bad = await stack.post(CHAT, {"model": "gemini-3-flash", "messages": [{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": base + path}}]}]})
                error = await body_json(bad)
                assert bad.code == 400 and error["error"]["type"] == "invalid_request_error", error
                assert path in error["error"]["message"]
            assert len(stack.emulator.state.requests("generateContent")) == 1  # never passed upstream
    finally:
        await server.stopListening()


@pytest_twisted.ensureDeferred
async def test_errors_are_openai_shaped_with_the_right_status(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        bad = await stack.post(CHAT, b"{nope")
        error = await body_json(bad)
        assert bad.code == 400 and set(error["error"]) == {"message", "type", "param", "code"}
        assert (await stack.post(CHAT, {"model": "gemini-3-flash", "messages": []})).code == 400
        missing = await stack.post(CHAT, chat("hi", model="no-such-model"))
        assert missing.code == 404 and (await body_json(missing))["error"]["code"] == "model_not_found"
        method = await stack.get(CHAT)
        assert method.code == 405 and "error" in await body_json(method)
        stack.emulator.state.add_fault({"method": "generateContent", "kind": "error", "status": 429, "times": -1})
        limited = await stack.post(CHAT, chat("hi"))
        error = await body_json(limited)
        assert limited.code == 429 and error["error"]["type"] == "rate_limit_error"
        assert limited.headers.getRawHeaders(b"retry-after")


@pytest_twisted.ensureDeferred
async def test_stream_errors_before_and_after_the_first_byte(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        # an upstream error event before any content: still a real HTTP status
        stack.emulator.state.add_fault({"method": "streamGenerateContent", "kind": "stream_error", "after_events": 0,
                                        "status": 400, "message": "bad thing"})
        early = await stack.post(CHAT, chat("hi", stream=True))
        body = await body_json(early)
        assert early.code == 400 and body["error"]["message"] == "bad thing"
        # after the start: an error chunk, then [DONE]
        stack.emulator.state.add_fault({"method": "streamGenerateContent", "kind": "stream_error", "after_events": 2,
                                        "status": 500, "message": "went wrong"})
        late = await stack.post(CHAT, chat("hi stream 5 events", stream=True))
        chunks = sse_chunks(await treq.content(late))
        assert late.code == 200 and chunks[-1] == "[DONE]"
        assert chunks[-2]["error"]["message"] == "went wrong" and chunks[-2]["error"]["type"] == "server_error"


@pytest_twisted.ensureDeferred
async def test_models_list_serves_openai_gemini_and_anthropic_shapes(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        plain = await body_json(await stack.get("/v1/models"))
        assert plain["object"] == "list" and plain["models"]
        ids = [m["id"] for m in plain["data"]]
        assert "gemini-3-flash" in ids and ids == [m["name"][len("models/"):] for m in plain["models"]]
        assert set(plain["data"][0]) == {"id", "object", "created", "owned_by"}
        assert "has_more" not in plain
        claude = await body_json(await stack.get("/v1/models", headers={b"anthropic-version": [b"2023-06-01"]}))
        item = claude["data"][0]
        assert item["type"] == "model" and item["display_name"] and item["created_at"].endswith("Z")
        assert claude["has_more"] is False and claude["first_id"] == ids[0] and claude["last_id"] == ids[-1]
        one = await body_json(await stack.get("/v1/models/gemini-3-flash"))
        assert one["id"] == "gemini-3-flash" and one["object"] == "model" and one["name"] == "models/gemini-3-flash"
