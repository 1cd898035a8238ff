"""OpenAI Chat Completions request -> Gemini ``GenerateContentRequest``. Pure.

Remote images are not fetched here: :func:`remote_image_urls` lists them,
the web layer fetches them (size cap, timeout) and passes the results in as
``images`` (URL -> ``inlineData``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from gateway.compat.common import (
    bad_request,
    dumps,
    fit_for_model,
    repair_history,
    session_key,
    thinking_for_effort,
)
from gateway.compat.names import NameMap
from gateway.compat.openai_parts import audio_part, file_part, image_part, text_part
from gateway.compat.schema import clean_schema, parameters_schema
from gateway.compat.signatures import SignatureMemory, call_signature, thinking_signature

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
TOOL_MODES = {"none": "NONE", "auto": "AUTO", "required": "ANY"}


@dataclass
class OpenAIContext:
    """What answering needs to know about the request."""

    requested_model: str
    upstream_model: str
    names: NameMap = field(default_factory=NameMap)
    stream: bool = False
    include_usage: bool = False


def _text_of(content: Any, where: str) -> str:
    """A message's text: a string, or the text parts of an array."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") in ("text", "input_text", "output_text", "refusal"):
                value = part.get("text", part.get("refusal"))
                if isinstance(value, str):
                    texts.append(value)
            elif isinstance(part, str):
                texts.append(part)
        return "".join(texts)
    raise bad_request(f"{where}.content must be a string or an array of content parts.")


def _image_url(part: dict[str, Any]) -> str | None:
    value = part.get("image_url")
    if isinstance(value, dict):
        value = value.get("url")
    return value if isinstance(value, str) else None


def remote_image_urls(body: Any) -> list[str]:
    """Every http(s) ``image_url`` in the messages, in order, without repeats."""
    urls: list[str] = []
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                url = _image_url(part)
                if url and url.strip().lower().startswith(("http://", "https://")) and url.strip() not in urls:
                    urls.append(url.strip())
    return urls


def _user_parts(content: Any, where: str, images: Mapping[str, dict[str, str]]) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise bad_request(f"{where}.content must be a string or an array of content parts.")
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        at = f"{where}.content[{i}]"
        if isinstance(part, str):
            if part:
                parts.append({"text": part})
            continue
        if not isinstance(part, dict):
            raise bad_request(f"{at} must be an object.")
        kind = part.get("type")
        if kind in ("text", "input_text"):
            found = text_part(part, at)
            if found is not None:
                parts.append(found)
        elif kind == "image_url":
            url = _image_url(part)
            if not url:
                raise bad_request(f"{at}.image_url.url is required.")
            parts.append(image_part(url, at, "image_url.url", images))
        elif kind == "input_audio":
            audio = part.get("input_audio")
            if not isinstance(audio, dict):
                raise bad_request(f"{at}.input_audio must be an object with data and format.")
            parts.append(audio_part(audio, at))
        elif kind == "file":
            file = part.get("file")
            if not isinstance(file, dict):
                raise bad_request(f"{at}.file must be an object.")
            parts.append(file_part(file.get("file_data"), file.get("filename"), at, "file.file_data",
                                   "uploaded file ids are not supported"))
        elif kind == "refusal":
            continue
        else:
            raise bad_request(f"{at}: content part type {kind!r} is not supported.")
    return parts


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {"arguments": raw}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def _google_signature(obj: Any) -> str | None:
    extra = obj.get("extra_content") if isinstance(obj, dict) else None
    google = extra.get("google") if isinstance(extra, dict) else None
    value = google.get("thought_signature") if isinstance(google, dict) else None
    return value if isinstance(value, str) and value else None


def _tool_result(content: Any, where: str) -> dict[str, Any]:
    text = _text_of(content, where)
    return {"output": text}


def _declarations(body: dict[str, Any], names: NameMap) -> list[dict[str, Any]]:
    declarations = []
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise bad_request("tools must be an array.")
    functions = [t.get("function") for t in tools or [] if isinstance(t, dict) and t.get("type", "function") == "function"]
    legacy = body.get("functions")
    if isinstance(legacy, list):
        functions.extend(legacy)
    for i, function in enumerate(functions):
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise bad_request(f"tools[{i}].function.name is required.")
        declaration: dict[str, Any] = {"name": names.safe(function["name"])}
        if isinstance(function.get("description"), str) and function["description"]:
            declaration["description"] = function["description"]
        declaration["parameters"] = parameters_schema(function.get("parameters"))
        declarations.append(declaration)
    return declarations


def _tool_config(body: dict[str, Any], names: NameMap) -> dict[str, Any] | None:
    choice = body.get("tool_choice", body.get("function_call"))
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in TOOL_MODES:
            raise bad_request(f"tool_choice {choice!r} is not one of none, auto, required.")
        return {"functionCallingConfig": {"mode": TOOL_MODES[choice]}}
    if isinstance(choice, dict):
        function = choice.get("function") if isinstance(choice.get("function"), dict) else choice
        name = function.get("name")
        if isinstance(name, str) and name:
            return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [names.safe(name)]}}
        if choice.get("type") == "allowed_tools":
            allowed = choice.get("allowed_tools") or {}
            mode = TOOL_MODES.get(allowed.get("mode", "auto"), "AUTO")
            tools = [t.get("function", {}).get("name") for t in allowed.get("tools", []) if isinstance(t, dict)]
            config: dict[str, Any] = {"mode": "ANY" if mode == "ANY" else mode}
            picked = [names.safe(n) for n in tools if isinstance(n, str) and n]
            if picked and mode == "ANY":
                config["allowedFunctionNames"] = picked
            return {"functionCallingConfig": config}
    raise bad_request("tool_choice must be none, auto, required or {\"type\":\"function\",\"function\":{\"name\":…}}.")


def _generation_config(body: dict[str, Any], model: str) -> dict[str, Any]:
    config: dict[str, Any] = {}

    def number(key: str) -> Any:
        value = body.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad_request(f"{key} must be a number.")
        return value

    if number("temperature") is not None:
        config["temperature"] = body["temperature"]
    if number("top_p") is not None:
        config["topP"] = body["top_p"]
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise bad_request("max_tokens / max_completion_tokens must be a positive integer.")
        config["maxOutputTokens"] = limit
    stop = body.get("stop")
    if isinstance(stop, str):
        config["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        config["stopSequences"] = [s for s in stop if isinstance(s, str)][:5]
    n = body.get("n")
    if n is not None and n != 1:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise bad_request("n must be a positive integer.")
        config["candidateCount"] = n
    seed = body.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        config["seed"] = seed
    for key, name in (("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty")):
        if number(key) is not None and body[key] != 0:
            config[name] = body[key]
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        kind = response_format.get("type")
        if kind == "json_object":
            config["responseMimeType"] = "application/json"
        elif kind == "json_schema":
            config["responseMimeType"] = "application/json"
            spec = response_format.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            if isinstance(schema, dict):
                config["responseSchema"] = clean_schema(schema)
        elif kind not in (None, "text"):
            raise bad_request(f"response_format type {kind!r} is not one of text, json_object, json_schema.")
    effort = body.get("reasoning_effort")
    if effort is None and isinstance(body.get("reasoning"), dict):
        effort = body["reasoning"].get("effort")
    if effort is not None:
        if not isinstance(effort, str):
            raise bad_request("reasoning_effort must be a string.")
        thinking = thinking_for_effort(model, effort)
        if thinking:
            config["thinkingConfig"] = thinking
    return config


def to_gemini(
    body: Any,
    upstream_model: str,
    *,
    images: Mapping[str, dict[str, str]] | None = None,
    memory: SignatureMemory | None = None,
    now: float = 0.0,
) -> tuple[dict[str, Any], OpenAIContext]:
    """The Gemini request for a Chat Completions body, and the context to answer it."""
    images = images or {}
    memory = memory if memory is not None else SignatureMemory()
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("model is required.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages must be a non-empty array.")
    names = NameMap()
    options = body.get("stream_options")
    context = OpenAIContext(
        requested_model=model,
        upstream_model=upstream_model,
        names=names,
        stream=body.get("stream") is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
    )
    declarations = _declarations(body, names)

    system_parts: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad_request(f"{where} must be an object.")
        role = message.get("role")
        if role not in ROLES:
            raise bad_request(f"{where}.role must be one of {', '.join(ROLES)}.")
        if role in ("system", "developer"):
            text = _text_of(message.get("content"), where)
            if text:
                system_parts.append({"text": text})
        elif role == "user":
            contents.append({"role": "user", "parts": _user_parts(message.get("content"), where, images)})
        elif role == "assistant":
            contents.append({"role": "model", "parts": _assistant_parts(message, where, names, call_names,
                                                                           upstream_model, memory, now)})
        else:  # tool / legacy function
            call_id = message.get("tool_call_id")
            name = call_names.get(call_id) if isinstance(call_id, str) else None
            name = name or (message.get("name") if isinstance(message.get("name"), str) else None) or "tool"
            response: dict[str, Any] = {"name": names.safe(name), "response": _tool_result(message.get("content"), where)}
            if isinstance(call_id, str) and call_id:
                response["id"] = call_id
            contents.append({"role": "user", "parts": [{"functionResponse": response}]})

    if not any(turn["parts"] for turn in contents) and system_parts:
        contents = [{"role": "user", "parts": system_parts}]
        system_parts = []
    if not any(turn["parts"] for turn in contents):
        raise bad_request("messages carry no content: send at least one non-empty message.")
    request: dict[str, Any] = {"contents": repair_history(contents, upstream_model)}
    if system_parts:
        request["systemInstruction"] = {"role": "user", "parts": system_parts}
    tool_config = _tool_config(body, names)  # checked even without tools
    if declarations:
        request["tools"] = [{"functionDeclarations": declarations}]
        if tool_config:
            request["toolConfig"] = tool_config
    config = _generation_config(body, upstream_model)
    if config:
        request["generationConfig"] = config
    user = session_key(body.get("user")) or session_key((body.get("metadata") or {}).get("user_id") if isinstance(body.get("metadata"), dict) else None)
    if user:
        request["sessionId"] = user
    return fit_for_model(request, upstream_model), context


def _assistant_parts(
    message: dict[str, Any],
    where: str,
    names: NameMap,
    call_names: dict[str, str],
    model: str,
    memory: SignatureMemory,
    now: float,
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    signature = thinking_signature(memory, _google_signature(message), model, now)
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning and signature:
        parts.append({"text": reasoning, "thought": True, "thoughtSignature": signature})
        signature = None
    text = _text_of(message.get("content"), where)
    if text:
        part: dict[str, Any] = {"text": text}
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    calls = message.get("tool_calls")
    legacy = message.get("function_call")
    if calls is None and isinstance(legacy, dict):
        calls = [{"id": None, "type": "function", "function": legacy}]
    if calls is not None and not isinstance(calls, list):
        raise bad_request(f"{where}.tool_calls must be an array.")
    for j, call in enumerate(calls or []):
        if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
            raise bad_request(f"{where}.tool_calls[{j}].function is required.")
        function = call["function"]
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise bad_request(f"{where}.tool_calls[{j}].function.name is required.")
        call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
        if call_id:
            call_names[call_id] = name
        gemini_call: dict[str, Any] = {"name": names.safe(name), "args": _arguments(function.get("arguments"))}
        if call_id:
            gemini_call["id"] = call_id
        part = {"functionCall": gemini_call}
        restored = call_signature(memory, call_id, _google_signature(call), model, now)
        if restored:
            part["thoughtSignature"] = restored
        parts.append(part)
    return parts


__all__ = ["OpenAIContext", "remote_image_urls", "to_gemini", "dumps"]
