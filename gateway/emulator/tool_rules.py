"""What upstream refuses about tools, search and thinking together (beyond field shapes). Pure.

- Google Search grounding cannot sit beside function declarations in one
  request (v1internal answers 400; peers send search alone).
- Claude models behind Cloud Code keep Anthropic's thinking rules: with
  thinking on, ``temperature`` must be 1 (or unset), ``topK`` is refused,
  ``topP`` must be ≥ 0.95, and tool choice may not force a call.
"""

from __future__ import annotations

from typing import Any

from gateway.emulator.catalogue import ModelSpec
from gateway.protocol.errors import GatewayError


def _bad(message: str) -> GatewayError:
    return GatewayError(400, message, "INVALID_ARGUMENT")


def thinking_on(config: dict[str, Any]) -> bool:
    thinking = config.get("thinkingConfig") or {}
    budget = thinking.get("thinkingBudget")
    return bool(thinking.get("includeThoughts")) or (isinstance(budget, int) and budget > 0)


def check(req: dict[str, Any], spec: ModelSpec) -> None:
    """Raise the 400 upstream answers for a refused combination; return when all is well."""
    tools = req.get("tools") or []
    search = any("googleSearch" in t or "googleSearchRetrieval" in t for t in tools)
    functions = any(t.get("functionDeclarations") for t in tools)
    if search and functions:
        raise _bad("Multiple tools are supported only when they are all search tools.")
    if not spec.is_claude:
        return
    config = req.get("generationConfig") or {}
    if not thinking_on(config):
        return
    temperature = config.get("temperature")
    if temperature is not None and float(temperature) != 1.0:
        raise _bad("temperature may only be set to 1 when thinking is enabled.")
    if config.get("topK") is not None:
        raise _bad("top_k is not supported when thinking is enabled.")
    top_p = config.get("topP")
    if top_p is not None and float(top_p) < 0.95:
        raise _bad("top_p must be greater than or equal to 0.95 when thinking is enabled.")
    mode = ((req.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode")
    if mode == "ANY":
        raise _bad("Thinking may not be enabled when tool_choice forces tool use.")
