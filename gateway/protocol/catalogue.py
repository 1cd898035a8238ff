"""A snapshot of the models Cloud Code serves now, read from ``fetchAvailableModels``. Pure.

Owns what the gateway knows about each live model — family, tier, version,
output limit — so resolution and hygiene decide by catalogue facts, not by
id prefixes (``gemini-pro-agent`` is Gemini 3). Must not do I/O: the pool's
poller fetches; this reads the answer it got.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import attrs

from gateway.protocol.models import deprecated_redirects, strip_models_prefix, version_of

#: Effort suffixes Cloud Code puts on variants of one model, strongest first.
_EFFORT = (("-extra-low", 0), ("-low", 1), ("-medium", 2), ("-high", 4))
_PROVIDERS = {
    "MODEL_PROVIDER_ANTHROPIC": "anthropic",
    "MODEL_PROVIDER_OPENAI": "openai",
    "MODEL_PROVIDER_GOOGLE": "google",
}


@attrs.frozen
class LiveModel:
    """One served model, as resolution and hygiene need it."""

    id: str
    provider: str  # google | anthropic | openai
    family: str  # gemini-3, gemini-2, claude, gpt-oss, …
    tier: str  # pro | flash | lite | image | opus | sonnet | haiku | oss | other
    version: tuple[int, ...]
    effort: int  # 4 high, 3 plain, 2 medium, 1 low, 0 extra-low
    agent: bool
    max_output: int | None

    @property
    def gemini3(self) -> bool:
        """Gemini 3 family: history ``functionCall`` parts need a thought signature."""
        return self.family == "gemini-3"


def _version(model_id: str, display: str) -> tuple[int, ...]:
    found = version_of(model_id) or version_of("-" + re.sub(r"[^0-9.]+", "-", display).strip("-"))
    if not found:
        return ()
    try:
        return tuple(int(p) for p in found.split("."))
    except ValueError:
        return ()


def _provider(model_id: str, info: Mapping[str, Any]) -> str:
    named = _PROVIDERS.get(str(info.get("modelProvider") or ""))
    if named:
        return named
    if model_id.startswith("claude"):
        return "anthropic"
    if model_id.startswith(("gpt", "o1", "o3", "o4")):
        return "openai"
    return "google"


def _tier(model_id: str, provider: str, info: Mapping[str, Any]) -> str:
    words = model_id.lower()
    if provider == "anthropic":
        for tier in ("opus", "sonnet", "haiku"):
            if tier in words:
                return tier
        return "other"
    if provider == "openai":
        return "oss"
    if info.get("supportsImageGeneration") is True or "image" in words:
        return "image"
    if "lite" in words:
        return "lite"
    if "pro" in words:
        return "pro"
    if "flash" in words:
        return "flash"
    return "other"


def _family(provider: str, version: tuple[int, ...], info: Mapping[str, Any]) -> str:
    """Upstream's ``modelFamily`` when it names one; else by provider and version.

    A Google model with no version in its id or display name counts as Gemini
    3: every Gemini Cloud Code serves today is, and the Gemini 3 rules
    (signatures on history calls) are harmless for older ones.
    """
    named = info.get("modelFamily")
    if isinstance(named, str) and named.strip():
        return named.strip().lower()
    if provider == "anthropic":
        return "claude"
    if provider == "openai":
        return "gpt-oss"
    if version and version[0] < 3:
        return f"gemini-{version[0]}"
    return "gemini-3"


def _effort(model_id: str) -> int:
    for suffix, rank in _EFFORT:
        if model_id.endswith(suffix):
            return rank
    return 3


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return int(value)
    return None


def live_model(model_id: str, info: Mapping[str, Any]) -> LiveModel:
    model_id = strip_models_prefix(model_id)
    display = info.get("displayName") if isinstance(info.get("displayName"), str) else ""
    provider = _provider(model_id, info)
    version = _version(model_id, display)
    return LiveModel(
        id=model_id,
        provider=provider,
        family=_family(provider, version, info),
        tier=_tier(model_id, provider, info),
        version=version,
        effort=_effort(model_id),
        agent="-agent" in model_id,
        max_output=_int(info.get("maxOutputTokens")),
    )


@attrs.frozen
class Catalogue:
    """The live catalogue: served models by id and upstream's ``{old id: new id}`` redirects."""

    models: Mapping[str, LiveModel] = attrs.Factory(dict)
    deprecated: Mapping[str, str] = attrs.Factory(dict)

    def get(self, model_id: str) -> LiveModel | None:
        return self.models.get(strip_models_prefix(model_id))

    def ids(self) -> list[str]:
        return sorted(self.models)

    def __contains__(self, model_id: object) -> bool:
        return isinstance(model_id, str) and strip_models_prefix(model_id) in self.models


def catalogue_from_answer(answer: Any) -> Catalogue:
    """A ``fetchAvailableModels``-shaped answer (one account's, or the pool's merged) as a snapshot.

    Skipped like the models list skips them: deprecated ids, ``isInternal``
    entries and malformed ones.
    """
    if not isinstance(answer, Mapping):
        return Catalogue()
    redirects = deprecated_redirects(answer)
    deprecated_ids = set(redirects)
    raw = answer.get("deprecatedModelIds")
    if isinstance(raw, (Mapping, list)):
        deprecated_ids |= {strip_models_prefix(k) for k in raw if isinstance(k, str)}
    models: dict[str, LiveModel] = {}
    entries = answer.get("models")
    if isinstance(entries, Mapping):
        for model_id, info in entries.items():
            if not isinstance(model_id, str) or not isinstance(info, Mapping) or info.get("isInternal") is True:
                continue
            bare = strip_models_prefix(model_id)
            if bare and bare not in deprecated_ids:
                models[bare] = live_model(bare, info)
    return Catalogue(models, redirects)
