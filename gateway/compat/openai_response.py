"""Gemini answers and gateway errors -> OpenAI Chat Completions shapes. Pure."""

from __future__ import annotations

import re
from typing import Any

from gateway.compat.common import (
    call_args,
    candidates_of,
    dumps,
    finish_category,
    new_id,
    parts_of,
    prompt_blocked,
    usage_numbers,
)
from gateway.compat.openai_request import OpenAIContext
from gateway.compat.signatures import SignatureMemory
from gateway.protocol.errors import GatewayError

ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    405: ("invalid_request_error", None),
    408: ("timeout_error", None),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}
_OVERFLOW = re.compile(r"input token count|exceeds the maximum number of tokens|prompt is too long|context length",
                       re.IGNORECASE)


def finish_reason(reason: str | None, called: bool) -> str:
    """``stop | length | tool_calls | content_filter`` — a function call always wins."""
    if called:
        return "tool_calls"
    return {"length": "length", "filtered": "content_filter"}.get(finish_category(reason), "stop")


def usage(metadata: Any) -> dict[str, Any]:
    numbers = usage_numbers(metadata)
    completion = numbers["candidates"] + numbers["thoughts"]
    return {
        "prompt_tokens": numbers["prompt"],
        "completion_tokens": completion,
        "total_tokens": numbers["prompt"] + completion,
        "prompt_tokens_details": {"cached_tokens": numbers["cached"]},
        "completion_tokens_details": {"reasoning_tokens": numbers["thoughts"]},
    }


def tool_call(part: dict[str, Any], ctx: OpenAIContext, memory: SignatureMemory, now: float) -> dict[str, Any]:
    """A Gemini ``functionCall`` part as an OpenAI tool call; its signature kept and remembered."""
    call = part["functionCall"] if isinstance(part.get("functionCall"), dict) else {}
    call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else new_id("call_")
    name = call.get("name") if isinstance(call.get("name"), str) else ""
    out: dict[str, Any] = {
        "id": call_id,
        "type": "function",
        "function": {"name": ctx.names.client(name), "arguments": dumps(call_args(call))},
    }
    signature = part.get("thoughtSignature")
    if isinstance(signature, str) and signature:
        memory.remember(signature, ctx.upstream_model, now, call_id)
        out["extra_content"] = {"google": {"thought_signature": signature}}
    return out


def message_of(parts: list[dict[str, Any]], ctx: OpenAIContext, memory: SignatureMemory, now: float) -> dict[str, Any]:
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    signature: str | None = None
    for part in parts:
        if "functionCall" in part:
            calls.append(tool_call(part, ctx, memory, now))
            continue
        if isinstance(part.get("thoughtSignature"), str) and part["thoughtSignature"] and signature is None:
            signature = part["thoughtSignature"]
        text = part.get("text")
        if isinstance(text, str):
            (thoughts if part.get("thought") else texts).append(text)
        elif isinstance(part.get("inlineData"), dict):
            blob = part["inlineData"]
            texts.append(f"![image](data:{blob.get('mimeType', 'image/png')};base64,{blob.get('data', '')})")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if signature:
        memory.remember(signature, ctx.upstream_model, now)
        message["extra_content"] = {"google": {"thought_signature": signature}}
    return message


def completion(
    response: Any,
    ctx: OpenAIContext,
    memory: SignatureMemory,
    now: float,
    completion_id: str | None = None,
) -> dict[str, Any]:
    """A whole ``chat.completion`` for one unwrapped GenerateContentResponse."""
    choices = []
    blocked = prompt_blocked(response)
    for position, candidate in enumerate(candidates_of(response)):
        index = candidate.get("index") if isinstance(candidate.get("index"), int) else position
        parts = parts_of(candidate)
        message = message_of(parts, ctx, memory, now)
        choices.append({
            "index": index,
            "message": message,
            "finish_reason": finish_reason(candidate.get("finishReason"), bool(message.get("tool_calls"))),
            "logprobs": None,
        })
    if not choices:
        choices.append({
            "index": 0,
            "message": {"role": "assistant", "content": "" if not blocked else None,
                        **({"refusal": f"The prompt was blocked ({blocked})."} if blocked else {})},
            "finish_reason": "content_filter" if blocked else "stop",
            "logprobs": None,
        })
    response_id = response.get("responseId") if isinstance(response, dict) else None
    return {
        "id": completion_id or ("chatcmpl-" + response_id if isinstance(response_id, str) and response_id else new_id("chatcmpl-")),
        "object": "chat.completion",
        "created": int(now),
        "model": ctx.requested_model,
        "choices": sorted(choices, key=lambda c: c["index"]),
        "usage": usage(response.get("usageMetadata") if isinstance(response, dict) else None),
        "system_fingerprint": None,
    }


def error_type(code: int) -> tuple[str, str | None]:
    if code in ERROR_TYPES:
        return ERROR_TYPES[code]
    if code >= 500:
        return ("server_error", None)
    return ("invalid_request_error", None)


def error_dict(code: int, message: str) -> dict[str, Any]:
    kind, error_code = error_type(code)
    if code == 400 and _OVERFLOW.search(message):
        error_code = "context_length_exceeded"
    return {"error": {"message": message, "type": kind, "param": None, "code": error_code}}


def error_from(error: GatewayError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """HTTP status, OpenAI error body and headers (``Retry-After`` kept) for a gateway error."""
    return error.code, error_dict(error.code, error.message), dict(error.headers)

