"""What current Claude Code (2.1.x) and the Agent SDK send to /v1/messages, over loopback against the emulator.

System messages inside ``messages``, adaptive thinking with ``display:
"omitted"``, ``output_config.effort``, fields and betas we do not use, the
thinking rules for Claude, and the ``web_search`` server tool answered from
Google Search grounding (whole and streamed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest_twisted
import treq

from tests.integration.harness import accounts, body_json, start_stack
from tests.integration.test_compat_anthropic import MESSAGES, TOOL, named_events

HEADERS = {b"anthropic-version": [b"2023-06-01"],
           b"anthropic-beta": [b"claude-code-20250219,mid-conversation-system-2026-04-07,context-management-2025-06-27,"
                               b"effort-2025-11-24,fast-mode-2026-02-01,some-future-beta-2027-01-01"]}
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 8, "allowed_domains": None}


def claude_code_body(**extra: Any) -> dict[str, Any]:
    """A request shaped like Claude Code 2.1.x's main loop."""
    return {
        "model": "claude-opus-4-8",
        "max_tokens": 32000,
        "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.abc; cc_entrypoint=cli;"},
                   {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.",
                    "cache_control": {"type": "ephemeral", "ttl": "1h", "scope": "global"}}],
        "messages": [
            {"role": "system", "content": "Leading system message."},
            {"role": "user", "content": [{"type": "text", "text": "first question"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "first answer"}]},
            {"role": "system", "content": [{"type": "text", "text": "The user switched to plan mode."}]},
            {"role": "user", "content": "second question"},
        ],
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": "xhigh"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "speed": "fast",
        "diagnostics": {"session": "x"},
        "some_future_field": {"anything": True},
        "metadata": {"user_id": "user_1_account_2_session_3"},
        **extra,
    }


@pytest_twisted.ensureDeferred
async def test_current_claude_code_request_is_accepted(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        response = await stack.post(MESSAGES, claude_code_body(), headers=dict(HEADERS))
        answer = await body_json(response)
        assert response.code == 200, answer
        thinking = answer["content"][0]
        assert thinking["type"] == "thinking" and thinking["thinking"] == "" and thinking["signature"]
        assert answer["content"][1]["text"] == "Echo: second question" and answer["model"] == "claude-opus-4-8"
        envelope = stack.emulator.state.requests("generateContent")[-1]["body"]
        sent = envelope["request"]
        assert envelope["model"] == "claude-opus-4-6-thinking"
        assert sent["systemInstruction"]["parts"] == [
            {"text": "You are Claude Code, Anthropic's official CLI for Claude."}, {"text": "Leading system message."}]
        assert sent["contents"][2] == {"role": "user", "parts": [
            {"text": "<system-reminder>\nThe user switched to plan mode.\n</system-reminder>"}, {"text": "second question"}]}
        assert sent["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 24576  # effort xhigh
        assert not {"context_management", "speed", "diagnostics", "some_future_field"} & set(sent)

        # the omitted thinking comes back with its signature: upstream gets the real text again
        body = claude_code_body()
        body["messages"] += [{"role": "assistant", "content": answer["content"]}, {"role": "user", "content": "third"}]
        again = await stack.post(MESSAGES, body, headers=dict(HEADERS))
        assert again.code == 200, await body_json(again)
        turn = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]["contents"][-2]
        assert turn["parts"][0] == {"text": "Thinking about: second question", "thought": True,
                                    "thoughtSignature": thinking["signature"]}


@pytest_twisted.ensureDeferred
async def test_omitted_thinking_streams_only_the_signature(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        raw = await treq.content(await stack.post(MESSAGES, claude_code_body(stream=True), headers=dict(HEADERS)))
        events = named_events(raw)
        start = next(d for e, d in events if e == "content_block_start" and d["content_block"]["type"] == "thinking")
        deltas = [d["delta"] for e, d in events if e == "content_block_delta" and d["index"] == start["index"]]
        assert [d["type"] for d in deltas] == ["signature_delta"] and deltas[0]["signature"]


@pytest_twisted.ensureDeferred
async def test_claude_thinking_rules(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        body = {"model": "claude-sonnet-4-6", "max_tokens": 8192, "temperature": 0.2, "top_k": 5,
                "thinking": {"type": "enabled", "budget_tokens": 2048}, "tools": [TOOL],
                "tool_choice": {"type": "tool", "name": "get_weather"},
                "messages": [{"role": "user", "content": "weather please"}]}
        response = await stack.post(MESSAGES, body)
        assert response.code == 200, await body_json(response)
        sent = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]
        assert "temperature" not in sent["generationConfig"] and "topK" not in sent["generationConfig"]
        assert sent["toolConfig"]["functionCallingConfig"] == {"mode": "VALIDATED"}
        # without thinking the forced choice stays, and the emulator obeys it with valid arguments
        body.pop("thinking")
        answer = await body_json(await stack.post(MESSAGES, body))
        call = next(b for b in answer["content"] if b["type"] == "tool_use")
        assert call["name"] == "get_weather" and isinstance(call["input"]["city"], str) and call["input"]["city"]


def search_body(**extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-6", "max_tokens": 4096, "tools": [WEB_SEARCH],
            "messages": [{"role": "user", "content": "Perform a web search for the query: twisted release"}], **extra}


@pytest_twisted.ensureDeferred
async def test_web_search_is_google_search_grounding(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        response = await stack.post(MESSAGES, search_body())
        answer = await body_json(response)
        assert response.code == 200, answer
        envelope = stack.emulator.state.requests("generateContent")[-1]["body"]
        assert envelope["model"] == "gemini-3-flash" and envelope["request"]["tools"] == [{"googleSearch": {}}]
        use, result, text = answer["content"]
        assert use["type"] == "server_tool_use" and use["name"] == "web_search" and use["id"].startswith("srvtoolu_")
        assert use["input"]["query"].endswith("twisted release")
        assert result["type"] == "web_search_tool_result" and result["tool_use_id"] == use["id"]
        urls = [r["url"] for r in result["content"]]
        assert len(urls) == 2 and all(r["type"] == "web_search_result" and r["title"] for r in result["content"])
        assert text["type"] == "text" and {c["url"] for c in text["citations"]} == set(urls)
        assert all(c["type"] == "web_search_result_location" for c in text["citations"])
        assert answer["usage"]["server_tool_use"] == {"web_search_requests": 1} and answer["stop_reason"] == "end_turn"


@pytest_twisted.ensureDeferred
async def test_web_search_streamed(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        raw = await treq.content(await stack.post(MESSAGES, search_body(stream=True)))
        events = named_events(raw)
        starts = [d["content_block"] for e, d in events if e == "content_block_start"]
        assert [b["type"] for b in starts] == ["server_tool_use", "web_search_tool_result", "text"]
        assert len(starts[1]["content"]) == 2
        query = "".join(d["delta"]["partial_json"] for e, d in events if e == "content_block_delta" and d["index"] == 0)
        assert json.loads(query)["query"].endswith("twisted release")
        citations = [d["delta"]["citation"] for e, d in events if e == "content_block_delta" and d["delta"]["type"] == "citations_delta"]
        assert citations and all(c["url"].startswith("https://") for c in citations)
        assert events[-2][1]["usage"]["server_tool_use"] == {"web_search_requests": 1}
        assert events[-1][0] == "message_stop"


@pytest_twisted.ensureDeferred
async def test_web_search_beside_functions_keeps_the_functions(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        response = await stack.post(MESSAGES, search_body(model="gemini-3-flash", tools=[WEB_SEARCH, TOOL]))
        assert response.code == 200, await body_json(response)
        sent = stack.emulator.state.requests("generateContent")[-1]["body"]["request"]
        assert [list(t) for t in sent["tools"]] == [["functionDeclarations"]]
