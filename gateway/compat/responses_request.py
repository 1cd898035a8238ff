"""OpenAI Responses request (``POST /v1/responses``) -> Gemini ``GenerateContentRequest``. Pure.

What Codex CLI and the OpenAI SDKs send (COMPAT.md, "OpenAI Responses"):
``instructions`` and ``system``/``developer`` messages become the system
instruction; ``input`` items become turns (messages, ``function_call`` /
``function_call_output``, ``custom_tool_call`` / ``…_output``, ``reasoning``
items whose ``encrypted_content`` carries a Gemini thought signature);
flat ``function`` tools, ``custom`` tools (one string parameter ``input``)
and ``namespace`` tools (flattened to ``<ns>__<name>``) become function
declarations; ``web_search`` becomes Google Search grounding when no
function is declared (Cloud Code refuses both together). The generation
settings reuse the Chat door's mapping. History from ``previous_response_id``
is resolved by the caller and passed in as ``history`` (items).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from gateway.compat import openai_request
from gateway.compat.common import (
    bad_request,
    fit_for_model,
    repair_history,
    session_key,
)
from gateway.compat.names import NameMap
from gateway.compat.openai_parts import audio_part, file_part, image_part, text_part
from gateway.compat.schema import parameters_schema
from gateway.compat.signatures import SignatureMemory, call_signature, model_family

#: ``encrypted_content`` of the reasoning items the gateway writes: ``gw1:<family>:<thoughtSignature>``.
CARRIER_PREFIX = "gw1:"
#: Separator of a namespace tool's flattened name (``<namespace>__<name>``).
NAMESPACE_SEPARATOR = "__"
WEB_SEARCH_TOOLS = frozenset({"web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11"})
TOOL_MODES = {"none": "NONE", "auto": "AUTO", "required": "ANY"}
MESSAGE_ROLES = ("user", "assistant", "system", "developer")
#: Item types with nothing Gemini could use (hosted tool calls the gateway never made).
SKIPPED_ITEMS = frozenset({"web_search_call", "file_search_call", "computer_call", "computer_call_output",
                           "image_generation_call", "code_interpreter_call", "mcp_list_tools", "mcp_call",
                           "mcp_approval_request", "mcp_approval_response", "item_reference", "compaction",
                           "local_shell_call", "local_shell_call_output"})


@dataclass
class ResponsesContext:
    """What answering a Responses request needs to know about it."""

    requested_model: str
    upstream_model: str
    names: NameMap = field(default_factory=NameMap)
    stream: bool = False
    #: flattened client name -> (namespace, name) for namespace tools
    namespaces: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: client names of ``custom`` (free-form input) tools
    custom: set[str] = field(default_factory=set)
    #: ``include`` asked for ``reasoning.encrypted_content``
    encrypted: bool = False
    #: the request's fields echoed in the response object
    echo: dict[str, Any] = field(default_factory=dict)
    #: the conversation so far (previous items + this input) as items, for ``previous_response_id``
    items: list[dict[str, Any]] = field(default_factory=list)


# -- signature carrier -------------------------------------------------------------


def carry(signature: str, model: str) -> str:
    """``encrypted_content`` for a thought signature of ``model``: family-tagged, opaque to clients."""
    return f"{CARRIER_PREFIX}{model_family(model)}:{signature}"


def carried(content: Any) -> tuple[str, str] | None:
    """``(family, signature)`` from an ``encrypted_content`` the gateway wrote, else None."""
    if not isinstance(content, str) or not content.startswith(CARRIER_PREFIX):
        return None
    family, _, signature = content[len(CARRIER_PREFIX):].partition(":")
    return (family, signature) if family and signature else None


# -- content -------------------------------------------------------------------------


def _content_list(content: Any, where: str) -> list[Any]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    if isinstance(content, list):
        return content
    raise bad_request(f"{where}.content must be a string or an array of content parts.")


def _image_url(part: dict[str, Any]) -> str | None:
    value = part.get("image_url")
    if isinstance(value, dict):
        value = value.get("url")
    return value.strip() if isinstance(value, str) and value.strip() else None


def remote_image_urls(body: Any) -> list[str]:
    """http(s) image URLs in ``input`` (messages and tool outputs), for the web layer to fetch."""
    urls: list[str] = []
    items = body.get("input") if isinstance(body, dict) else None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        for key in ("content", "output"):
            parts = item.get(key)
            for part in parts if isinstance(parts, list) else []:
                if isinstance(part, dict) and part.get("type") == "input_image":
                    url = _image_url(part)
                    if url and url.lower().startswith(("http://", "https://")) and url not in urls:
                        urls.append(url)
    return urls


def _parts(content: Any, where: str, images: Mapping[str, dict[str, str]]) -> list[dict[str, Any]]:
    """Message (or tool output) content parts -> Gemini parts."""
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(_content_list(content, where)):
        at = f"{where}.content[{i}]"
        if isinstance(part, str):
            if part:
                parts.append({"text": part})
            continue
        if not isinstance(part, dict):
            raise bad_request(f"{at} must be an object.")
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            found = text_part(part, at)
            if found is not None:
                parts.append(found)
        elif kind == "refusal":
            text = part.get("refusal")
            if isinstance(text, str) and text:
                parts.append({"text": text})
        elif kind == "input_image":
            url = _image_url(part)
            if url is None:
                raise bad_request(f"{at}.image_url is required (uploaded file ids are not supported).")
            parts.append(image_part(url, at, "image_url", images))
        elif kind == "input_file":
            parts.append(file_part(part.get("file_data"), part.get("filename"), at, "file_data",
                                   "file ids and file URLs are not supported"))
        elif kind == "input_audio":
            parts.append(audio_part(part.get("input_audio") if isinstance(part.get("input_audio"), dict) else part, at))
        else:
            raise bad_request(f"{at}: content part type {kind!r} is not supported.")
    return parts


def _text(content: Any, where: str) -> str:
    return "".join(p["text"] for p in _parts(content, where, {}) if "text" in p)


def _arguments(raw: Any) -> dict[str, Any]:
    return openai_request._arguments(raw)


def _output(raw: Any, where: str, images: Mapping[str, dict[str, str]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A tool output -> (``functionResponse.response``, extra parts such as images)."""
    if raw is None:
        return {"output": ""}, []
    if isinstance(raw, str):
        return {"output": raw}, []
    if isinstance(raw, list):
        parts = _parts(raw, where, images)
        text = "".join(p["text"] for p in parts if "text" in p)
        return {"output": text}, [p for p in parts if "text" not in p]
    return {"output": json.dumps(raw, ensure_ascii=False)}, []


# -- tools -------------------------------------------------------------------------------


def _declaration(tool: dict[str, Any], client_name: str, names: NameMap, where: str) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": names.safe(client_name)}
    if isinstance(tool.get("description"), str) and tool["description"]:
        declaration["description"] = tool["description"]
    if tool.get("type") == "custom":
        fmt = tool.get("format") if isinstance(tool.get("format"), dict) else {}
        about = "The raw input for this tool, as free text."
        if fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
            about = (f"The raw input for this tool; it must follow this {fmt.get('syntax', 'lark')} grammar:\n"
                     + fmt["definition"])
        declaration["parameters"] = {"type": "object", "properties": {"input": {"type": "string", "description": about}},
                                     "required": ["input"]}
    else:
        declaration["parameters"] = parameters_schema(tool.get("parameters"))
    return declaration


def _tools(body: dict[str, Any], ctx: ResponsesContext) -> tuple[list[dict[str, Any]], bool]:
    """Function declarations, and whether a web search tool was asked for."""
    tools = body.get("tools")
    if tools is None:
        return [], False
    if not isinstance(tools, list):
        raise bad_request("tools must be an array.")
    declarations: list[dict[str, Any]] = []
    search = False

    def add(tool: Any, where: str, namespace: str | None) -> None:
        nonlocal search
        if not isinstance(tool, dict):
            raise bad_request(f"{where} must be an object.")
        kind = tool.get("type", "function")
        if kind in ("function", "custom"):
            name = tool.get("name")
            if not isinstance(name, str) or not name:
                raise bad_request(f"{where}.name is required.")
            client = f"{namespace}{NAMESPACE_SEPARATOR}{name}" if namespace else name
            if namespace:
                ctx.namespaces[client] = (namespace, name)
            if kind == "custom":
                ctx.custom.add(client)
            declarations.append(_declaration(tool, client, ctx.names, where))
        elif kind == "namespace" and namespace is None:
            inner = tool.get("tools")
            ns = tool.get("name")
            if not isinstance(ns, str) or not ns or not isinstance(inner, list):
                raise bad_request(f"{where}: a namespace tool needs a name and a tools array.")
            for j, sub in enumerate(inner):
                add(sub, f"{where}.tools[{j}]", ns)
        elif kind in WEB_SEARCH_TOOLS:
            search = True
        # other hosted tools (local_shell, file_search, computer_use, mcp, image_generation …) have no Gemini twin

    for i, tool in enumerate(tools):
        add(tool, f"tools[{i}]", None)
    return declarations, search


def _tool_config(body: dict[str, Any], ctx: ResponsesContext) -> dict[str, Any] | None:
    choice = body.get("tool_choice")
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in TOOL_MODES:
            raise bad_request(f"tool_choice {choice!r} is not one of none, auto, required.")
        return {"functionCallingConfig": {"mode": TOOL_MODES[choice]}}
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind in ("function", "custom") and isinstance(choice.get("name"), str) and choice["name"]:
            name = choice["name"]
            if isinstance(choice.get("namespace"), str) and choice["namespace"]:
                name = f"{choice['namespace']}{NAMESPACE_SEPARATOR}{name}"
            return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [ctx.names.safe(name)]}}
        if kind == "allowed_tools":
            mode = TOOL_MODES.get(str(choice.get("mode", "auto")), "AUTO")
            picked = [ctx.names.safe(t["name"]) for t in choice.get("tools") or []
                      if isinstance(t, dict) and isinstance(t.get("name"), str) and t["name"]]
            config: dict[str, Any] = {"mode": mode}
            if mode == "ANY" and picked:
                config["allowedFunctionNames"] = picked
            return {"functionCallingConfig": config}
        if kind in WEB_SEARCH_TOOLS or kind in ("file_search", "computer_use_preview", "image_generation", "mcp"):
            return None
    raise bad_request('tool_choice must be none, auto, required or {"type":"function","name":…}.')


# -- generation config ---------------------------------------------------------------------


def _generation_config(body: dict[str, Any], model: str) -> dict[str, Any]:
    """The Chat door's mapping over the Responses names (``max_output_tokens``, ``text.format``, ``reasoning``)."""
    chat: dict[str, Any] = {k: body[k] for k in ("temperature", "top_p") if body.get(k) is not None}
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if isinstance(fmt, dict):
        kind = fmt.get("type")
        if kind == "json_schema":
            chat["response_format"] = {"type": "json_schema", "json_schema": {"name": fmt.get("name"), "schema": fmt.get("schema")}}
        elif kind == "json_object":
            chat["response_format"] = {"type": "json_object"}
        elif kind not in (None, "text"):
            raise bad_request(f"text.format type {kind!r} is not one of text, json_object, json_schema.")
    reasoning = body.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, dict):
        raise bad_request("reasoning must be an object such as {\"effort\": \"medium\"}.")
    reasoning = reasoning or {}
    if reasoning.get("effort") is not None:
        chat["reasoning_effort"] = reasoning["effort"]
    try:
        config = openai_request._generation_config(chat, model)
    except Exception as e:
        message = getattr(e, "message", None)
        if isinstance(message, str):  # the Chat names in its messages -> the Responses names
            message = (message.replace("max_tokens / max_completion_tokens", "max_output_tokens")
                       .replace("reasoning_effort", "reasoning.effort").replace("response_format", "text.format"))
            raise bad_request(message) from None
        raise
    summary = reasoning.get("summary", reasoning.get("generate_summary"))
    if summary in ("auto", "concise", "detailed"):
        thinking = config.get("thinkingConfig")
        if thinking is None:
            config["thinkingConfig"] = {"includeThoughts": True}
        elif thinking.get("thinkingBudget") != 0:
            thinking["includeThoughts"] = True
    return config


# -- input items -------------------------------------------------------------------------------


def input_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """``input`` as a list of items (a string is one user message)."""
    raw = body.get("input")
    if raw is None:
        return []
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}] if raw else []
    if not isinstance(raw, list):
        raise bad_request("input must be a string or an array of input items.")
    items = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            items.append({"type": "message", "role": "user", "content": [{"type": "input_text", "text": item}]})
        elif isinstance(item, dict):
            items.append(item)
        else:
            raise bad_request(f"input[{i}] must be an object.")
    return items


class _Turns:
    """Builds Gemini turns from items, keeping a model turn open across its calls and reasoning."""

    def __init__(self, ctx: ResponsesContext, memory: SignatureMemory, now: float,
                 images: Mapping[str, dict[str, str]]) -> None:
        self.ctx = ctx
        self.memory = memory
        self.now = now
        self.images = images
        self.contents: list[dict[str, Any]] = []
        self.system: list[dict[str, Any]] = []
        self.call_names: dict[str, str] = {}
        self.pending_signature: str | None = None

    def _turn(self, role: str) -> list[dict[str, Any]]:
        if not self.contents or self.contents[-1]["role"] != role:
            self.contents.append({"role": role, "parts": []})
        return self.contents[-1]["parts"]

    def flush_signature(self) -> None:
        """A reasoning signature no call followed: keep it on a thought part of the model turn."""
        if self.pending_signature:
            self._turn("model").append({"text": "", "thought": True, "thoughtSignature": self.pending_signature})
        self.pending_signature = None

    def add(self, item: dict[str, Any], where: str) -> None:
        kind = item.get("type", "message")
        model = self.ctx.upstream_model
        if kind != "reasoning" and kind not in ("function_call", "custom_tool_call"):
            self.flush_signature()
        if kind == "message":
            role = item.get("role")
            if role not in MESSAGE_ROLES:
                raise bad_request(f"{where}.role must be one of {', '.join(MESSAGE_ROLES)}.")
            if role in ("system", "developer"):
                text = _text(item.get("content"), where)
                if text:
                    self.system.append({"text": text})
            elif role == "user":
                self._turn("user").extend(_parts(item.get("content"), where, self.images))
            else:
                self._turn("model").extend(p for p in _parts(item.get("content"), where, {}) if "text" in p)
        elif kind == "reasoning":
            found = carried(item.get("encrypted_content"))
            if found and found[0] == model_family(model):
                self.flush_signature()
                summary = item.get("summary") if isinstance(item.get("summary"), list) else []
                text = "".join(s.get("text", "") for s in summary if isinstance(s, dict) and isinstance(s.get("text"), str))
                self.memory.remember(found[1], model, self.now)
                if text:
                    self._turn("model").append({"text": text, "thought": True, "thoughtSignature": found[1]})
                else:
                    self.pending_signature = found[1]
        elif kind in ("function_call", "custom_tool_call"):
            name = item.get("name")
            if not isinstance(name, str) or not name:
                raise bad_request(f"{where}.name is required.")
            if isinstance(item.get("namespace"), str) and item["namespace"]:
                name = f"{item['namespace']}{NAMESPACE_SEPARATOR}{name}"
            call_id = item.get("call_id") if isinstance(item.get("call_id"), str) and item["call_id"] else None
            args = {"input": item.get("input") if isinstance(item.get("input"), str) else ""} \
                if kind == "custom_tool_call" else _arguments(item.get("arguments"))
            call: dict[str, Any] = {"name": self.ctx.names.safe(name), "args": args}
            if call_id:
                call["id"] = call_id
                self.call_names[call_id] = name
            part: dict[str, Any] = {"functionCall": call}
            signature = call_signature(self.memory, call_id, self.pending_signature, model, self.now)
            self.pending_signature = None
            if signature:
                part["thoughtSignature"] = signature
            self._turn("model").append(part)
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = item.get("call_id") if isinstance(item.get("call_id"), str) else None
            name = self.call_names.get(call_id or "") or "tool"
            response, extra = _output(item.get("output"), where, self.images)
            function_response: dict[str, Any] = {"name": self.ctx.names.safe(name), "response": response}
            if call_id:
                function_response["id"] = call_id
            self._turn("user").append({"functionResponse": function_response})
            self._turn("user").extend(extra)
        elif kind in SKIPPED_ITEMS:
            return
        else:
            raise bad_request(f"{where}: input item type {kind!r} is not supported.")


def to_gemini(
    body: Any,
    upstream_model: str,
    *,
    history: list[dict[str, Any]] | None = None,
    images: Mapping[str, dict[str, str]] | None = None,
    memory: SignatureMemory | None = None,
    now: float = 0.0,
) -> tuple[dict[str, Any], ResponsesContext]:
    """The Gemini request for a Responses body (after ``history`` items), and the context to answer it."""
    memory = memory if memory is not None else SignatureMemory()
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("model is required.")
    include = body.get("include")
    ctx = ResponsesContext(
        requested_model=model,
        upstream_model=upstream_model,
        stream=body.get("stream") is True,
        encrypted=isinstance(include, list) and "reasoning.encrypted_content" in include,
    )
    declarations, search = _tools(body, ctx)
    items = list(history or []) + input_items(body)
    ctx.items = items
    turns = _Turns(ctx, memory, now, images or {})
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        turns.system.append({"text": instructions})
    elif isinstance(instructions, list):
        turns.system.extend(p for p in _parts(instructions, "instructions", {}) if "text" in p)
    elif instructions is not None:
        raise bad_request("instructions must be a string.")
    for i, item in enumerate(items):
        turns.add(item, f"input[{i - len(history or [])}]" if i >= len(history or []) else f"previous_response.input[{i}]")
    turns.flush_signature()
    contents, system = turns.contents, turns.system
    if not any(turn["parts"] for turn in contents) and system:
        contents, system = [{"role": "user", "parts": list(system)}], []
    if not any(turn["parts"] for turn in contents):
        raise bad_request("input carries no content: send a non-empty string or at least one message.")
    request: dict[str, Any] = {"contents": repair_history(contents, upstream_model)}
    if system:
        request["systemInstruction"] = {"role": "user", "parts": system}
    tool_config = _tool_config(body, ctx)
    if declarations:
        request["tools"] = [{"functionDeclarations": declarations}]
        if tool_config:
            request["toolConfig"] = tool_config
    elif search:
        request["tools"] = [{"googleSearch": {}}]
    config = _generation_config(body, upstream_model)
    if config:
        request["generationConfig"] = config
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise bad_request("metadata must be an object of string keys and values.")
    key = session_key(body.get("prompt_cache_key")) or session_key(body.get("user")) or session_key(body.get("safety_identifier"))
    if key:
        request["sessionId"] = key
    ctx.echo = echo_fields(body, metadata)
    return fit_for_model(request, upstream_model), ctx


def echo_fields(body: dict[str, Any], metadata: dict[str, Any] | None) -> dict[str, Any]:
    """Request fields the response object repeats (the SDK types require several of them)."""
    reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
    text = body.get("text") if isinstance(body.get("text"), dict) else {}
    return {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": metadata or {},
        "parallel_tool_calls": body.get("parallel_tool_calls", True) is not False,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": body.get("store", True) is not False,
        "temperature": body.get("temperature", 1.0),
        "text": {"format": text.get("format") or {"type": "text"}, **({"verbosity": text["verbosity"]} if "verbosity" in text else {})},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") if isinstance(body.get("tools"), list) else [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "user": body.get("user"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "service_tier": "default",
        "background": False,
    }


__all__ = ["ResponsesContext", "carried", "carry", "echo_fields", "input_items", "remote_image_urls", "to_gemini"]
