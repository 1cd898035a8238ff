"""Model names at the OpenAI/Anthropic doors, and the one models list all three SDKs accept. Pure.

Mapping: the configured ``IModelMapper`` decides first; when it leaves a
name unchanged (no entry for it), :data:`DEFAULT_MAPPING` is consulted, so
``gpt-4o`` or a Claude Haiku id reach a model Cloud Code serves without any
configuration. An operator's ``[models] mapping`` entry always wins.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from gateway.protocol.model_mapping import PatternTable
from gateway.protocol.models import strip_models_prefix

#: Built-in mapping for names OpenAI and Anthropic clients send (``*`` patterns,
#: most specific wins; see the README).
DEFAULT_MAPPING: dict[str, str] = {
    "gpt-*": "gemini-2.5-flash",
    "chatgpt-*": "gemini-2.5-flash",
    "o1*": "gemini-2.5-pro",
    "o3*": "gemini-2.5-pro",
    "o4*": "gemini-2.5-pro",
    # Claude Code's background/Haiku model (claude-haiku-4-5-20251001 …): a fast flash model.
    "claude-*haiku*": "gemini-3-flash",
    "claude-*sonnet*": "claude-sonnet-4-6",
    "claude-*opus*": "claude-opus-4-6-thinking",
    # Claude Code's bare aliases, when a user passes them straight through (ANTHROPIC_MODEL=opus).
    "opus": "claude-opus-4-6-thinking",
    "sonnet": "claude-sonnet-4-6",
    "haiku": "gemini-3-flash",
}
_DEFAULTS = PatternTable(DEFAULT_MAPPING)
#: ``created`` / ``created_at`` for every listed model: upstream reports no dates.
CREATED = 1735689600
CREATED_AT = "2025-01-01T00:00:00Z"


def resolve(mapper: Any, requested: str, defaults: PatternTable = _DEFAULTS) -> str:
    """The upstream model for a name asked at the OpenAI/Anthropic doors."""
    bare = strip_models_prefix(requested.strip())
    mapped = mapper.map(bare)
    if mapped != bare:
        return mapped
    return defaults.lookup(bare) or bare


def _owner(model_id: str) -> str:
    return "anthropic" if model_id.startswith("claude") else "google"


def _bare(model: Mapping[str, Any]) -> str:
    return strip_models_prefix(str(model.get("name", "")))


def openai_item(model: Mapping[str, Any], anthropic: bool = False) -> dict[str, Any]:
    """One ``data`` entry: OpenAI's fields, plus Anthropic's when asked."""
    model_id = _bare(model)
    item: dict[str, Any] = {"id": model_id, "object": "model", "created": CREATED, "owned_by": _owner(model_id)}
    if anthropic:
        item.update({"type": "model", "display_name": model.get("displayName") or model_id, "created_at": CREATED_AT})
    return item


def list_answer(page: Mapping[str, Any], catalogue: Iterable[Mapping[str, Any]], *, anthropic: bool) -> dict[str, Any]:
    """The Gemini page (``models``, ``nextPageToken``) with OpenAI's ``object``/``data`` over the
    whole catalogue, and, for Claude Code (an ``anthropic-version`` header), ``has_more``,
    ``first_id`` and ``last_id`` with Anthropic's item fields."""
    answer = dict(page)
    data = [openai_item(m, anthropic) for m in catalogue]
    answer["object"] = "list"
    answer["data"] = data
    if anthropic:
        answer["has_more"] = False
        answer["first_id"] = data[0]["id"] if data else None
        answer["last_id"] = data[-1]["id"] if data else None
    return answer


def model_answer(model: Mapping[str, Any], *, anthropic: bool) -> dict[str, Any]:
    """One Gemini ``Model`` carrying the OpenAI (and, when asked, Anthropic) model fields too."""
    answer = dict(model)
    answer.update(openai_item(model, anthropic))
    return answer
