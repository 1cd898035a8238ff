"""The one pre-upstream step every door shares: make a Gemini request what Cloud Code accepts today.

Pure: a GenerateContentRequest, the target model and the live catalogue in,
a corrected copy out (the input is never changed). Each fix answers a
measured Cloud Code behaviour (PROTOCOL.md 2b):

- ``parametersJsonSchema`` is ignored upstream (the model sees a tool with no
  parameters): it becomes ``parameters``, cleaned by the doors' schema
  cleaner (``$ref``/``$defs`` inlined, unsupported keywords dropped);
- ``generationConfig.maxOutputTokens`` above the model's limit is a 400: clamp;
- Gemini 3 family (from the catalogue): a history ``functionCall`` without a
  ``thoughtSignature`` is a 400: add the documented sentinel;
- the Claude Agent SDK identity block draws a 429: replace that exact block
  with Claude Code's identity.
"""

from __future__ import annotations

import copy
from typing import Any

from gateway.compat.schema import parameters_schema
from gateway.compat.signatures import SKIP_SIGNATURE
from gateway.protocol.catalogue import Catalogue

AGENT_SDK_IDENTITY = "You are a Claude agent, built on Anthropic's Claude Agent SDK."
CLAUDE_CODE_IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
_JSON_SCHEMA_KEYS = ("parametersJsonSchema", "parameters_json_schema")


def _declarations(request: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    tools = request.get("tools")
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict):
            for key in ("functionDeclarations", "function_declarations"):
                decls = tool.get(key)
                if isinstance(decls, list):
                    out.extend(d for d in decls if isinstance(d, dict))
    return out


def fix_tool_schemas(request: dict[str, Any]) -> bool:
    """``parametersJsonSchema`` -> cleaned ``parameters`` (in place); True when anything changed."""
    changed = False
    for decl in _declarations(request):
        for key in _JSON_SCHEMA_KEYS:
            if key in decl:
                schema = decl.pop(key)
                if "parameters" not in decl:
                    decl["parameters"] = parameters_schema(schema)
                changed = True
    return changed


def clamp_output(request: dict[str, Any], limit: int | None) -> bool:
    """``maxOutputTokens`` (either spelling) cut to ``limit``; True when it was cut."""
    if limit is None:
        return False
    changed = False
    for key in ("generationConfig", "generation_config"):
        config = request.get(key)
        if not isinstance(config, dict):
            continue
        for name in ("maxOutputTokens", "max_output_tokens"):
            value = config.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > limit:
                config[name] = limit
                changed = True
    return changed


def sign_history_calls(request: dict[str, Any]) -> bool:
    """The sentinel on every ``functionCall`` part of a model turn that has no signature."""
    changed = False
    contents = request.get("contents")
    for turn in contents if isinstance(contents, list) else []:
        if not isinstance(turn, dict) or turn.get("role") != "model" or not isinstance(turn.get("parts"), list):
            continue
        for part in turn["parts"]:
            if isinstance(part, dict) and ("functionCall" in part or "function_call" in part):
                if not part.get("thoughtSignature") and not part.get("thought_signature"):
                    part["thoughtSignature"] = SKIP_SIGNATURE
                    changed = True
    return changed


def normalise_identity(request: dict[str, Any]) -> bool:
    """Replace a system text part that is exactly the Agent SDK identity (surrounding whitespace aside)."""
    changed = False
    for key in ("systemInstruction", "system_instruction"):
        system = request.get(key)
        if isinstance(system, str):
            if system.strip() == AGENT_SDK_IDENTITY:
                request[key] = CLAUDE_CODE_IDENTITY
                changed = True
            continue
        parts = system.get("parts") if isinstance(system, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict) and isinstance(part.get("text"), str) and part["text"].strip() == AGENT_SDK_IDENTITY:
                part["text"] = CLAUDE_CODE_IDENTITY
                changed = True
    return changed


def clean_request(request: dict[str, Any], model: str, catalogue: Catalogue | None) -> dict[str, Any]:
    """A copy of ``request`` fixed for ``model`` (only copied when something changes).

    Without a catalogue the model-specific fixes (clamp, signatures) are
    skipped: they need facts only ``fetchAvailableModels`` gives.
    """
    if not _needs_work(request, model, catalogue):
        return request
    fixed = copy.deepcopy(request)
    fix_tool_schemas(fixed)
    normalise_identity(fixed)
    live = catalogue.get(model) if catalogue is not None else None
    if live is not None:
        clamp_output(fixed, live.max_output)
        if live.gemini3:
            sign_history_calls(fixed)
    return fixed


def _needs_work(request: dict[str, Any], model: str, catalogue: Catalogue | None) -> bool:
    """A cheap read-only pass, so the common request is not deep-copied.

    Each check is what the matching fix would change, read only; a field the
    request does not have is not looked into (the usual request has only
    ``contents`` and perhaps ``generationConfig``).
    """
    if ("tools" in request and _has_json_schemas(request)) or (
        ("systemInstruction" in request or "system_instruction" in request) and _identity_differs(request)
    ):
        return True
    live = catalogue.get(model) if catalogue is not None else None
    if live is None:
        return False
    return _over_limit(request, live.max_output) or (live.gemini3 and _unsigned_calls(request))


def _has_json_schemas(request: dict[str, Any]) -> bool:
    """Whether :func:`fix_tool_schemas` would change anything (read only)."""
    return any(key in decl for decl in _declarations(request) for key in _JSON_SCHEMA_KEYS)


def _identity_differs(request: dict[str, Any]) -> bool:
    """Whether :func:`normalise_identity` would change anything (read only: no copy per request)."""
    for key in ("systemInstruction", "system_instruction"):
        system = request.get(key)
        if isinstance(system, str):
            if system.strip() == AGENT_SDK_IDENTITY:
                return True
            continue
        parts = system.get("parts") if isinstance(system, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict) and isinstance(text := part.get("text"), str) and text.strip() == AGENT_SDK_IDENTITY:
                return True
    return False


def _over_limit(request: dict[str, Any], limit: int | None) -> bool:
    """Whether :func:`clamp_output` would cut anything (read only)."""
    if limit is None:
        return False
    for key in ("generationConfig", "generation_config"):
        config = request.get(key)
        if isinstance(config, dict):
            for name in ("maxOutputTokens", "max_output_tokens"):
                value = config.get(name)
                if isinstance(value, int) and not isinstance(value, bool) and value > limit:
                    return True
    return False


def _unsigned_calls(request: dict[str, Any]) -> bool:
    """Whether :func:`sign_history_calls` would sign anything (read only)."""
    contents = request.get("contents")
    for turn in contents if isinstance(contents, list) else []:
        if isinstance(turn, dict) and turn.get("role") == "model" and isinstance(turn.get("parts"), list):
            for part in turn["parts"]:
                if isinstance(part, dict) and ("functionCall" in part or "function_call" in part):
                    if not part.get("thoughtSignature") and not part.get("thought_signature"):
                        return True
    return False
