"""POST /v1/responses and the images routes over loopback, against the emulator."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest_twisted
import treq

from tests.integration.harness import accounts, body_json, start_stack

RESPONSES = "/v1/responses"
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city", "strict": True,
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}}


def events_of(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = block.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        event = json.loads(lines[1][len("data: "):])
        assert event["type"] == lines[0][len("event: "):]
        out.append(event)
    return out


def emulator_args(args: object) -> bool:
    """The emulator's arguments: its old placeholder, or (once it answers like a model) schema-valid ones."""
    return isinstance(args, dict) and isinstance(args.get("city"), str)


def png_size(data: str) -> tuple[int, int]:
    raw = base64.b64decode(data)
    assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", raw[16:24])
    idat = raw.index(b"IDAT")
    length = struct.unpack(">I", raw[idat - 4:idat])[0]
    assert len(zlib.decompress(raw[idat + 4: idat + 4 + length])) == height * (1 + 3 * width)
    return width, height


@pytest_twisted.ensureDeferred
async def test_text_answer_shape_and_request(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        body = {"model": "gemini-3-flash", "instructions": "Be terse.", "input": "Hello there", "temperature": 0.5,
                "top_p": 0.9, "max_output_tokens": 300, "metadata": {"k": "v"}, "store": False}
        response = await stack.post(RESPONSES, body)
        answer = await body_json(response)
        assert response.code == 200, answer
        assert answer["object"] == "response" and answer["id"].startswith("resp_") and answer["status"] == "completed"
        assert answer["model"] == "gemini-3-flash" and answer["metadata"] == {"k": "v"} and answer["error"] is None
        [message] = answer["output"]
        assert message["type"] == "message" and message["role"] == "assistant"
        assert message["content"] == [{"type": "output_text", "text": "Echo: Hello there", "annotations": [], "logprobs": []}]
        assert answer["usage"]["input_tokens"] > 0 and answer["usage"]["total_tokens"] == (
            answer["usage"]["input_tokens"] + answer["usage"]["output_tokens"])
        [sent] = stack.emulator.state.requests("generateContent")
        request = sent["body"]["request"]
        assert request["systemInstruction"]["parts"] == [{"text": "Be terse."}]
        assert request["contents"] == [{"role": "user", "parts": [{"text": "Hello there"}]}]
        assert request["generationConfig"] == {"temperature": 0.5, "topP": 0.9, "maxOutputTokens": 300}


@pytest_twisted.ensureDeferred
async def test_stream_event_sequence(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        response = await stack.post(RESPONSES, {"model": "gemini-3-flash", "input": "Hi stream 4 events", "stream": True,
                                                "reasoning": {"effort": "low", "summary": "auto"}})
        raw = await treq.content(response)
        assert response.code == 200, raw
        assert b"[DONE]" not in raw
        events = events_of(raw)
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        types = [e["type"] for e in events]
        assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"
        assert "response.reasoning_summary_text.delta" in types
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        assert text == "Echo: Hi stream 4 events"
        done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
        assert [i["type"] for i in done] == ["reasoning", "message"]
        final = events[-1]["response"]
        assert final["status"] == "completed" and final["output"] == done
        assert final["usage"]["output_tokens_details"]["reasoning_tokens"] > 0


@pytest_twisted.ensureDeferred
async def test_tool_round_trip_carries_signature_in_encrypted_content(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        first = await body_json(await stack.post(RESPONSES, {
            "model": "gemini-3-flash", "input": "call function get_weather", "tools": [WEATHER], "store": False,
            "include": ["reasoning.encrypted_content"]}))
        kinds = [i["type"] for i in first["output"]]
        assert kinds[-1] == "function_call" and "reasoning" in kinds, first
        call = first["output"][-1]
        assert call["name"] == "get_weather" and emulator_args(json.loads(call["arguments"]))
        reasoning = first["output"][kinds.index("reasoning")]
        assert reasoning["encrypted_content"].startswith("gw1:gemini-3:")
        signature = reasoning["encrypted_content"].split(":", 2)[2]
        sent = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]
        assert sent["tools"][0]["functionDeclarations"][0]["parameters"]["required"] == ["city"]
        # Codex-style: whole history, item ids stripped, no server state
        history = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "call function get_weather"}]},
                   {k: v for k, v in reasoning.items() if k != "id"},
                   {k: v for k, v in call.items() if k != "id"},
                   {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}]
        response = await stack.post(RESPONSES, {"model": "gemini-3-flash", "input": history, "tools": [WEATHER], "store": False})
        second = await body_json(response)
        assert response.code == 200, second
        assert second["output"][-1]["content"][0]["text"].startswith("Results: get_weather=")
        turns = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]["contents"]
        model_turn = turns[1]
        calls = [p for p in model_turn["parts"] if "functionCall" in p]
        assert calls[0]["thoughtSignature"] == signature
        assert turns[2]["parts"][0]["functionResponse"]["response"] == {"output": "sunny"}


@pytest_twisted.ensureDeferred
async def test_previous_response_id_and_a_clear_400_when_gone(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        first = await body_json(await stack.post(RESPONSES, {"model": "gemini-3-flash", "input": "call function get_weather",
                                                              "tools": [WEATHER]}))
        call = first["output"][-1]
        response = await stack.post(RESPONSES, {
            "model": "gemini-3-flash", "previous_response_id": first["id"], "tools": [WEATHER], "stream": True,
            "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "rain"}]})
        events = events_of(await treq.content(response))
        assert events[-1]["type"] == "response.completed"
        assert events[-1]["response"]["previous_response_id"] == first["id"]
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        assert text.startswith("Results: get_weather=") and "rain" in text
        turns = stack.emulator.state.requests("streamGenerateContent")[-1]["body"]["request"]["contents"]
        assert [t["role"] for t in turns] == ["user", "model", "user"]
        assert turns[1]["parts"][-1]["functionCall"]["name"] == "get_weather"
        assert turns[1]["parts"][-1]["thoughtSignature"] != "skip_thought_signature_validator"
        # a third turn continues from the streamed one
        third = await body_json(await stack.post(RESPONSES, {"model": "gemini-3-flash", "input": "and now?",
                                                              "previous_response_id": events[-1]["response"]["id"]}))
        assert third["output"][-1]["content"][0]["text"] == "Echo: and now?"
        assert len(stack.emulator.state.requests("generateContent")[-1]["body"]["request"]["contents"]) == 5
        response = await stack.post(RESPONSES, {"model": "gemini-3-flash", "input": "x", "previous_response_id": "resp_gone"})
        error = await body_json(response)
        assert response.code == 400 and "resp_gone" in error["error"]["message"] and "input" in error["error"]["message"]
        assert error["error"]["type"] == "invalid_request_error"


@pytest_twisted.ensureDeferred
async def test_errors_are_openai_shaped_and_codex_gets_response_failed(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        response = await stack.post(RESPONSES, {"model": "gemini-3-flash", "input": 5})
        error = await body_json(response)
        assert response.code == 400 and error["error"]["message"].startswith("input must be")
        response = await stack.post(RESPONSES, {"model": "no-such-model", "input": "hi", "stream": True})
        error = await body_json(response)
        assert response.code == 404 and "error" in error
        response = await stack.post(RESPONSES, {"model": "no-such-model", "input": "hi", "stream": True},
                                    headers={b"originator": [b"codex_exec"]})
        raw = await treq.content(response)
        assert response.code == 200, raw
        events = events_of(raw)
        assert [e["type"] for e in events] == ["response.created", "response.in_progress", "response.failed"]
        failed = events[-1]["response"]
        assert failed["status"] == "failed" and failed["error"]["code"] == "invalid_request_error" and failed["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_web_search_becomes_grounding_only_without_functions(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        await body_json(await stack.post(RESPONSES, {"model": "gemini-3-flash", "input": "news?", "tools": [{"type": "web_search"}]}))
        assert stack.emulator.state.requests("generateContent")[-1]["body"]["request"]["tools"] == [{"googleSearch": {}}]
        await body_json(await stack.post(RESPONSES, {"model": "gemini-3-flash", "input": "news?",
                                                     "tools": [{"type": "web_search"}, WEATHER]}))
        tools = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]["tools"]
        assert tools == [{"functionDeclarations": [tools[0]["functionDeclarations"][0]]}]


@pytest_twisted.ensureDeferred
async def test_images_generations_spread_over_accounts(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(2)) as stack:
        response = await stack.post("/v1/images/generations", {"prompt": "a red fox", "n": 2, "size": "1792x1024",
                                                               "quality": "hd", "model": "gpt-image-1"})
        answer = await body_json(response)
        assert response.code == 200, answer
        assert len(answer["data"]) == 2 and all(png_size(d["b64_json"]) == (64, 36) for d in answer["data"])
        calls = stack.emulator.state.requests("generateContent")
        assert len(calls) == 2 and {c["body"]["project"] for c in calls} == {"project-0", "project-1"}
        for call in calls:
            assert call["body"]["model"] == "gemini-3.1-flash-image" and call["body"]["requestType"] == "image_gen"
            request = call["body"]["request"]
            assert request["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "4K"}
            assert request["contents"] == [{"role": "user", "parts": [{"text": "a red fox"}]}]
        response = await stack.post("/v1/images/generations", {"prompt": "a cat", "response_format": "url",
                                                               "model": "gemini-3.1-flash-image"})
        answer = await body_json(response)
        [item] = answer["data"]  # the thinking model's draft image is dropped
        assert item["url"].startswith("data:image/png;base64,") and png_size(item["url"].split(",", 1)[1]) == (64, 64)
        response = await stack.post("/v1/images/generations", {"prompt": "", "n": 1})
        assert response.code == 400 and "prompt" in (await body_json(response))["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_images_edits_multipart(tmp_path: Path) -> None:
    from gateway.emulator.images import png

    picture = png(4, 4, (1, 2, 3))
    boundary = "b0undary"
    fields = [("prompt", b"make it blue", None), ("size", b"1024x1536", None), ("image[]", picture, "a.png"),
              ("image[]", picture, "b.png")]
    body = b""
    for name, value, filename in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            body += b"Content-Type: image/png\r\n"
        body += b"\r\n" + value + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    async with start_stack(tmp_path, accounts(1)) as stack:
        response = await stack.post("/v1/images/edits", body,
                                    headers={b"Content-Type": [f"multipart/form-data; boundary={boundary}".encode()]})
        answer = await body_json(response)
        assert response.code == 200, answer
        assert png_size(answer["data"][0]["b64_json"]) == (43, 64)
        [call] = stack.emulator.state.requests("generateContent")
        parts = call["body"]["request"]["contents"][0]["parts"]
        assert parts[0] == {"text": "make it blue"} and len(parts) == 3
        assert parts[1]["inlineData"] == {"mimeType": "image/png", "data": base64.b64encode(picture).decode()}
        assert call["body"]["request"]["generationConfig"]["imageConfig"] == {"aspectRatio": "2:3"}


@pytest_twisted.ensureDeferred
async def test_native_gemini_image_generation_passes_through(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        body = {"contents": [{"role": "user", "parts": [{"text": "a kite"}]}],
                "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "4:3", "imageSize": "2K"}}}
        response = await stack.post("/v1beta/models/gemini-3.1-flash-image:generateContent", body)
        answer = await body_json(response)
        assert response.code == 200, answer
        parts = answer["candidates"][0]["content"]["parts"]
        assert [p.get("thought", False) for p in parts if "inlineData" in p] == [True, False]  # native: drafts kept as sent
        assert png_size(parts[-1]["inlineData"]["data"]) == (64, 48)
        [sent] = stack.emulator.state.requests("generateContent")
        assert sent["body"]["requestType"] == "image_gen"
        assert sent["body"]["request"]["generationConfig"] == body["generationConfig"]
        response = await stack.post("/v1beta/models/gemini-3.1-flash-image:generateContent",
                                    dict(body, generationConfig={"imageConfig": {"aspectRatio": "7:1"}}))
        error = await body_json(response)
        assert response.code == 400 and "aspect ratio" in error["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_stream_failure_before_the_start_for_codex_and_for_sdks(tmp_path: Path) -> None:
    codex = {b"originator": [b"codex_exec"], b"User-Agent": [b"codex_exec/0.171.0"]}
    async with start_stack(tmp_path, accounts(1)) as stack:
        stack.emulator.state.add_fault({"method": "streamGenerateContent", "kind": "error", "status": 429, "times": -1})
        limited = await stack.post(RESPONSES, {"model": "gemini-3-flash", "input": "hi", "stream": True}, headers=codex)
        events = events_of(await treq.content(limited))
        assert limited.code == 200 and events[-1]["type"] == "response.failed"
        error = events[-1]["response"]["error"]
        assert error["code"] == "rate_limit_exceeded" and "try again in" in error["message"]
        plain = await stack.post(RESPONSES, {"model": "gemini-3-flash", "input": "hi", "stream": True})
        assert plain.code == 429 and (await body_json(plain))["error"]["type"] == "rate_limit_error"


@pytest_twisted.ensureDeferred
async def test_stream_failure_after_the_start_is_response_failed(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        stack.emulator.state.add_fault({"method": "streamGenerateContent", "kind": "stream_error", "after_events": 2,
                                        "status": 500, "message": "went wrong"})
        late = await stack.post(RESPONSES, {"model": "gemini-3-flash", "input": "hi stream 5 events", "stream": True})
        events = events_of(await treq.content(late))
        assert late.code == 200 and events[-1]["type"] == "response.failed"
        assert events[-1]["response"]["error"] == {"code": "server_error", "message": "went wrong"}
        assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")  # what came before stays
