"""Pure mappings for current Claude Code / Agent SDK requests and the web search answer shapes."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.compat import anthropic_search
from gateway.compat.anthropic_request import AnthropicContext, to_gemini, unknown_fields, web_search_tool
from gateway.compat.anthropic_response import message
from gateway.compat.anthropic_stream import AnthropicStream
from gateway.compat.common import claude_thinking_rules
from gateway.compat.signatures import SignatureMemory


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "claude-opus-4-8", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}], **extra}


def test_leading_system_messages_join_the_system_instruction_later_ones_stay_in_place() -> None:
    request, _ = to_gemini(body(system="Top.", messages=[
        {"role": "system", "content": "First."},
        {"role": "user", "content": "q1"},
        {"role": "system", "content": [{"type": "text", "text": "Mid."}]},
        {"role": "assistant", "content": "a1"},
        {"role": "system", "content": ""},
        {"role": "user", "content": "q2"},
    ]), "gemini-3-flash")
    assert request["systemInstruction"]["parts"] == [{"text": "Top."}, {"text": "First."}]
    assert request["contents"][0]["parts"] == [{"text": "q1"}, {"text": "<system-reminder>\nMid.\n</system-reminder>"}]
    assert request["contents"][2]["parts"] == [{"text": "q2"}]


def test_other_roles_are_still_refused() -> None:
    from gateway.protocol.errors import GatewayError

    with pytest.raises(GatewayError, match="must be user, assistant or system"):
        to_gemini(body(messages=[{"role": "tool", "content": "x"}]), "gemini-3-flash")


@pytest.mark.parametrize(("effort", "model", "expected"), [
    ("low", "claude-opus-4-6-thinking", {"includeThoughts": True, "thinkingBudget": 1024}),
    ("max", "claude-opus-4-6-thinking", {"includeThoughts": True, "thinkingBudget": 24576}),
    ("medium", "gemini-3-flash", {"includeThoughts": True, "thinkingLevel": "MEDIUM"}),
    (None, "gemini-3-flash", {"includeThoughts": True, "thinkingLevel": "HIGH"}),
])
def test_adaptive_thinking_follows_output_config_effort(effort: str | None, model: str, expected: dict[str, Any]) -> None:
    extra: dict[str, Any] = {"thinking": {"type": "adaptive", "display": "omitted"}, "max_tokens": 32000}
    if effort:
        extra["output_config"] = {"effort": effort}
    request, ctx = to_gemini(body(**extra), model)
    assert request["generationConfig"]["thinkingConfig"] == expected and ctx.omit_thinking


def test_unknown_fields_and_web_search_tool() -> None:
    given = body(context_management={}, speed="fast", diagnostics={}, brand_new=1, tools=[{"type": "web_search_20260209", "name": "web_search"}])
    assert unknown_fields(given) == ["brand_new"]
    assert web_search_tool(given)["type"] == "web_search_20260209"
    request, ctx = to_gemini(given, "gemini-3-flash")
    assert request["tools"] == [{"googleSearch": {}}] and ctx.web_search is not None


def test_claude_thinking_rules() -> None:
    request = {"generationConfig": {"temperature": 0.5, "topK": 3, "topP": 0.5, "thinkingConfig": {"thinkingBudget": 2048}},
               "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["x"]}}}
    claude_thinking_rules(request)
    assert request == {"generationConfig": {"thinkingConfig": {"thinkingBudget": 2048}},
                       "toolConfig": {"functionCallingConfig": {"mode": "VALIDATED"}}}
    untouched = {"generationConfig": {"temperature": 0.5}, "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}}
    claude_thinking_rules(untouched)
    assert untouched["generationConfig"] == {"temperature": 0.5} and untouched["toolConfig"]["functionCallingConfig"]["mode"] == "ANY"


GROUNDED = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Answer."}]}, "finishReason": "STOP",
                            "groundingMetadata": {
                                "webSearchQueries": ["q"],
                                "groundingChunks": [{"web": {"uri": "https://a.example/", "title": "a"}},
                                                    {"web": {"uri": "https://b.example/", "title": "b"}}],
                                "groundingSupports": [{"segment": {"text": "Answer."}, "groundingChunkIndices": [1, 0, 7]}]}}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}


def test_search_blocks_and_citations() -> None:
    metadata = anthropic_search.grounding_of(GROUNDED)
    use, result = anthropic_search.search_blocks(metadata)
    assert use["input"] == {"query": "q"} and result["tool_use_id"] == use["id"]
    assert [r["url"] for r in result["content"]] == ["https://a.example/", "https://b.example/"]
    assert [c["url"] for c in anthropic_search.citations(metadata)] == ["https://b.example/", "https://a.example/"]
    assert anthropic_search.searches(metadata) == 1 and anthropic_search.searches(None) == 0


def test_message_and_stream_carry_the_search() -> None:
    ctx = AnthropicContext("claude-sonnet-4-6", "gemini-3-flash", web_search={"name": "web_search"})
    answer = message(GROUNDED, ctx, SignatureMemory(), 0.0)
    assert [b["type"] for b in answer["content"]] == ["server_tool_use", "web_search_tool_result", "text"]
    assert answer["usage"]["server_tool_use"] == {"web_search_requests": 1}
    stream = AnthropicStream(ctx, SignatureMemory(), 0.0)
    assert stream.response({"candidates": [{"content": {"parts": [{"text": "Ans"}]}}]}) == b""
    raw = stream.response({"candidates": [{"content": {"parts": [{"text": "wer."}]}, "finishReason": "STOP",
                                           "groundingMetadata": GROUNDED["candidates"][0]["groundingMetadata"]}]})
    raw += stream.end()
    assert raw.count(b"event: content_block_start") == 3 and b"citations_delta" in raw and b'"text":"Answer."' in raw


def test_omitted_thinking_is_remembered_for_the_way_back() -> None:
    memory = SignatureMemory()
    ctx = AnthropicContext("claude-opus-4-8", "claude-opus-4-6-thinking", omit_thinking=True)
    answer = message({"candidates": [{"content": {"parts": [{"text": "deep", "thought": True}, {"text": "hi", "thoughtSignature": "c2ln"}]}}]},
                     ctx, memory, 0.0)
    assert answer["content"][0] == {"type": "thinking", "thinking": "", "signature": "c2ln"}
    request, _ = to_gemini(body(thinking={"type": "adaptive"}, messages=[
        {"role": "user", "content": "q"}, {"role": "assistant", "content": answer["content"]}, {"role": "user", "content": "q2"}]),
        "claude-opus-4-6-thinking", memory=memory)
    assert request["contents"][1]["parts"][0] == {"text": "deep", "thought": True, "thoughtSignature": "c2ln"}


def test_output_config_format_is_json_mode() -> None:
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": False,
              "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    request, _ = to_gemini(body(output_config={"effort": "low", "format": {"type": "json_schema", "schema": schema}}), "gemini-3-flash")
    config = request["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"] == {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
