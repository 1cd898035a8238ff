"""The Responses API translators: request -> Gemini, Gemini -> response items, stream events, store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.compat import responses_response
from gateway.compat.responses_request import carried, carry, input_items, remote_image_urls, to_gemini
from gateway.compat.responses_store import ResponseStore
from gateway.compat.responses_stream import ResponsesStream
from gateway.compat.signatures import SKIP_SIGNATURE, SignatureMemory
from gateway.protocol.errors import GatewayError

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
FN = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                                 "required": ["city"], "additionalProperties": False},
      "strict": True, "description": "Weather"}


def gemini(body: dict[str, Any], model: str = "gemini-3-flash", **kw: Any) -> tuple[dict[str, Any], Any]:
    return to_gemini({"model": "m", **body}, model, **kw)


# -- request ------------------------------------------------------------------------------


def test_string_input_instructions_and_settings() -> None:
    request, ctx = gemini({"input": "hi", "instructions": "Be terse.", "temperature": 0.2, "top_p": 0.5,
                           "max_output_tokens": 77, "metadata": {"a": "b"}, "store": False, "prompt_cache_key": "conv-1"})
    assert request["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert request["systemInstruction"] == {"role": "user", "parts": [{"text": "Be terse."}]}
    assert request["generationConfig"] == {"temperature": 0.2, "topP": 0.5, "maxOutputTokens": 77}
    assert request["sessionId"] == "conv-1"
    assert ctx.echo["metadata"] == {"a": "b"} and ctx.echo["store"] is False and ctx.echo["max_output_tokens"] == 77


def test_message_items_with_images_files_and_developer_messages() -> None:
    items = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Rules."}]},
        {"role": "user", "content": [{"type": "input_text", "text": "look"},
                                     {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
                                     {"type": "input_image", "image_url": "https://x.test/a.png"},
                                     {"type": "input_file", "filename": "a.pdf", "file_data": "JVBERi0="}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "seen"}]},
        {"role": "system", "content": "More rules."},
        {"role": "user", "content": "again"},
    ]
    fetched = {"https://x.test/a.png": {"mimeType": "image/png", "data": PNG}}
    assert remote_image_urls({"input": items}) == ["https://x.test/a.png"]
    request, _ = gemini({"input": items}, images=fetched)
    assert request["systemInstruction"]["parts"] == [{"text": "Rules."}, {"text": "More rules."}]
    user, model, again = request["contents"]
    assert user["parts"][0] == {"text": "look"}
    assert user["parts"][1] == user["parts"][2] == {"inlineData": {"mimeType": "image/png", "data": PNG}}
    assert user["parts"][3] == {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}}
    assert model == {"role": "model", "parts": [{"text": "seen"}]} and again["parts"] == [{"text": "again"}]
    with pytest.raises(GatewayError, match="could not be fetched"):
        gemini({"input": items})


def test_function_calls_outputs_and_sentinel_without_signature() -> None:
    items = [{"role": "user", "content": "go"},
             {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
             {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": "{}"},
             {"type": "function_call_output", "call_id": "c1", "output": "rain"},
             {"type": "function_call_output", "call_id": "c2",
              "output": [{"type": "input_text", "text": "sun"}, {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}]}]
    request, _ = gemini({"input": items, "tools": [FN]})
    user, model, results, *rest = request["contents"]
    assert model["parts"][0] == {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}, "id": "c1"},
                                 "thoughtSignature": SKIP_SIGNATURE}
    assert "thoughtSignature" not in model["parts"][1]
    assert [p["functionResponse"] for p in results["parts"][:2]] == [
        {"name": "get_weather", "response": {"output": "rain"}, "id": "c1"},
        {"name": "get_weather", "response": {"output": "sun"}, "id": "c2"}]
    assert any("inlineData" in p for t in [results, *rest] for p in t["parts"])


def test_tools_custom_namespace_web_search_and_choice() -> None:
    tools = [FN,
             {"type": "custom", "name": "apply_patch", "description": "Patch files",
              "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
             {"type": "namespace", "name": "agents", "tools": [{"type": "function", "name": "spawn", "parameters": {}}]},
             {"type": "web_search"}, {"type": "local_shell"}]
    request, ctx = gemini({"input": "x", "tools": tools, "tool_choice": {"type": "function", "name": "spawn", "namespace": "agents"}})
    declarations = request["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in declarations] == ["get_weather", "apply_patch", "agents__spawn"]
    assert declarations[0]["parameters"] == {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    assert declarations[1]["parameters"]["required"] == ["input"] and "start: /.+/" in declarations[1]["parameters"]["properties"]["input"]["description"]
    assert len(request["tools"]) == 1  # no googleSearch beside function declarations
    assert request["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["agents__spawn"]}}
    assert ctx.custom == {"apply_patch"} and ctx.namespaces == {"agents__spawn": ("agents", "spawn")}
    for choice, expected in (("none", {"mode": "NONE"}), ("required", {"mode": "ANY"}), ("auto", {"mode": "AUTO"}),
                             ({"type": "custom", "name": "apply_patch"}, {"mode": "ANY", "allowedFunctionNames": ["apply_patch"]}),
                             ({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_weather"}]},
                              {"mode": "ANY", "allowedFunctionNames": ["get_weather"]})):
        assert gemini({"input": "x", "tools": [FN], "tool_choice": choice})[0]["toolConfig"]["functionCallingConfig"] == expected
    assert gemini({"input": "x", "tools": [{"type": "web_search_preview"}]})[0]["tools"] == [{"googleSearch": {}}]
    with pytest.raises(GatewayError, match="tool_choice"):
        gemini({"input": "x", "tools": [FN], "tool_choice": "sometimes"})


def test_custom_tool_call_history() -> None:
    items = [{"role": "user", "content": "patch"},
             {"type": "custom_tool_call", "call_id": "p1", "name": "apply_patch", "input": "*** Begin Patch"},
             {"type": "custom_tool_call_output", "call_id": "p1", "output": "done"}]
    request, _ = gemini({"input": items, "tools": [{"type": "custom", "name": "apply_patch"}]})
    assert request["contents"][1]["parts"][0]["functionCall"] == {"name": "apply_patch", "args": {"input": "*** Begin Patch"}, "id": "p1"}
    assert request["contents"][2]["parts"][0]["functionResponse"]["response"] == {"output": "done"}


def test_reasoning_effort_summary_and_text_format() -> None:
    request, _ = gemini({"input": "x", "reasoning": {"effort": "high", "summary": "auto"},
                         "text": {"format": {"type": "json_schema", "name": "out", "strict": True,
                                             "schema": {"type": "object", "properties": {"a": {"type": "integer"}},
                                                        "additionalProperties": False}}}})
    config = request["generationConfig"]
    assert config["thinkingConfig"] == {"includeThoughts": True, "thinkingLevel": "HIGH"}
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"] == {"type": "object", "properties": {"a": {"type": "integer"}}}
    summary_only = gemini({"input": "x", "reasoning": {"summary": "detailed"}})[0]
    assert summary_only["generationConfig"]["thinkingConfig"] == {"includeThoughts": True}
    assert gemini({"input": "x", "text": {"format": {"type": "json_object"}}})[0]["generationConfig"] == {"responseMimeType": "application/json"}
    with pytest.raises(GatewayError, match="reasoning.effort"):
        gemini({"input": "x", "reasoning": {"effort": "enormous"}})
    with pytest.raises(GatewayError, match="max_output_tokens"):
        gemini({"input": "x", "max_output_tokens": 0})


def test_encrypted_content_carries_signature_only_to_its_family() -> None:
    assert carried(carry("SIG", "gemini-3-flash")) == ("gemini-3", "SIG")
    assert carried("opaque-openai-blob") is None
    items = [{"role": "user", "content": "go"},
             {"type": "reasoning", "summary": [], "encrypted_content": carry("SIG", "gemini-3-flash")},
             {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
             {"type": "function_call_output", "call_id": "c1", "output": "ok"}]
    request, _ = gemini({"input": items, "tools": [FN]})
    assert request["contents"][1]["parts"][0]["thoughtSignature"] == "SIG"
    claude, _ = gemini({"input": items, "tools": [FN]}, model="claude-sonnet-4-6")
    assert "thoughtSignature" not in claude["contents"][1]["parts"][0]  # a Gemini signature never goes to Claude
    thought = [{"role": "user", "content": "q"},
               {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hmm"}], "encrypted_content": carry("T", "gemini-3-flash")},
               {"role": "assistant", "content": [{"type": "output_text", "text": "a"}]}, {"role": "user", "content": "q2"}]
    request, _ = gemini({"input": thought})
    assert request["contents"][1]["parts"] == [{"text": "hmm", "thought": True, "thoughtSignature": "T"}, {"text": "a"}]


def test_history_and_input_items() -> None:
    assert input_items({"input": "x"}) == [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]}]
    history = [{"type": "message", "role": "user", "content": "before"},
               {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}]
    request, ctx = gemini({"input": "after"}, history=history)
    assert [t["role"] for t in request["contents"]] == ["user", "model", "user"]
    assert ctx.items[-1]["content"][0]["text"] == "after" and len(ctx.items) == 3


@pytest.mark.parametrize("body, message", [
    ({"input": 3}, "input must be"), ({"input": [{"type": "message", "role": "robot", "content": "x"}]}, "role"),
    ({"input": [{"type": "telepathy"}]}, "not supported"), ({"input": ""}, "no content"),
    ({"input": "x", "metadata": "m"}, "metadata"), ({"input": "x", "tools": {}}, "tools must be"),
])
def test_bad_requests_say_what_is_wrong(body: dict[str, Any], message: str) -> None:
    with pytest.raises(GatewayError, match=message) as caught:
        gemini(body)
    assert caught.value.code == 400


# -- response ------------------------------------------------------------------------------


def document(*parts: dict[str, Any], reason: str = "STOP", usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": list(parts)}, "finishReason": reason}],
            "usageMetadata": usage or {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 3,
                                       "cachedContentTokenCount": 2}}


def test_response_object_items_and_usage() -> None:
    _, ctx = gemini({"input": "x", "tools": [FN], "include": ["reasoning.encrypted_content"], "metadata": {"k": "v"}})
    memory = SignatureMemory()
    answer, stored = responses_response.response(document(
        {"text": "pondering", "thought": True}, {"text": "Hello", "thoughtSignature": "S1"},
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}, "id": "c9"}, "thoughtSignature": "S2"}), ctx, memory, 100.0)
    assert answer["object"] == "response" and answer["status"] == "completed" and answer["created_at"] == 100
    assert answer["metadata"] == {"k": "v"} and answer["tools"] == [FN] and answer["parallel_tool_calls"] is True
    reasoning, message, signed, call = answer["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "pondering"}]
    assert reasoning["encrypted_content"] == carry("S1", "gemini-3-flash")
    assert message["content"][0]["text"] == "Hello" and message["status"] == "completed"
    assert signed["type"] == "reasoning" and signed["encrypted_content"] == carry("S2", "gemini-3-flash")
    assert call == {"id": call["id"], "type": "function_call", "status": "completed", "call_id": "c9",
                    "name": "get_weather", "arguments": '{"city":"Rome"}'}
    assert answer["usage"] == {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 2}, "output_tokens": 8,
                               "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 18}
    assert memory.for_call("c9", 100.0) == ("S2", "gemini-3")
    assert all(not k.startswith("_") for item in answer["output"] for k in item)
    assert [i["type"] for i in stored] == ["reasoning", "message", "reasoning", "function_call"]


def test_without_include_signatures_stay_server_side() -> None:
    _, ctx = gemini({"input": "x", "tools": [FN]})
    answer, stored = responses_response.response(document(
        {"functionCall": {"name": "get_weather", "args": {}, "id": "c1"}, "thoughtSignature": "S"}), ctx, SignatureMemory(), 0.0)
    assert [i["type"] for i in answer["output"]] == ["function_call"]
    assert stored[0] == {"id": stored[0]["id"], "type": "reasoning", "summary": [], "encrypted_content": carry("S", "gemini-3-flash")}


def test_custom_and_namespace_calls_map_back() -> None:
    _, ctx = gemini({"input": "x", "tools": [{"type": "custom", "name": "apply patch"},
                                             {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "f"}]}]})
    answer, _ = responses_response.response(document(
        {"functionCall": {"name": ctx.names.safe("apply patch"), "args": {"input": "PATCH"}}},
        {"functionCall": {"name": "ns__f", "args": {"a": 1}}}), ctx, SignatureMemory(), 0.0)
    custom, namespaced = answer["output"]
    assert custom["type"] == "custom_tool_call" and custom["name"] == "apply patch" and custom["input"] == "PATCH"
    assert namespaced["type"] == "function_call" and namespaced["name"] == "f" and namespaced["namespace"] == "ns"


@pytest.mark.parametrize("reason, status, details", [
    ("MAX_TOKENS", "incomplete", {"reason": "max_output_tokens"}), ("SAFETY", "incomplete", {"reason": "content_filter"}),
    ("STOP", "completed", None), ("OTHER", "completed", None)])
def test_status_from_finish_reason(reason: str, status: str, details: Any) -> None:
    _, ctx = gemini({"input": "x"})
    answer, _ = responses_response.response(document({"text": "t"}, reason=reason), ctx, SignatureMemory(), 0.0)
    assert answer["status"] == status and answer["incomplete_details"] == details


def test_images_in_answers_drop_drafts() -> None:
    _, ctx = gemini({"input": "x"})
    answer, _ = responses_response.response(document(
        {"inlineData": {"mimeType": "image/png", "data": "DRAFT"}, "thought": True},
        {"inlineData": {"mimeType": "image/png", "data": "FINAL"}}), ctx, SignatureMemory(), 0.0)
    [image] = answer["output"]
    assert image["type"] == "image_generation_call" and image["result"] == "FINAL"


def test_error_codes() -> None:
    assert responses_response.error_code(400, "The input token count exceeds the maximum") == "context_length_exceeded"
    assert responses_response.error_code(429, "slow down") == "rate_limit_exceeded"
    assert responses_response.error_code(503, "x") == "server_error"
    assert responses_response.error_dict(404, "no model")["error"]["type"] == "invalid_request_error"


# -- stream ----------------------------------------------------------------------------------


def parse(raw: bytes) -> list[dict[str, Any]]:
    events = []
    for block in raw.decode().split("\n\n"):
        if block:
            head, data = block.split("\n")
            event = json.loads(data[len("data: "):])
            assert head == "event: " + event["type"]
            events.append(event)
    return events


def test_stream_event_sequence_and_completion_callback() -> None:
    _, ctx = gemini({"input": "x", "tools": [FN]})
    done: list[Any] = []
    stream = ResponsesStream(ctx, SignatureMemory(), 5.0, on_complete=lambda final, items: done.append((final, items)))
    raw = stream.response({"candidates": [{"content": {"parts": [{"text": "th", "thought": True}]}}]})
    raw += stream.response({"candidates": [{"content": {"parts": [{"text": "Hel", "thoughtSignature": "S"}]}}]})
    raw += stream.response(document({"text": "lo"}, {"functionCall": {"name": "get_weather", "args": {"city": "X"}, "id": "c"}}))
    raw += stream.end()
    events = parse(raw)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.reasoning_summary_part.added", "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed"]
    assert all(e["response"]["id"] == stream.id for e in events if "response" in e)
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["reasoning", "message", "function_call"]
    assert final["output"][1]["content"][0]["text"] == "Hello" and final["usage"]["total_tokens"] == 18
    assert events[2]["output_index"] == 0 and events[8]["output_index"] == 1 and events[15]["output_index"] == 2
    assert done and done[0][0] == final and done[0][1][0]["encrypted_content"] == carry("S", "gemini-3-flash")
    assert stream.end() == b""


def test_stream_error_is_response_failed_and_max_tokens_incomplete() -> None:
    _, ctx = gemini({"input": "x"})
    stream = ResponsesStream(ctx, SignatureMemory(), 0.0)
    first = parse(stream.response({"candidates": [{"content": {"parts": [{"text": "par"}]}}]}))
    events = parse(stream.error(429, "Quota gone"))
    assert events[-1]["type"] == "response.failed" and events[-1]["sequence_number"] == len(first) + len(events) - 1
    assert events[-1]["response"]["status"] == "failed"
    assert events[-1]["response"]["error"] == {"code": "rate_limit_exceeded", "message": "Quota gone"}
    assert b"[DONE]" not in stream.end()
    cut = ResponsesStream(ctx, SignatureMemory(), 0.0)
    events = parse(cut.response(document({"text": "a"}, reason="MAX_TOKENS")) + cut.end())
    assert events[-1]["type"] == "response.incomplete" and events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    early = ResponsesStream(ctx, SignatureMemory(), 0.0)
    assert [e["type"] for e in parse(early.error(503, "down"))] == ["response.created", "response.in_progress", "response.failed"]


# -- store -----------------------------------------------------------------------------------


def test_store_bounds_ttl_and_message() -> None:
    store = ResponseStore(max_entries=2, ttl=10.0)
    store.put("a", [{"x": 1}], 0.0)
    store.put("b", [{"x": 2}], 1.0)
    store.put("c", [{"x": 3}], 2.0)
    assert store.get("a", 2.0) is None and store.get("b", 2.0) == [{"x": 2}] and len(store) == 2
    assert store.get("b", 11.0) is None
    with pytest.raises(GatewayError) as caught:
        store.history("a", 3.0)
    assert caught.value.code == 400 and "'a' not found" in caught.value.message and "input" in caught.value.message
    off = ResponseStore(max_entries=0)
    off.put("z", [], 0.0)
    assert len(off) == 0


def test_config_keys() -> None:
    from gateway import config

    settings = config.parse({"responses": {"store_entries": 0, "store_ttl": 60}})
    assert settings.responses.store_entries == 0 and settings.responses.store_ttl == 60.0
    assert config.Settings().responses.store_entries == 1000
    assert config.parse({"responses": {"store_max_bytes": 1024}}).responses.store_max_bytes == 1024
    with pytest.raises(config.ConfigError, match="store_ttl"):
        config.parse({"responses": {"store_ttl": -1}})


def test_codex_rate_limit_message_says_when_to_retry() -> None:
    from gateway.web.responses_routes import codex_message

    assert codex_message(GatewayError(429, "Quota gone.", headers={"Retry-After": "12"})) == "Quota gone. Please try again in 12s."
    assert codex_message(GatewayError(503, "Down.", headers={"Retry-After": "3"})) == "Down."
    assert codex_message(GatewayError(429, "Slow down, try again in 2s.", headers={"Retry-After": "2"})) == "Slow down, try again in 2s."


GROUNDING = {"webSearchQueries": ["tide times"],
             "groundingChunks": [{"web": {"uri": "https://a.test/x", "title": "a.test"}}, {"web": {"uri": "https://b.test/y"}}],
             "groundingSupports": [{"segment": {"startIndex": 4, "endIndex": 9, "text": "tides"}, "groundingChunkIndices": [0]}]}


def test_grounded_answer_has_citations_and_a_search_item() -> None:
    _, ctx = gemini({"input": "x", "tools": [{"type": "web_search"}]})
    doc = document({"text": "Die tides are high"})
    doc["candidates"][0]["groundingMetadata"] = GROUNDING
    answer, _ = responses_response.response(doc, ctx, SignatureMemory(), 0.0)
    message, search = answer["output"]
    assert message["content"][0]["annotations"] == [
        {"type": "url_citation", "url": "https://a.test/x", "title": "a.test", "start_index": 4, "end_index": 9},
        {"type": "url_citation", "url": "https://b.test/y", "title": "https://b.test/y", "start_index": 0, "end_index": 18}]
    assert search["type"] == "web_search_call" and search["action"]["query"] == "tide times"
    stream = ResponsesStream(ctx, SignatureMemory(), 0.0)
    events = parse(stream.response(doc) + stream.end())
    types = [e["type"] for e in events]
    assert types.count("response.output_text.annotation.added") == 2
    assert types.index("response.output_text.annotation.added") < types.index("response.content_part.done")
    assert [i["type"] for i in events[-1]["response"]["output"]] == ["message", "web_search_call"]


def test_citation_offsets_are_characters_not_bytes() -> None:
    metadata = {"groundingChunks": [{"web": {"uri": "u", "title": "t"}}],
                "groundingSupports": [{"segment": {"startIndex": 3, "endIndex": 7}, "groundingChunkIndices": [0]}]}
    assert responses_response.url_citations(metadata, "é abc")[0]["start_index"] == 2


def test_store_counts_bytes_of_new_items_only_and_evicts_by_size() -> None:
    store = ResponseStore(max_entries=10, ttl=100.0, max_bytes=300)
    first = [{"text": "a" * 100}]
    store.put("r1", first, 0.0)
    assert 100 < store.bytes < 130
    store.put("r2", first + [{"text": "b" * 100}], 1.0, shared=1)  # continues r1: only the new item counts
    assert store.bytes < 260 and store.get("r1", 1.0) is not None
    store.put("r3", [{"text": "c" * 100}], 2.0)  # over 300 bytes in all: the oldest goes
    assert store.get("r1", 2.0) is None and store.get("r3", 2.0) is not None and store.bytes <= 300
    store.put("huge", [{"text": "x" * 1000}], 3.0)
    assert store.get("huge", 3.0) is None and store.get("r3", 3.0) is not None
