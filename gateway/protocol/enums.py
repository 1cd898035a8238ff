"""Enum values sent as integers, turned into names before they go upstream.

google-generativeai asks for ``enum-encoding=int``, so its requests carry
enums as numbers in the *Generative Language* API's numbering. Cloud Code's
protos number some enums differently (HarmCategory: 1 is DEROGATORY there,
HATE_SPEECH in Vertex numbering), so forwarding the integers would silently
change a safety setting. Names mean the same on both sides. Pure; the input
is not mutated.
"""

from __future__ import annotations

from typing import Any

# google.ai.generativelanguage.v1beta HarmCategory
HARM_CATEGORY = (
    "HARM_CATEGORY_UNSPECIFIED", "HARM_CATEGORY_DEROGATORY", "HARM_CATEGORY_TOXICITY",
    "HARM_CATEGORY_VIOLENCE", "HARM_CATEGORY_SEXUAL", "HARM_CATEGORY_MEDICAL",
    "HARM_CATEGORY_DANGEROUS", "HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT", "HARM_CATEGORY_DANGEROUS_CONTENT", "HARM_CATEGORY_CIVIC_INTEGRITY",
)
HARM_BLOCK_THRESHOLD = (
    "HARM_BLOCK_THRESHOLD_UNSPECIFIED", "BLOCK_LOW_AND_ABOVE", "BLOCK_MEDIUM_AND_ABOVE",
    "BLOCK_ONLY_HIGH", "BLOCK_NONE", "OFF",
)
FUNCTION_CALLING_MODE = ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")
SCHEMA_TYPE = ("TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL")
MODALITY = ("MODALITY_UNSPECIFIED", "TEXT", "IMAGE", "AUDIO")
MEDIA_RESOLUTION = ("MEDIA_RESOLUTION_UNSPECIFIED", "MEDIA_RESOLUTION_LOW", "MEDIA_RESOLUTION_MEDIUM", "MEDIA_RESOLUTION_HIGH")


def _name(value: Any, names: tuple[str, ...]) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return names[value]
    return value


def _schema(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if "type" in out:
        out["type"] = _name(out["type"], SCHEMA_TYPE)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _schema(v) for k, v in out["properties"].items()}
    if "items" in out:
        out["items"] = _schema(out["items"])
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(out.get(key), list):
            out[key] = [_schema(s) for s in out[key]]
    return out


#: The generationConfig fields that can hold an enum.
_GENERATION_ENUMS = ("responseSchema", "responseModalities", "mediaResolution")


def enum_names(request: dict[str, Any]) -> dict[str, Any]:
    """The request with every integer enum the gateway knows replaced by its name.

    A request with none of the fields that can hold one (the usual case) is
    returned as it is, not copied.
    """
    generation = request.get("generationConfig")
    if not (
        "safetySettings" in request
        or "toolConfig" in request
        or "tools" in request
        or (isinstance(generation, dict) and any(name in generation for name in _GENERATION_ENUMS))
    ):
        return request
    out = dict(request)
    settings = out.get("safetySettings")
    if isinstance(settings, list):
        out["safetySettings"] = [
            {**s, "category": _name(s.get("category"), HARM_CATEGORY), "threshold": _name(s.get("threshold"), HARM_BLOCK_THRESHOLD)}
            if isinstance(s, dict) else s
            for s in settings
        ]
    config = out.get("toolConfig")
    if isinstance(config, dict) and isinstance(config.get("functionCallingConfig"), dict):
        fcc = dict(config["functionCallingConfig"])
        if "mode" in fcc:
            fcc["mode"] = _name(fcc["mode"], FUNCTION_CALLING_MODE)
        out["toolConfig"] = {**config, "functionCallingConfig": fcc}
    tools = out.get("tools")
    if isinstance(tools, list):
        out["tools"] = [_tool(t) for t in tools]
    generation = out.get("generationConfig")
    if isinstance(generation, dict):
        generation = dict(generation)
        if "responseSchema" in generation:
            generation["responseSchema"] = _schema(generation["responseSchema"])
        if isinstance(generation.get("responseModalities"), list):
            generation["responseModalities"] = [_name(m, MODALITY) for m in generation["responseModalities"]]
        if "mediaResolution" in generation:
            generation["mediaResolution"] = _name(generation["mediaResolution"], MEDIA_RESOLUTION)
        out["generationConfig"] = generation
    return out


def _tool(tool: Any) -> Any:
    if not isinstance(tool, dict) or not isinstance(tool.get("functionDeclarations"), list):
        return tool
    declarations = []
    for d in tool["functionDeclarations"]:
        if isinstance(d, dict) and "parameters" in d:
            d = {**d, "parameters": _schema(d["parameters"])}
        declarations.append(d)
    return {**tool, "functionDeclarations": declarations}
