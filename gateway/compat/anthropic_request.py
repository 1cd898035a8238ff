"""Anthropic Messages request -> Gemini ``GenerateContentRequest``. Pure.

Also builds the body for ``/v1/messages/count_tokens``: the same translation,
with thinking kept as plain text so it is counted whatever its signature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from gateway.compat.common import (
    EFFORT_BUDGETS,
    bad_request,
    check_base64,
    fit_for_model,
    is_gemini3,
    repair_history,
    session_key,
    thinking_for_budget,
    thinking_level,
)
from gateway.compat.names import NameMap
from gateway.compat.schema import clean_schema, parameters_schema
from gateway.compat.signatures import SignatureMemory, call_signature, thinking_signature

BILLING_PREFIX = "x-anthropic-billing-header:"
TOOL_MODES = {"auto": "AUTO", "any": "ANY", "none": "NONE"}
#: How a ``system`` message inside ``messages`` (after the conversation began) reaches the model:
#: in place, as user text in Claude Code's own reminder tags (order matters: it applies from there on).
REMINDER = "<system-reminder>\n{}\n</system-reminder>"
#: Top-level fields the Messages API defines; others are accepted and ignored (logged once).
KNOWN_FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature", "top_p", "top_k",
    "metadata", "tools", "tool_choice", "thinking", "output_config", "context_management", "speed", "diagnostics",
    "service_tier", "container", "mcp_servers", "betas", "inference_geo",
})
#: Fields read and deliberately dropped: Gemini has no equivalent (COMPAT.md, "What current Claude Code sends").
DROPPED_FIELDS = ("context_management", "speed", "diagnostics", "service_tier", "container", "mcp_servers", "betas",
                  "inference_geo")


@dataclass
class AnthropicContext:
    requested_model: str
    upstream_model: str
    names: NameMap = field(default_factory=NameMap)
    stream: bool = False
    #: ``thinking.display == "omitted"``: thinking blocks carry empty text and their real signature.
    omit_thinking: bool = False
    #: The ``web_search_*`` server tool when the request carries one (answered from Google Search grounding).
    web_search: dict[str, Any] | None = None


def unknown_fields(body: Any) -> list[str]:
    """Top-level names the Messages API does not define (accepted, ignored)."""
    return sorted(k for k in body if isinstance(k, str) and k not in KNOWN_FIELDS) if isinstance(body, dict) else []


def web_search_tool(body: Any) -> dict[str, Any] | None:
    """The first ``web_search_*`` server tool of a Messages body, or None."""
    tools = body.get("tools") if isinstance(body, dict) else None
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict) and isinstance(tool.get("type"), str) and tool["type"].startswith("web_search"):
            return tool
    return None


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        for i, block in enumerate(content):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise bad_request(f"{where}.content.{i}: each content block must be an object with a type.")
        return content
    raise bad_request(f"{where}.content: must be a string or an array of content blocks.")


def _source(block: dict[str, Any], where: str, images: Mapping[str, dict[str, str]]) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise bad_request(f"{where}.source: required.")
    kind = source.get("type")
    if kind == "base64":
        mime = source.get("media_type")
        if not isinstance(mime, str) or not mime:
            raise bad_request(f"{where}.source.media_type: required.")
        return {"inlineData": {"mimeType": mime, "data": check_base64(source.get("data"), f"{where}.source.data")}}
    if kind == "url":
        url = source.get("url")
        if not isinstance(url, str) or url.strip() not in images:
            raise bad_request(f"{where}.source.url: the file at this URL could not be fetched.")
        return {"inlineData": dict(images[url.strip()])}
    if kind == "text" and block.get("type") == "document":
        data = source.get("data")
        return {"text": data if isinstance(data, str) else ""}
    if kind == "content" and block.get("type") == "document":
        inner = source.get("content")
        texts = [b.get("text", "") for b in _blocks(inner, where) if b.get("type") == "text"] if inner is not None else []
        return {"text": "\n".join(t for t in texts if isinstance(t, str))}
    raise bad_request(f"{where}.source.type: {kind!r} is not supported (use base64 or url).")


def remote_urls(body: Any) -> list[str]:
    """Every ``source.url`` of image/document blocks (also inside tool results), in order, without repeats."""
    urls: list[str] = []

    def visit(blocks: Any) -> None:
        for block in blocks if isinstance(blocks, list) else []:
            if not isinstance(block, dict):
                continue
            source = block.get("source")
            if block.get("type") in ("image", "document") and isinstance(source, dict) and source.get("type") == "url":
                url = source.get("url")
                if isinstance(url, str) and url.strip() and url.strip() not in urls:
                    urls.append(url.strip())
            if block.get("type") == "tool_result":
                visit(block.get("content"))

    messages = body.get("messages") if isinstance(body, dict) else None
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, dict):
            visit(message.get("content"))
    return urls


def _result_payload(block: dict[str, Any], where: str, images: Mapping[str, dict[str, str]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A tool_result's ``response`` object and the media parts it carried."""
    content = block.get("content")
    texts: list[str] = []
    media: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for j, inner in enumerate(_blocks(content, where)):
            kind = inner.get("type")
            if kind == "text" and isinstance(inner.get("text"), str):
                texts.append(inner["text"])
            elif kind in ("image", "document"):
                part = _source(inner, f"{where}.content.{j}", images)
                (texts.append(part["text"]) if "text" in part else media.append(part))
    text = "\n".join(texts)
    key = "error" if block.get("is_error") is True else "output"
    return {key: text}, media


def _system_parts(system: Any) -> list[dict[str, Any]]:
    if system is None:
        return []
    if isinstance(system, str):
        text = system
        return [] if not text or text.startswith(BILLING_PREFIX) else [{"text": text}]
    if not isinstance(system, list):
        raise bad_request("system: must be a string or an array of text blocks.")
    parts = []
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise bad_request(f"system.{i}: only text blocks are accepted.")
        text = block["text"]
        if text and not text.startswith(BILLING_PREFIX):
            parts.append({"text": text})
    return parts


def _system_message_text(message: dict[str, Any], where: str) -> str:
    """The text of a ``{role: "system"}`` message (string or text blocks; billing header dropped)."""
    parts = _system_parts(message.get("content")) if message.get("content") is not None else []
    return "\n\n".join(p["text"] for p in parts)


def _thinking_config(body: dict[str, Any], model: str) -> dict[str, Any] | None:
    thinking = body.get("thinking")
    if thinking is None:
        return None
    if not isinstance(thinking, dict):
        raise bad_request("thinking: must be an object.")
    kind = thinking.get("type")
    if kind == "disabled":
        return None
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise bad_request("thinking.budget_tokens: must be a positive integer.")
        return thinking_for_budget(model, budget)
    if kind == "adaptive":
        config = body.get("output_config")
        effort = config.get("effort") if isinstance(config, dict) else None
        effort = effort if isinstance(effort, str) and effort in EFFORT_BUDGETS else "high"
        if is_gemini3(model):
            return {"includeThoughts": True, "thinkingLevel": thinking_level(model, effort)}
        return {"includeThoughts": True, "thinkingBudget": max(1024, EFFORT_BUDGETS[effort])}
    raise bad_request("thinking.type: must be enabled, adaptive or disabled.")


def _tools(body: dict[str, Any], names: NameMap) -> list[dict[str, Any]]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise bad_request("tools: must be an array.")
    declarations = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise bad_request(f"tools.{i}: must be an object.")
        if tool.get("type") not in (None, "custom") and "input_schema" not in tool:
            continue  # server tools (web search, code execution …) have no Gemini declaration
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise bad_request(f"tools.{i}.name: required.")
        declaration: dict[str, Any] = {"name": names.safe(name)}
        if isinstance(tool.get("description"), str) and tool["description"]:
            declaration["description"] = tool["description"]
        declaration["parameters"] = parameters_schema(tool.get("input_schema"))
        declarations.append(declaration)
    return declarations


def _tool_config(body: dict[str, Any], names: NameMap) -> dict[str, Any] | None:
    choice = body.get("tool_choice")
    if choice is None:
        return None
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "none", "tool"):
        raise bad_request("tool_choice.type: must be auto, any, none or tool.")
    if choice["type"] == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise bad_request("tool_choice.name: required when type is tool.")
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [names.safe(name)]}}
    return {"functionCallingConfig": {"mode": TOOL_MODES[choice["type"]]}}


def _generation_config(body: dict[str, Any], model: str, *, counting: bool) -> dict[str, Any]:
    config: dict[str, Any] = {}
    limit = body.get("max_tokens")
    if limit is not None and not counting:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise bad_request("max_tokens: must be a positive integer.")
        config["maxOutputTokens"] = limit
    for key, name in (("temperature", "temperature"), ("top_p", "topP")):
        value = body.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad_request(f"{key}: must be a number.")
            config[name] = value
    top_k = body.get("top_k")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int):
            raise bad_request("top_k: must be an integer.")
        config["topK"] = top_k
    stops = body.get("stop_sequences")
    if isinstance(stops, list) and stops:
        config["stopSequences"] = [s for s in stops if isinstance(s, str) and s][:5]
    thinking = _thinking_config(body, model)
    if thinking:
        config["thinkingConfig"] = thinking
    output = body.get("output_config")
    fmt = output.get("format") if isinstance(output, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and not counting:
        # Structured outputs (the Vercel AI SDK, the Agent SDK): Gemini's JSON mode with the cleaned schema.
        config["responseMimeType"] = "application/json"
        if isinstance(fmt.get("schema"), dict):
            config["responseSchema"] = clean_schema(fmt["schema"])
    return config


def to_gemini(
    body: Any,
    upstream_model: str,
    *,
    images: Mapping[str, dict[str, str]] | None = None,
    memory: SignatureMemory | None = None,
    now: float = 0.0,
    counting: bool = False,
) -> tuple[dict[str, Any], AnthropicContext]:
    """The Gemini request for a Messages body (``counting``: for count_tokens), and its context."""
    images = images or {}
    memory = memory if memory is not None else SignatureMemory()
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("model: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise bad_request("messages: Field required (an array of messages)")
    if not counting and body.get("max_tokens") is None:
        raise bad_request("max_tokens: Field required")
    names = NameMap()
    thinking = body.get("thinking")
    ctx = AnthropicContext(model, upstream_model, names, stream=body.get("stream") is True and not counting,
                           omit_thinking=isinstance(thinking, dict) and thinking.get("display") == "omitted",
                           web_search=web_search_tool(body))
    declarations = _tools(body, names)
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    leading_system: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if isinstance(message, dict) and message.get("role") == "system":
            # Leading system messages join the system instruction; later ones stay where they are.
            text = _system_message_text(message, where)
            if text and not any(turn["parts"] for turn in contents):
                leading_system.append({"text": text})
            elif text:
                contents.append({"role": "user", "parts": [{"text": REMINDER.format(text)}]})
            continue
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise bad_request(f"{where}.role: must be user, assistant or system.")
        blocks = _blocks(message.get("content"), where)
        if message["role"] == "assistant":
            contents.append({"role": "model", "parts": _model_parts(blocks, where, names, call_names,
                                                                     upstream_model, memory, now, counting)})
        else:
            contents.append({"role": "user", "parts": _user_parts(blocks, where, names, call_names, images)})
    if not any(turn["parts"] for turn in contents):
        if counting:
            contents = [{"role": "user", "parts": [{"text": " "}]}]
        else:
            raise bad_request("messages: at least one message with content is required.")
    request: dict[str, Any] = {"contents": repair_history(contents, upstream_model)}
    system = _system_parts(body.get("system")) + leading_system
    if system:
        request["systemInstruction"] = {"role": "user", "parts": system}
    tool_config = _tool_config(body, names)  # checked even without tools
    if declarations:
        # Search grounding cannot sit beside functions upstream: the functions win (docs/clients.md).
        request["tools"] = [{"functionDeclarations": declarations}]
        if tool_config:
            request["toolConfig"] = tool_config
    elif ctx.web_search is not None and not counting:
        request["tools"] = [{"googleSearch": {}}]
    config = _generation_config(body, upstream_model, counting=counting)
    if config:
        request["generationConfig"] = config
    metadata = body.get("metadata")
    user = session_key(metadata.get("user_id")) if isinstance(metadata, dict) else None
    if user:
        request["sessionId"] = user
    if counting:
        return request, ctx
    return fit_for_model(request, upstream_model), ctx


def _user_parts(
    blocks: list[dict[str, Any]],
    where: str,
    names: NameMap,
    call_names: dict[str, str],
    images: Mapping[str, dict[str, str]],
) -> list[dict[str, Any]]:
    responses: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content.{j}"
        kind = block["type"]
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise bad_request(f"{at}.text: must be a string.")
            if text:
                others.append({"text": text})
        elif kind in ("image", "document"):
            others.append(_source(block, at, images))
        elif kind == "tool_result":
            call_id = block.get("tool_use_id")
            if not isinstance(call_id, str) or not call_id:
                raise bad_request(f"{at}.tool_use_id: required.")
            payload, media = _result_payload(block, at, images)
            name = call_names.get(call_id, "tool")
            responses.append({"functionResponse": {"id": call_id, "name": names.safe(name), "response": payload}})
            others.extend(media)
        elif kind in ("thinking", "redacted_thinking", "tool_use"):
            raise bad_request(f"{at}: {kind} blocks belong in assistant messages.")
        # other block types (search results, containers …) carry nothing Gemini can read
    return responses + others


def _model_parts(
    blocks: list[dict[str, Any]],
    where: str,
    names: NameMap,
    call_names: dict[str, str],
    model: str,
    memory: SignatureMemory,
    now: float,
    counting: bool,
) -> list[dict[str, Any]]:
    thoughts: list[dict[str, Any]] = []
    texts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content.{j}"
        kind = block["type"]
        if kind == "thinking":
            text = block.get("thinking") if isinstance(block.get("thinking"), str) else ""
            if counting:
                if text:
                    thoughts.append({"text": text})
                continue
            signature = thinking_signature(memory, block.get("signature"), model, now)
            if signature:
                text = text or memory.thought_for(signature, now) or ""  # display "omitted" hid it
                thoughts.append({"text": text, "thought": True, "thoughtSignature": signature})
        elif kind == "redacted_thinking":
            continue
        elif kind == "text":
            text = block.get("text")
            if isinstance(text, str) and text:
                texts.append({"text": text})
        elif kind == "tool_use":
            call_id = block.get("id")
            name = block.get("name")
            if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
                raise bad_request(f"{at}: tool_use needs an id and a name.")
            call_names[call_id] = name
            args = block.get("input")
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except ValueError:
                    args = {"input": args}
            part: dict[str, Any] = {"functionCall": {"id": call_id, "name": names.safe(name),
                                                     "args": args if isinstance(args, dict) else {}}}
            if not counting:
                restored = call_signature(memory, call_id, None, model, now)
                if restored:
                    part["thoughtSignature"] = restored
            calls.append(part)
    return thoughts + texts + calls


def count_request(body: Any, upstream_model: str, *, images: Mapping[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """The public ``{"generateContentRequest": …}`` to count for a count_tokens body.

    Everything the request carries is kept: system, tools, tool calls and
    results, and thinking (as plain text, counted whatever its signature).
    """
    request, _ = to_gemini(body, upstream_model, images=images, counting=True)
    return {"generateContentRequest": request}
