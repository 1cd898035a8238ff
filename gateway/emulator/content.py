"""Request validation, the token counter and deterministic answers.

Strict like upstream's proto-JSON front end: unknown field names, wrong
types, bad enum values and malformed turns are 400 INVALID_ARGUMENT with
Google's wording, so a gateway that passes these tests will not be rejected
by the real service for shape. Pure: no I/O, no Twisted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from gateway.emulator import answers, images, tool_rules
from gateway.emulator.catalogue import ModelSpec, get_model
from gateway.protocol.errors import TYPE_PREFIX, GatewayError

LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua."
)
#: Token cost of one inlineData/fileData part (what Gemini charges a 258-token image tile).
MEDIA_PART_TOKENS = 258
#: Output tokens billed for one generated image.
IMAGE_OUTPUT_TOKENS = 1290
MAX_STREAM_EVENTS = 10_000
MAX_REPLY_WORDS = 200_000
#: A 1x1 transparent PNG: what the image models "draw".
PIXEL_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)

# --------------------------------------------------------------------------- errors


def bad_request(message: str, where: str | None = None) -> GatewayError:
    """400 INVALID_ARGUMENT, with a BadRequest field violation when a field is known."""
    details = []
    if where:
        details.append({"@type": TYPE_PREFIX + "BadRequest", "fieldViolations": [{"field": where, "description": message}]})
    return GatewayError(400, message, "INVALID_ARGUMENT", details)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _join(path: str, name: str) -> str:
    return f"{path}.{_snake(name)}" if path else _snake(name)


def _unknown(key: str, path: str) -> GatewayError:
    at = f" at '{path}'" if path else ""
    return bad_request(f'Invalid JSON payload received. Unknown name "{key}"{at}: Cannot find field.', path or None)


def _bad_value(path: str, kind: str, value: Any) -> GatewayError:
    shown = json.dumps(value, ensure_ascii=False)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return bad_request(f"Invalid value at '{path}' ({kind}), {shown}", path)


def fields_of(obj: Any, allowed: Iterable[str], path: str) -> dict[str, Any]:
    """A message's fields under camelCase names; snake_case accepted, others rejected.

    Proto-JSON parsers accept both spellings, treat ``null`` as unset, and
    reject names they do not know: so does this.
    """
    if not isinstance(obj, dict):
        raise bad_request(f"Invalid value at '{path}' (type.googleapis.com/message), expected an object", path or None)
    names: dict[str, str] = {}
    for name in allowed:
        names[name] = name
        names[_snake(name)] = name
    out: dict[str, Any] = {}
    for key, value in obj.items():
        canonical = names.get(key)
        if canonical is None:
            raise _unknown(key, path)
        if canonical in out:
            raise bad_request(f'Invalid JSON payload received. Duplicate field "{key}"' + (f" at '{path}'" if path else "") + ".", path or None)
        if value is not None:
            out[canonical] = value
    return out


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _bad_value(path, "TYPE_STRING", value)
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _bad_value(path, "TYPE_BOOL", value)
    return value


def _int(value: Any, path: str) -> int:
    # proto-JSON accepts integers as numbers or decimal strings.
    if isinstance(value, bool):
        raise _bad_value(path, "TYPE_INT32", value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    raise _bad_value(path, "TYPE_INT32", value)


def _float(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad_value(path, "TYPE_FLOAT", value)
    return float(value)


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise bad_request(f"Invalid value at '{path}', expected a list", path)
    return value


def _enum(value: Any, names: tuple[str, ...], type_name: str, path: str, case_insensitive: bool = False) -> str:
    """An enum given by name or by number (as google-generativeai sends them)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(names):
            return names[value]
    elif isinstance(value, str):
        candidate = value.upper() if case_insensitive else value
        if candidate in names:
            return candidate
    raise _bad_value(path, TYPE_PREFIX.replace("rpc.", "cloud.aiplatform.v1.") + type_name, value)


HARM_CATEGORIES = (
    "HARM_CATEGORY_UNSPECIFIED",
    "HARM_CATEGORY_DEROGATORY",
    "HARM_CATEGORY_TOXICITY",
    "HARM_CATEGORY_VIOLENCE",
    "HARM_CATEGORY_SEXUAL",
    "HARM_CATEGORY_MEDICAL",
    "HARM_CATEGORY_DANGEROUS",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
    "HARM_CATEGORY_IMAGE_HATE",
    "HARM_CATEGORY_IMAGE_DANGEROUS_CONTENT",
    "HARM_CATEGORY_IMAGE_HARASSMENT",
    "HARM_CATEGORY_IMAGE_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_JAILBREAK",
)
HARM_THRESHOLDS = (
    "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
    "BLOCK_LOW_AND_ABOVE",
    "BLOCK_MEDIUM_AND_ABOVE",
    "BLOCK_ONLY_HIGH",
    "BLOCK_NONE",
    "OFF",
)
HARM_METHODS = ("HARM_BLOCK_METHOD_UNSPECIFIED", "SEVERITY", "PROBABILITY")
MODALITIES = ("MODALITY_UNSPECIFIED", "TEXT", "IMAGE", "AUDIO")
MEDIA_RESOLUTIONS = ("MEDIA_RESOLUTION_UNSPECIFIED", "MEDIA_RESOLUTION_LOW", "MEDIA_RESOLUTION_MEDIUM", "MEDIA_RESOLUTION_HIGH")
THINKING_LEVELS = ("THINKING_LEVEL_UNSPECIFIED", "LOW", "HIGH", "MEDIUM", "MINIMAL")
CALLING_MODES = ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")
SCHEMA_TYPES = ("TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL")

ENVELOPE_FIELDS = ("model", "project", "requestId", "request", "requestType", "userAgent", "userPromptId", "enabledCreditTypes")
REQUEST_FIELDS = (
    "contents",
    "systemInstruction",
    "cachedContent",
    "tools",
    "toolConfig",
    "labels",
    "safetySettings",
    "generationConfig",
    "sessionId",
    "modelArmorConfig",
)
CONTENT_FIELDS = ("role", "parts")
PART_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult")
PART_FIELDS = PART_DATA + ("thought", "thoughtSignature", "videoMetadata", "mediaResolution", "partMetadata")
GENERATION_CONFIG_FIELDS = (
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "responseModalities",
    "speechConfig",
    "thinkingConfig",
    "mediaResolution",
    "imageConfig",
    "routingConfig",
    "audioTimestamp",
    "modelSelectionConfig",
)
TOOL_FIELDS = (
    "functionDeclarations",
    "googleSearch",
    "googleSearchRetrieval",
    "codeExecution",
    "urlContext",
    "retrieval",
    "computerUse",
    "googleMaps",
    "enterpriseWebSearch",
    "fileSearch",
)
FUNCTION_DECLARATION_FIELDS = ("name", "description", "parameters", "parametersJsonSchema", "response", "responseJsonSchema", "behavior")
#: The OpenAPI subset upstream's Schema message knows; ``$schema``,
#: ``additionalProperties`` and friends are rejected as unknown names (send
#: full JSON Schema through ``parametersJsonSchema`` instead).
SCHEMA_FIELDS = (
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
)
FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]{0,63}")
ROLES = ("user", "model")


# --------------------------------------------------------------------------- envelopes


@dataclass
class Envelope:
    """A validated generation envelope; ``request`` is normalised to camelCase."""

    model: ModelSpec
    project: str
    request_id: str
    request: dict[str, Any]
    request_type: str | None = None
    user_agent: str | None = None


def parse_json_body(body: bytes) -> Any:
    """The body as JSON, or the 400 proto-JSON front ends answer."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("Invalid JSON payload received. Unexpected token.") from None


def peek_model(obj: Any) -> str | None:
    """Best-effort bare model id for fault matching, before validation."""
    if not isinstance(obj, dict):
        return None
    model = obj.get("model")
    if model is None and isinstance(obj.get("request"), dict):
        model = obj["request"].get("model")
    if not isinstance(model, str):
        return None
    return model[len("models/") :] if model.startswith("models/") else model


def check_envelope(obj: Any, lookup: Callable[[str], "ModelSpec | None"] = get_model) -> tuple[dict[str, Any], ModelSpec]:
    """Envelope shape and model: 400 for shape, 404 for a model upstream lacks."""
    if not isinstance(obj, dict):
        raise bad_request("Invalid JSON payload received. Expected an object.")
    env = fields_of(obj, ENVELOPE_FIELDS, "")
    for name in ("model", "project", "requestId", "requestType", "userAgent", "userPromptId"):
        if name in env:
            _string(env[name], _snake(name))
    model = env.get("model")
    if not model:
        raise bad_request("model is required.", "model")
    if model.startswith("models/"):
        raise bad_request(f"Invalid model name {model!r}: send the bare model id (without 'models/').", "model")
    if not env.get("requestId"):
        raise bad_request("request_id is required.", "request_id")
    if "request" not in env:
        raise bad_request("request is required.", "request")
    if not env.get("project"):
        raise bad_request("project is required.", "project")
    spec = lookup(model)
    if spec is None:
        raise GatewayError(404, "Requested entity was not found.", "NOT_FOUND")
    return env, spec


def project_denied(project: str) -> GatewayError:
    """403 the way Cloud Code words a project the caller may not use."""
    resource = f"projects/{project}/locations/global"
    permission = "cloudaicompanion.companions.generateChat"
    return GatewayError(
        403,
        f"Permission '{permission}' denied on resource '//cloudaicompanion.googleapis.com/{resource}' (or it may not exist).",
        "PERMISSION_DENIED",
        [
            {
                "@type": TYPE_PREFIX + "ErrorInfo",
                "reason": "IAM_PERMISSION_DENIED",
                "domain": "cloudaicompanion.googleapis.com",
                "metadata": {"permission": permission, "resource": resource},
            }
        ],
    )


# --------------------------------------------------------------------------- request validation


def validate_request(obj: Any, spec: ModelSpec, path: str = "request") -> dict[str, Any]:
    """The inner GenerateContentRequest, validated and normalised (camelCase)."""
    req = fields_of(obj, REQUEST_FIELDS, path)
    contents = req.get("contents")
    if contents is None or (isinstance(contents, list) and not contents):
        raise bad_request("contents is not specified", _join(path, "contents"))
    req["contents"] = validate_contents(contents, _join(path, "contents"))
    check_call_signatures(req["contents"], spec)
    if "systemInstruction" in req:
        req["systemInstruction"] = validate_content(req["systemInstruction"], _join(path, "systemInstruction"), system=True)
    if "tools" in req:
        req["tools"] = validate_tools(req["tools"], _join(path, "tools"))
    if "toolConfig" in req:
        validate_tool_config(req["toolConfig"], _join(path, "toolConfig"))
    if "safetySettings" in req:
        req["safetySettings"] = validate_safety(req["safetySettings"], _join(path, "safetySettings"))
    if "generationConfig" in req:
        req["generationConfig"] = validate_generation_config(req["generationConfig"], spec, _join(path, "generationConfig"))
    tool_rules.check(req, spec)
    for name in ("cachedContent", "sessionId"):
        if name in req:
            _string(req[name], _join(path, name))
    if "labels" in req:
        labels = req["labels"]
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise _bad_value(_join(path, "labels"), "map<string, string>", labels)
    return req


def validate_contents(contents: Any, path: str) -> list[dict[str, Any]]:
    """Each turn valid, and function calls/responses paired as Gemini insists."""
    out = [validate_content(c, f"{path}[{i}]") for i, c in enumerate(_list(contents, path))]
    previous: dict[str, Any] | None = None
    for turn in out:
        calls = sum(1 for p in turn["parts"] if "functionCall" in p)
        responses = sum(1 for p in turn["parts"] if "functionResponse" in p)
        prev_calls = sum(1 for p in previous["parts"] if "functionCall" in p) if previous else 0
        prev_responses = sum(1 for p in previous["parts"] if "functionResponse" in p) if previous else 0
        if responses:
            if not prev_calls:
                raise bad_request("Please ensure that function response turn comes immediately after a function call turn.")
            if responses != prev_calls:
                raise bad_request(
                    "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn."
                )
        if calls and previous is not None and previous["role"] != "user" and not prev_responses:
            raise bad_request("Please ensure that function call turn comes immediately after a user turn or after a function response turn.")
        previous = turn
    return out


def check_call_signatures(contents: list[dict[str, Any]], spec: ModelSpec) -> None:
    """Gemini 3: the first functionCall of each model step in the current turn needs its thoughtSignature.

    The current turn starts at the last user content that is not only
    function responses. Any valid base64 passes (including the documented
    ``skip_thought_signature_validator`` sentinel): the emulator checks that
    a signature came back, not that it is the one it issued.
    """
    if not spec.gemini3:
        return
    start = 0
    for index, turn in enumerate(contents):
        if turn["role"] == "user" and not all("functionResponse" in p for p in turn["parts"]):
            start = index
    for index in range(start, len(contents)):
        turn = contents[index]
        if turn["role"] != "model":
            continue
        position = next((i for i, p in enumerate(turn["parts"]) if "functionCall" in p), None)
        if position is not None and not turn["parts"][position].get("thoughtSignature"):
            name = turn["parts"][position]["functionCall"].get("name")
            raise bad_request(
                "Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
                f"correctly, and missing thought_signature may lead to degraded model performance. Additional data, "
                f"function call `default_api:{name}` , position {position + 1}. Please refer to "
                "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
            )


def validate_content(obj: Any, path: str, system: bool = False) -> dict[str, Any]:
    content = fields_of(obj, CONTENT_FIELDS, path)
    role = content.get("role")
    if role is not None:
        _string(role, _join(path, "role"))
    if not system and role not in ROLES:
        raise bad_request("Please use a valid role: user, model.", _join(path, "role"))
    parts = content.get("parts")
    if not parts:
        raise bad_request("contents.parts must not be empty.", _join(path, "parts"))
    content["parts"] = [validate_part(p, f"{_join(path, 'parts')}[{i}]") for i, p in enumerate(_list(parts, _join(path, "parts")))]
    return content


def validate_part(obj: Any, path: str) -> dict[str, Any]:
    part = fields_of(obj, PART_FIELDS, path)
    data = [name for name in PART_DATA if name in part]
    if len(data) > 1:
        raise bad_request(f"Invalid value at '{path}': oneof field 'data' is already set. Cannot set '{_snake(data[1])}'", path)
    if not data:
        raise bad_request("Unable to submit request because it must have a text parameter. Add a text parameter and try again.", path)
    if "thought" in part:
        _bool(part["thought"], _join(path, "thought"))
    if "thoughtSignature" in part:
        _bytes(part["thoughtSignature"], _join(path, "thoughtSignature"))
    kind = data[0]
    where = _join(path, kind)
    value = part[kind]
    if kind == "text":
        _string(value, where)
        if value == "" and "thoughtSignature" not in part:
            raise bad_request("Unable to submit request because it has an empty text parameter. Add a value to the parameter and try again.", where)
    elif kind == "inlineData":
        blob = fields_of(value, ("mimeType", "data", "displayName"), where)
        if not blob.get("mimeType"):
            raise bad_request("inline_data.mime_type is required.", _join(where, "mimeType"))
        _string(blob["mimeType"], _join(where, "mimeType"))
        _bytes(blob.get("data", ""), _join(where, "data"))
    elif kind == "fileData":
        file = fields_of(value, ("mimeType", "fileUri", "displayName"), where)
        if not isinstance(file.get("fileUri"), str) or not file["fileUri"]:
            raise bad_request("file_data.file_uri is required.", _join(where, "fileUri"))
    elif kind == "functionCall":
        call = fields_of(value, ("id", "name", "args", "partialArgs", "willContinue"), where)
        _function_name(call.get("name"), _join(where, "name"))
        if "args" in call and not isinstance(call["args"], dict):
            raise _bad_value(_join(where, "args"), "google.protobuf.Struct", call["args"])
    elif kind == "functionResponse":
        resp = fields_of(value, ("id", "name", "response", "parts", "willContinue", "scheduling"), where)
        _function_name(resp.get("name"), _join(where, "name"))
        if not isinstance(resp.get("response"), dict):
            raise _bad_value(_join(where, "response"), "google.protobuf.Struct", resp.get("response"))
    elif kind == "executableCode":
        code = fields_of(value, ("language", "code"), where)
        _string(code.get("code", ""), _join(where, "code"))
    elif kind == "codeExecutionResult":
        result = fields_of(value, ("outcome", "output"), where)
        _string(result.get("output", ""), _join(where, "output"))
    return part


def _bytes(value: Any, path: str) -> bytes:
    """proto-JSON ``bytes``: standard or URL-safe base64, padding optional."""
    text = _string(value, path)
    padded = text + "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise bad_request(f"Invalid value at '{path}' (TYPE_BYTES), Base64 decoding failed for \"{shown}\"", path) from None


def _function_name(name: Any, path: str) -> str:
    if not isinstance(name, str) or not FUNCTION_NAME.fullmatch(name):
        raise bad_request(
            "Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), "
            "underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 64.",
            path,
        )
    return name


def validate_tools(obj: Any, path: str) -> list[dict[str, Any]]:
    tools = []
    for i, item in enumerate(_list(obj, path)):
        where = f"{path}[{i}]"
        tool = fields_of(item, TOOL_FIELDS, where)
        if "functionDeclarations" in tool:
            decl_path = _join(where, "functionDeclarations")
            decls = []
            for j, decl in enumerate(_list(tool["functionDeclarations"], decl_path)):
                d_where = f"{decl_path}[{j}]"
                d = fields_of(decl, FUNCTION_DECLARATION_FIELDS, d_where)
                _function_name(d.get("name"), _join(d_where, "name"))
                if "parameters" in d and "parametersJsonSchema" in d:
                    raise bad_request("parameters and parameters_json_schema cannot both be set.", d_where)
                for name in ("parameters", "response"):
                    if name in d:
                        validate_schema(d[name], _join(d_where, name))
                decls.append(d)
            tool["functionDeclarations"] = decls
        tools.append(tool)
    return tools


def validate_schema(obj: Any, path: str, depth: int = 0) -> None:
    """Upstream's Schema message (an OpenAPI subset), recursively."""
    if depth > 64:
        raise bad_request("Schema is nested too deeply.", path)
    schema = fields_of(obj, SCHEMA_FIELDS, path)
    if "type" in schema:
        _enum(schema["type"], SCHEMA_TYPES, "Type", _join(path, "type"), case_insensitive=True)
    if "properties" in schema:
        props = schema["properties"]
        if not isinstance(props, dict):
            raise _bad_value(_join(path, "properties"), "map<string, Schema>", props)
        for key, sub in props.items():
            validate_schema(sub, f"{_join(path, 'properties')}[{key!r}].value", depth + 1)
    if "items" in schema:
        validate_schema(schema["items"], _join(path, "items"), depth + 1)
    if "anyOf" in schema:
        for k, sub in enumerate(_list(schema["anyOf"], _join(path, "anyOf"))):
            validate_schema(sub, f"{_join(path, 'anyOf')}[{k}]", depth + 1)
    for name in ("required", "enum", "propertyOrdering"):
        if name in schema and not all(isinstance(v, str) for v in _list(schema[name], _join(path, name))):
            raise _bad_value(_join(path, name), "TYPE_STRING", schema[name])


def validate_tool_config(obj: Any, path: str) -> None:
    config = fields_of(obj, ("functionCallingConfig", "retrievalConfig"), path)
    if "functionCallingConfig" in config:
        where = _join(path, "functionCallingConfig")
        fcc = fields_of(config["functionCallingConfig"], ("mode", "allowedFunctionNames", "streamFunctionCallArguments"), where)
        if "mode" in fcc:
            _enum(fcc["mode"], CALLING_MODES, "FunctionCallingConfig.Mode", _join(where, "mode"))


def validate_safety(obj: Any, path: str) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_list(obj, path)):
        where = f"{path}[{i}]"
        setting = fields_of(item, ("category", "threshold", "method"), where)
        if "category" not in setting or "threshold" not in setting:
            raise bad_request("safety_settings needs both category and threshold.", where)
        setting["category"] = _enum(setting["category"], HARM_CATEGORIES, "HarmCategory", _join(where, "category"))
        setting["threshold"] = _enum(setting["threshold"], HARM_THRESHOLDS, "SafetySetting.HarmBlockThreshold", _join(where, "threshold"))
        if "method" in setting:
            setting["method"] = _enum(setting["method"], HARM_METHODS, "SafetySetting.HarmBlockMethod", _join(where, "method"))
        out.append(setting)
    return out


def validate_generation_config(obj: Any, spec: ModelSpec, path: str) -> dict[str, Any]:
    """Types, enum values and ranges, including the model's output limit."""
    cfg = fields_of(obj, GENERATION_CONFIG_FIELDS, path)
    if "maxOutputTokens" in cfg:
        value = _int(cfg["maxOutputTokens"], _join(path, "maxOutputTokens"))
        if not 1 <= value <= spec.output_tokens:
            raise bad_request(
                f"Unable to submit request because it has a maxOutputTokens value of {value} but the supported range is "
                f"from 1 (inclusive) to {spec.output_tokens + 1} (exclusive). Update the value and try again.",
                _join(path, "maxOutputTokens"),
            )
        cfg["maxOutputTokens"] = value
    if "candidateCount" in cfg:
        value = _int(cfg["candidateCount"], _join(path, "candidateCount"))
        if not 1 <= value <= 8:
            raise bad_request(f"Unable to submit request because candidateCount must be in the range [1, 8], got {value}.", _join(path, "candidateCount"))
        cfg["candidateCount"] = value
    for name, low, high in (("temperature", 0.0, 2.0), ("topP", 0.0, 1.0), ("presencePenalty", -2.0, 2.0), ("frequencyPenalty", -2.0, 2.0)):
        if name in cfg:
            value = _float(cfg[name], _join(path, name))
            if not low <= value <= high:
                raise bad_request(f"Unable to submit request because {_snake(name)} must be in the range [{low}, {high}], got {value}.", _join(path, name))
    for name in ("topK", "seed", "logprobs"):
        if name in cfg:
            _int(cfg[name], _join(path, name))
    for name in ("responseLogprobs", "enableEnhancedCivicAnswers", "audioTimestamp"):
        if name in cfg:
            _bool(cfg[name], _join(path, name))
    if "stopSequences" in cfg:
        stops = _list(cfg["stopSequences"], _join(path, "stopSequences"))
        if not all(isinstance(s, str) for s in stops):
            raise _bad_value(_join(path, "stopSequences"), "TYPE_STRING", stops)
        if len(stops) > 5:
            raise bad_request("Unable to submit request because stop_sequences has more than 5 entries.", _join(path, "stopSequences"))
    if "responseMimeType" in cfg:
        _string(cfg["responseMimeType"], _join(path, "responseMimeType"))
    if "responseSchema" in cfg:
        validate_schema(cfg["responseSchema"], _join(path, "responseSchema"))
    if "responseModalities" in cfg:
        where = _join(path, "responseModalities")
        cfg["responseModalities"] = [_enum(m, MODALITIES, "Modality", f"{where}[{i}]") for i, m in enumerate(_list(cfg["responseModalities"], where))]
    if "mediaResolution" in cfg:
        cfg["mediaResolution"] = _enum(cfg["mediaResolution"], MEDIA_RESOLUTIONS, "MediaResolution", _join(path, "mediaResolution"))
    if "imageConfig" in cfg:
        cfg["imageConfig"] = images.validate_image_config(cfg["imageConfig"], _join(path, "imageConfig"))
    if "thinkingConfig" in cfg:
        cfg["thinkingConfig"] = validate_thinking(cfg["thinkingConfig"], spec, cfg.get("maxOutputTokens"), _join(path, "thinkingConfig"))
    return cfg


def validate_thinking(obj: Any, spec: ModelSpec, max_output: int | None, path: str) -> dict[str, Any]:
    """Thinking only where the model thinks; Claude's budget below max_tokens."""
    thinking = fields_of(obj, ("includeThoughts", "thinkingBudget", "thinkingLevel"), path)
    if "includeThoughts" in thinking:
        _bool(thinking["includeThoughts"], _join(path, "includeThoughts"))
    if "thinkingLevel" in thinking:
        thinking["thinkingLevel"] = _enum(thinking["thinkingLevel"], THINKING_LEVELS, "ThinkingConfig.ThinkingLevel", _join(path, "thinkingLevel"))
    budget = None
    if "thinkingBudget" in thinking:
        budget = _int(thinking["thinkingBudget"], _join(path, "thinkingBudget"))
        thinking["thinkingBudget"] = budget
        if budget < -1:
            raise bad_request(f"Unable to submit request because thinking_budget must be -1 or >= 0, got {budget}.", _join(path, "thinkingBudget"))
    wants = thinking.get("includeThoughts") or (budget is not None and budget > 0) or "thinkingLevel" in thinking
    if wants and not spec.supports_thinking:
        raise bad_request("Unable to submit request because thinking is not supported by this model.", path)
    if spec.supports_thinking and budget is not None and budget > spec.thinking_budget:
        raise bad_request(
            f"Unable to submit request because the thinking budget {budget} is invalid. It must be between 0 and {spec.thinking_budget}.",
            _join(path, "thinkingBudget"),
        )
    if spec.is_claude and budget and budget > 0 and max_output is not None and budget >= max_output:
        raise bad_request("max_tokens must be greater than thinking.budget_tokens", path)
    return thinking


def validate_count_tokens(obj: Any, lookup: Callable[[str], "ModelSpec | None"] = get_model) -> tuple[dict[str, Any], ModelSpec]:
    """``{"request":{"model":"models/…","contents":[…]}}``: strict like the rest."""
    if not isinstance(obj, dict):
        raise bad_request("Invalid JSON payload received. Expected an object.")
    body = fields_of(obj, ("request",), "")
    if "request" not in body:
        raise bad_request("request is required.", "request")
    req = fields_of(body["request"], ("model", "contents", "systemInstruction", "tools", "generationConfig"), "request")
    model = req.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("request.model is required.", "request.model")
    if not model.startswith("models/"):
        raise bad_request(f"Invalid model name {model!r}: expected 'models/{{model}}'.", "request.model")
    spec = lookup(model[len("models/") :])
    if spec is None:
        raise GatewayError(404, "Requested entity was not found.", "NOT_FOUND")
    contents = req.get("contents")
    if not contents:
        raise bad_request("contents is not specified", "request.contents")
    req["contents"] = validate_contents(contents, "request.contents")
    if "systemInstruction" in req:
        req["systemInstruction"] = validate_content(req["systemInstruction"], "request.system_instruction", system=True)
    if "tools" in req:
        req["tools"] = validate_tools(req["tools"], "request.tools")
    if "generationConfig" in req:
        req["generationConfig"] = validate_generation_config(req["generationConfig"], spec, "request.generation_config")
    return req, spec


# --------------------------------------------------------------------------- tokens


def text_tokens(text: str) -> int:
    """ceil(utf-8 bytes / 4), at least 1: deterministic and cheap."""
    return max(1, math.ceil(len(text.encode("utf-8")) / 4))


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def part_tokens(part: dict[str, Any]) -> int:
    if "text" in part:
        return text_tokens(part["text"])
    if "inlineData" in part or "fileData" in part:
        return MEDIA_PART_TOKENS
    if "functionCall" in part:
        call = part["functionCall"]
        return text_tokens(_canonical({"name": call.get("name"), "args": call.get("args", {})}))
    if "functionResponse" in part:
        resp = part["functionResponse"]
        return text_tokens(_canonical({"name": resp.get("name"), "response": resp.get("response")}))
    if "executableCode" in part:
        return text_tokens(part["executableCode"].get("code", ""))
    if "codeExecutionResult" in part:
        return text_tokens(part["codeExecutionResult"].get("output", ""))
    return 1


def count_tokens(contents: list[dict[str, Any]], system_instruction: dict[str, Any] | None = None, tools: list[dict[str, Any]] | None = None) -> int:
    """Prompt tokens: every part of every turn, the system instruction, and the tools."""
    total = sum(part_tokens(p) for c in contents for p in c.get("parts", []))
    if system_instruction:
        total += sum(part_tokens(p) for p in system_instruction.get("parts", []))
    if tools:
        total += text_tokens(_canonical(tools))
    return total


def request_tokens(req: dict[str, Any]) -> int:
    return count_tokens(req["contents"], req.get("systemInstruction"), req.get("tools"))


def check_input_limit(tokens: int, spec: ModelSpec) -> None:
    if tokens > spec.input_tokens:
        raise bad_request(f"The input token count ({tokens}) exceeds the maximum number of tokens allowed ({spec.input_tokens}).")


# --------------------------------------------------------------------------- answers


@dataclass
class Answer:
    """What the model "says" to one request, before framing as JSON."""

    text: str
    finish_reason: str = "STOP"
    thought: str | None = None
    signature: str | None = None
    function_call: dict[str, Any] | None = None
    call_signature: str | None = None
    image: dict[str, Any] | None = None
    events: int = 5
    candidates: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def candidates_tokens(self) -> int:
        total = text_tokens(self.text) if self.text else 0
        if self.function_call:
            total += text_tokens(_canonical(self.function_call))
        if self.image:
            total += IMAGE_OUTPUT_TOKENS
        return total * self.candidates

    @property
    def thoughts_tokens(self) -> int:
        return text_tokens(self.thought) * self.candidates if self.thought else 0


def last_user_text(contents: list[dict[str, Any]]) -> str:
    for turn in reversed(contents):
        if turn.get("role") == "user":
            texts = [p["text"] for p in turn["parts"] if "text" in p and not p.get("thought")]
            # Context blocks clients add (Claude Code's <system-reminder>, gemini-cli's
            # <session_context>) are not what the user said.
            said = [t for t in texts if not re.match(r"\s*<[a-z][a-z_\-]*>", t)]
            texts = said or texts
            if texts:
                return "\n".join(texts)
            return ""
    return ""


def _function_results(contents: list[dict[str, Any]]) -> str:
    """``Results: NAME={response}; …`` when the last user turn only answers function calls."""
    for turn in reversed(contents):
        if turn.get("role") == "user":
            results = [p["functionResponse"] for p in turn["parts"] if "functionResponse" in p]
            if not results:
                return ""
            return "Results: " + "; ".join(f"{r.get('name')}={_canonical(r.get('response'))}" for r in results)
    return ""


def plan_answer(req: dict[str, Any], spec: ModelSpec, request_id: str, default_events: int) -> Answer:
    """The deterministic answer; conventions in the last user text steer it.

    ``stream N events`` -> N stream events; ``reply N words`` -> N lorem words;
    tool calls, JSON mode and grounding follow :mod:`gateway.emulator.answers`.
    """
    said = last_user_text(req["contents"])
    text = ("Echo: " + said) if said else (_function_results(req["contents"]) or LOREM)
    events = default_events
    match = re.search(r"stream\s+(\d+)\s+events?", said, re.I)
    if match:
        events = max(1, min(MAX_STREAM_EVENTS, int(match.group(1))))
    match = re.search(r"reply\s+(\d+)\s+words?", said, re.I)
    if match:
        words = LOREM.replace(",", "").replace(".", "").split()
        count = max(1, min(MAX_REPLY_WORDS, int(match.group(1))))
        text = " ".join(words[i % len(words)] for i in range(count))
    if len(text) < events:
        filler = (" " + LOREM) * (events // len(LOREM) + 1)
        text = (text + filler)[: max(events, len(text))]
    cfg = req.get("generationConfig", {})
    answer = Answer(text=text, events=events, candidates=cfg.get("candidateCount", 1))
    # Tools, JSON mode and search grounding: see gateway/emulator/answers.py.
    mode, allowed = answers.calling_mode(req)
    chosen = answers.choose_tool(answers.declared_tools(req.get("tools")), said, mode, allowed,
                                 answers.answers_function_results(req["contents"]))
    as_json = answers.json_answer(cfg, said)
    if chosen is not None:
        answer.function_call = {"name": chosen.name, "args": answers.call_arguments(chosen, said)}
        answer.text = f"Calling {chosen.name}."
        if spec.gemini3:
            # Gemini 3 signs every function call, thinking shown or not.
            answer.call_signature = base64.b64encode(hashlib.sha256(("call-sig:" + request_id).encode()).digest()).decode()
    elif as_json is not None:
        answer.text = as_json
    elif answers.search_requested(req.get("tools")):
        answer.text, answer.extra["groundingMetadata"] = answers.grounding(said)
    thinking = cfg.get("thinkingConfig", {})
    if spec.supports_thinking and thinking.get("includeThoughts"):
        answer.thought = answers.thought_text(said)
        answer.signature = base64.b64encode(hashlib.sha256(("sig:" + request_id).encode()).digest()).decode()
    if spec.image_generation:
        answer.image = images.image_for(said, cfg.get("imageConfig"))
        if spec.id.startswith("gemini-3"):  # Gemini 3 image models think: a draft comes first
            answer.extra["draft"] = images.image_for(said, cfg.get("imageConfig"), draft=True)
        answer.text = "Here is the image you asked for."
    limit = cfg.get("maxOutputTokens")
    if limit is not None and text_tokens(answer.text) > limit:
        cut = limit * 4
        while cut > 1 and text_tokens(answer.text[:cut]) > limit:
            cut -= 1
        answer.text = answer.text[:cut]
        answer.finish_reason = "MAX_TOKENS"
        answer.function_call = None
        answer.events = min(answer.events, max(1, len(answer.text)))
    return answer


def response_id(request_id: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(("resp:" + request_id).encode()).digest()).decode()[:22]


def trace_id(request_id: str) -> str:
    return hashlib.sha256(("trace:" + request_id).encode()).hexdigest()[:16]


def _usage(answer: Answer, prompt_tokens: int) -> dict[str, Any]:
    usage = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": answer.candidates_tokens,
        "totalTokenCount": prompt_tokens + answer.candidates_tokens + answer.thoughts_tokens,
    }
    if answer.thoughts_tokens:
        usage["thoughtsTokenCount"] = answer.thoughts_tokens
    return usage


def _parts(answer: Answer, text: str, first: bool, last: bool) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if first and answer.thought:
        parts.append({"text": answer.thought, "thought": True})
    if text:
        part: dict[str, Any] = {"text": text}
        if first and answer.signature:
            part["thoughtSignature"] = answer.signature
        parts.append(part)
    if last and answer.function_call:
        call: dict[str, Any] = {"functionCall": dict(answer.function_call)}
        if answer.call_signature:
            call["thoughtSignature"] = answer.call_signature
        parts.append(call)
    if last and answer.extra.get("draft"):
        parts.append({"inlineData": dict(answer.extra["draft"]), "thought": True})
    if last and answer.image:
        parts.append({"inlineData": dict(answer.image)})
    return parts


def _wrap(response: dict[str, Any], request_id: str) -> dict[str, Any]:
    return {"response": response, "traceId": trace_id(request_id)}


def generate_body(answer: Answer, spec: ModelSpec, prompt_tokens: int, request_id: str) -> dict[str, Any]:
    """``{"response": GenerateContentResponse, "traceId"}`` for generateContent."""
    candidates = [
        {
            "content": {"role": "model", "parts": _parts(answer, answer.text, True, True)},
            "finishReason": answer.finish_reason,
            "index": i,
            **answer.extra,
        }
        for i in range(answer.candidates)
    ]
    response = {
        "candidates": candidates,
        "usageMetadata": _usage(answer, prompt_tokens),
        "modelVersion": spec.version,
        "responseId": response_id(request_id),
    }
    return _wrap(response, request_id)


def split_text(text: str, pieces: int) -> list[str]:
    """``text`` in ``pieces`` non-empty consecutive chunks (fewer if text is shorter)."""
    pieces = max(1, min(pieces, len(text))) if text else 1
    bounds = [round(i * len(text) / pieces) for i in range(pieces + 1)]
    return [text[bounds[i] : bounds[i + 1]] for i in range(pieces)]


def stream_bodies(answer: Answer, spec: ModelSpec, prompt_tokens: int, request_id: str) -> list[dict[str, Any]]:
    """The SSE payloads; only the last carries finishReason and usageMetadata."""
    chunks = split_text(answer.text, answer.events)
    out = []
    for n, chunk in enumerate(chunks):
        first, last = n == 0, n == len(chunks) - 1
        candidates = []
        for i in range(answer.candidates):
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": _parts(answer, chunk, first, last)}}
            if answer.candidates > 1:
                candidate["index"] = i
            if last:
                candidate["finishReason"] = answer.finish_reason
                candidate.update(answer.extra)
            candidates.append(candidate)
        response: dict[str, Any] = {"candidates": candidates}
        if last:
            response["usageMetadata"] = _usage(answer, prompt_tokens)
        response["modelVersion"] = spec.version
        response["responseId"] = response_id(request_id)
        out.append(_wrap(response, request_id))
    return out
