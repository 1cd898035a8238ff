"""The one models list all three SDKs accept, and a no-wait model lookup for the doors. Pure.

Which model a name means is decided in ``gateway.protocol.resolve`` (exact
id, ``deprecatedModelIds``, ``[models] mapping``, the built-in alias table
over the live catalogue); see docs/models.md.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from gateway.protocol.models import strip_models_prefix

#: ``created`` / ``created_at`` for every listed model: upstream reports no dates.
CREATED = 1735689600
CREATED_AT = "2025-01-01T00:00:00Z"


def resolve(mapper: Any, requested: str) -> str:
    """The upstream model for a name asked at a door, without waiting.

    ``mapper`` is normally the ``gateway.resolution.ModelResolver`` (live
    catalogue, aliases, 404 for unknown names: docs/models.md); doors that
    can wait should ``await resolver.resolve(name)`` instead. A plain
    IModelMapper still works (its mapping only).
    """
    resolve_now = getattr(mapper, "resolve_now", None)
    if resolve_now is not None:
        return str(resolve_now(requested))
    return str(mapper.map(strip_models_prefix(requested.strip())))


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
