"""Gemini answers and gateway errors -> Anthropic Messages shapes. Pure."""

from __future__ import annotations

import re
from typing import Any

from gateway.compat import anthropic_search
from gateway.compat.anthropic_request import AnthropicContext
from gateway.compat.common import call_args, candidates_of, finish_category, new_id, parts_of, prompt_blocked, usage_numbers
from gateway.compat.signatures import SignatureMemory
from gateway.protocol.errors import GatewayError

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    529: "overloaded_error",
}
_TOOL_ID = re.compile(r"[a-zA-Z0-9_-]+")
_OVERFLOW = re.compile(
    r"input token count \(?(\d+)\)? exceeds the maximum number of tokens allowed \(?(\d+)\)?"
    r"|prompt is too long|exceeds the maximum number of tokens|context length|too many tokens",
    re.IGNORECASE,
)


def stop_reason(reason: str | None, called: bool) -> str:
    """``tool_use``, ``max_tokens``, ``refusal`` or ``end_turn``."""
    if called:
        return "tool_use"
    return {"length": "max_tokens", "filtered": "refusal"}.get(finish_category(reason), "end_turn")


def usage(metadata: Any) -> dict[str, Any]:
    numbers = usage_numbers(metadata)
    return {
        "input_tokens": max(0, numbers["prompt"] - numbers["cached"]),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": numbers["cached"],
        "output_tokens": numbers["candidates"] + numbers["thoughts"],
    }


def tool_id(call: dict[str, Any]) -> str:
    """Upstream's call id when Anthropic would accept it (``^[a-zA-Z0-9_-]+$``), else a new ``toolu_`` id."""
    given = call.get("id")
    if isinstance(given, str) and _TOOL_ID.fullmatch(given):
        return given
    return new_id("toolu_")


def next_signature(parts: list[dict[str, Any]], start: int) -> str:
    """The signature for a thinking block ending before ``parts[start]``: the next part's, if any."""
    if start < len(parts):
        value = parts[start].get("thoughtSignature")
        if isinstance(value, str):
            return value
    return ""


def content_blocks(parts: list[dict[str, Any]], ctx: AnthropicContext, memory: SignatureMemory, now: float) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        signature = part.get("thoughtSignature") if isinstance(part.get("thoughtSignature"), str) else ""
        if part.get("thought") and isinstance(part.get("text"), str):
            if blocks and blocks[-1]["type"] == "thinking" and not blocks[-1]["signature"]:
                blocks[-1]["thinking"] += part["text"]
                blocks[-1]["signature"] = signature
            else:
                blocks.append({"type": "thinking", "thinking": part["text"], "signature": signature})
            continue
        if blocks and blocks[-1]["type"] == "thinking" and not blocks[-1]["signature"] and signature:
            blocks[-1]["signature"] = signature
        if "functionCall" in part:
            call = part["functionCall"] if isinstance(part["functionCall"], dict) else {}
            block_id = tool_id(call)
            if signature:
                memory.remember(signature, ctx.upstream_model, now, block_id)
            name = call.get("name") if isinstance(call.get("name"), str) else ""
            blocks.append({"type": "tool_use", "id": block_id, "name": ctx.names.client(name), "input": call_args(call)})
        elif isinstance(part.get("text"), str):
            if part["text"]:
                if blocks and blocks[-1]["type"] == "text":
                    blocks[-1]["text"] += part["text"]
                else:
                    blocks.append({"type": "text", "text": part["text"]})
        elif isinstance(part.get("inlineData"), dict):
            blob = part["inlineData"]
            blocks.append({"type": "text", "text": f"![image](data:{blob.get('mimeType', 'image/png')};base64,{blob.get('data', '')})"})
    for block in blocks:
        if block["type"] == "thinking" and block["signature"]:
            memory.remember(block["signature"], ctx.upstream_model, now)
            if ctx.omit_thinking:
                memory.remember_thought(block["signature"], block["thinking"], now)
        if block["type"] == "thinking" and ctx.omit_thinking:
            block["thinking"] = ""  # display "omitted": the signature stays, the text comes back from memory
    return blocks


def with_search(blocks: list[dict[str, Any]], response: Any, ctx: AnthropicContext, numbers: dict[str, Any]) -> list[dict[str, Any]]:
    """Blocks with the web search's ``server_tool_use`` + result before the answer and citations on its text."""
    if ctx.web_search is None:
        return blocks
    grounding = anthropic_search.grounding_of(response)
    numbers["server_tool_use"] = {"web_search_requests": anthropic_search.searches(grounding)}
    if grounding is None:
        return blocks
    name = ctx.web_search.get("name") if isinstance(ctx.web_search.get("name"), str) else "web_search"
    cites = anthropic_search.citations(grounding)
    first_text = next((b for b in blocks if b["type"] == "text"), None)
    if first_text is not None and cites:
        first_text["citations"] = cites
    at = next((i for i, b in enumerate(blocks) if b["type"] != "thinking"), len(blocks))
    return blocks[:at] + anthropic_search.search_blocks(grounding, name) + blocks[at:]


def message(response: Any, ctx: AnthropicContext, memory: SignatureMemory, now: float) -> dict[str, Any]:
    """A whole ``message`` for one unwrapped GenerateContentResponse (first candidate)."""
    candidates = candidates_of(response)
    candidate = candidates[0] if candidates else {}
    blocks = content_blocks(parts_of(candidate), ctx, memory, now)
    called = any(b["type"] == "tool_use" for b in blocks)
    reason = stop_reason(candidate.get("finishReason"), called)
    if not candidates and prompt_blocked(response):
        reason = "refusal"
    numbers = usage(response.get("usageMetadata") if isinstance(response, dict) else None)
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": ctx.requested_model,
        "content": with_search(blocks, response, ctx, numbers),
        "stop_reason": reason,
        "stop_sequence": None,
        "usage": numbers,
    }


def shaped_error(code: int, message: str) -> tuple[int, dict[str, Any]]:
    """The HTTP status and ``{"type":"error","error":{type,message}}`` Anthropic clients expect.

    An upstream 403 becomes 503 (Claude Code drops to its login screen on a
    403); a context overflow says "prompt is too long" (Claude Code compacts
    only on that text).
    """
    if code == 403:
        code = 503
        message = f"The gateway's upstream account was refused ({message}); retry shortly."
    if code == 400:
        match = _OVERFLOW.search(message)
        if match:
            if match.group(1):
                message = f"prompt is too long: {match.group(1)} tokens > {match.group(2)} maximum"
            elif "prompt is too long" not in message.lower():
                message = f"prompt is too long: {message}"
    kind = ERROR_TYPES.get(code) or ("api_error" if code >= 500 else "invalid_request_error")
    return code, {"type": "error", "error": {"type": kind, "message": message}}


def error_from(error: GatewayError) -> tuple[int, dict[str, Any], dict[str, str]]:
    code, body = shaped_error(error.code, error.message)
    return code, body, dict(error.headers)
