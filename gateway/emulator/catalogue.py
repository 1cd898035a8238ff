"""The emulator's model catalogue: ids, limits and capabilities upstream reports.

One table feeds ``fetchAvailableModels``, model lookups (404 for the rest),
``maxOutputTokens`` and input-size checks, so every answer agrees on limits.
Pure data: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

GEMINI_INPUT = 1_048_576
GEMINI_OUTPUT = 65_536


@dataclass(frozen=True)
class ModelSpec:
    """One upstream model, as the emulator advertises and enforces it.

    ``family`` is what Google's rules key on (``gemini-3`` needs thought
    signatures on history calls, whatever the id looks like: ``gemini-pro-agent``
    is one); ``tier`` (``pro``, ``flash``, ``lite``, ``image``, ``opus``,
    ``sonnet``, ``oss``) is informational, as upstream's display names are.
    """

    id: str
    display_name: str
    input_tokens: int
    output_tokens: int
    supports_images: bool = True
    supports_thinking: bool = False
    thinking_budget: int = 0
    image_generation: bool = False
    provider: str = "google"
    model_version: str = ""
    recommended: bool = False
    family: str = "gemini-3"
    tier: str = "flash"

    @property
    def version(self) -> str:
        """``modelVersion`` answered in responses (the id unless pinned)."""
        return self.model_version or self.id

    @property
    def is_claude(self) -> bool:
        return self.provider == "anthropic"

    @property
    def gemini3(self) -> bool:
        """Gemini 3 family: history function calls must carry a thought signature."""
        return self.family == "gemini-3"


def _gemini(model_id: str, name: str, tier: str, budget: int = 24576, **kw: Any) -> ModelSpec:
    return ModelSpec(model_id, name, GEMINI_INPUT, GEMINI_OUTPUT, supports_thinking=True, thinking_budget=budget, tier=tier, **kw)


def _claude(model_id: str, name: str, tier: str) -> ModelSpec:
    return ModelSpec(
        model_id, name, 200_000, 64_000, supports_thinking=True, thinking_budget=32_000,
        provider="anthropic", family="claude", tier=tier,
    )


#: Cloud Code's Antigravity catalogue as of August 2026 (PROTOCOL.md 2b): no ``gemini-2.5-*``.
MODELS: tuple[ModelSpec, ...] = (
    _gemini("gemini-3-flash", "Gemini 3 Flash", "flash", recommended=True),
    _gemini("gemini-3-flash-agent", "Gemini 3 Flash (Agent)", "flash"),
    _gemini("gemini-3.1-pro-low", "Gemini 3.1 Pro (Low)", "pro", budget=8192, recommended=True),
    _gemini("gemini-pro-agent", "Gemini Pro (Agent)", "pro", budget=32768),
    _gemini("gemini-3.1-flash-lite", "Gemini 3.1 Flash Lite", "lite"),
    _gemini("gemini-3.5-flash-low", "Gemini 3.5 Flash (Low)", "flash", budget=8192),
    _gemini("gemini-3.5-flash-extra-low", "Gemini 3.5 Flash (Extra Low)", "flash", budget=2048),
    _gemini("gemini-3.6-flash-high", "Gemini 3.6 Flash (High)", "flash"),
    _gemini("gemini-3.7-flash-high", "Gemini 3.7 Flash (High)", "flash", recommended=True),
    ModelSpec("gemini-3.1-flash-image", "Gemini 3.1 Flash Image", 65_536, 32_768, image_generation=True, tier="image"),
    _claude("claude-sonnet-4-6", "Claude Sonnet 4.6", "sonnet"),
    _claude("claude-opus-4-6-thinking", "Claude Opus 4.6 (Thinking)", "opus"),
    ModelSpec(
        "gpt-oss-120b-medium", "GPT-OSS 120B (Medium)", 131_072, 32_768, supports_images=False,
        supports_thinking=True, thinking_budget=8192, provider="openai", family="gpt-oss", tier="oss",
    ),
)

#: Old ids upstream names in ``deprecatedModelIds`` with the id that replaced them.
DEPRECATED_MODEL_IDS: dict[str, str] = {
    "gemini-3-pro-high": "gemini-3.1-pro-low",
    "gemini-3-pro-low": "gemini-3.1-pro-low",
    "claude-sonnet-4-5": "claude-sonnet-4-6",
    "claude-sonnet-4-5-thinking": "claude-sonnet-4-6",
    "claude-opus-4-5-thinking": "claude-opus-4-6-thinking",
}


class Catalogue:
    """The models served now; tests remove and add models at run time (``/_emulator/models``)."""

    def __init__(self, specs: tuple[ModelSpec, ...] = MODELS, deprecated: dict[str, str] | None = None) -> None:
        self._initial = (tuple(specs), dict(DEPRECATED_MODEL_IDS if deprecated is None else deprecated))
        self.reset()

    def reset(self) -> None:
        self.specs: dict[str, ModelSpec] = {m.id: m for m in self._initial[0]}
        self.deprecated: dict[str, str] = dict(self._initial[1])

    def get(self, model_id: str) -> ModelSpec | None:
        return self.specs.get(model_id)

    def ids(self) -> list[str]:
        return list(self.specs)

    def remove(self, model_id: str) -> bool:
        return self.specs.pop(model_id, None) is not None

    def add(self, spec: ModelSpec) -> None:
        self.specs[spec.id] = spec

    def deprecated_entries(self) -> dict[str, Any]:
        return {old: {"newModelId": new} for old, new in self.deprecated.items()}


def spec_from_json(obj: Any) -> ModelSpec:
    """A model added through the control API: ``{id, display_name?, like?, family?, tier?, output_tokens?}``.

    ``like`` copies an existing spec (by id, from the built-in table) and
    overrides what is given.
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not obj["id"]:
        raise ValueError("a model needs a non-empty string id")
    unknown = set(obj) - {"id", "display_name", "like", "family", "tier", "output_tokens", "input_tokens", "provider", "image_generation"}
    if unknown:
        raise ValueError(f"unknown model field(s): {', '.join(sorted(unknown))}")
    base = _BY_ID.get(str(obj.get("like") or "gemini-3-flash"))
    if base is None:
        raise ValueError(f"like: no built-in model {obj.get('like')!r}")
    changes = {k: obj[k] for k in ("display_name", "family", "tier", "output_tokens", "input_tokens", "provider", "image_generation") if k in obj}
    return replace(base, id=obj["id"], display_name=obj.get("display_name") or obj["id"], model_version="", **{k: v for k, v in changes.items() if k != "display_name"})


_BY_ID: dict[str, ModelSpec] = {m.id: m for m in MODELS}


def get_model(model_id: str) -> ModelSpec | None:
    """The built-in spec for a bare id, or None (callers answer 404)."""
    return _BY_ID.get(model_id)


def model_ids() -> list[str]:
    return [m.id for m in MODELS]


_API_PROVIDERS = {"anthropic": "API_PROVIDER_ANTHROPIC_VERTEX", "openai": "API_PROVIDER_OPENAI_VERTEX"}
_MODEL_PROVIDERS = {"anthropic": "MODEL_PROVIDER_ANTHROPIC", "openai": "MODEL_PROVIDER_OPENAI"}


def model_entry(spec: ModelSpec, remaining_fraction: float, reset_time: str) -> dict[str, Any]:
    """One value of ``fetchAvailableModels``' ``models`` map."""
    entry: dict[str, Any] = {
        "displayName": spec.display_name,
        "maxTokens": spec.input_tokens,
        "maxOutputTokens": spec.output_tokens,
        "quotaInfo": {"remainingFraction": remaining_fraction, "resetTime": reset_time},
        "supportsImages": spec.supports_images,
        "supportsThinking": spec.supports_thinking,
        "model": spec.id,
        "apiProvider": _API_PROVIDERS.get(spec.provider, "API_PROVIDER_GOOGLE_GEMINI"),
        "modelProvider": _MODEL_PROVIDERS.get(spec.provider, "MODEL_PROVIDER_GOOGLE"),
        "modelFamily": spec.family,
    }
    if spec.supports_thinking:
        entry["thinkingBudget"] = spec.thinking_budget
    if spec.image_generation:
        entry["supportsImageGeneration"] = True
    if spec.recommended:
        entry["recommended"] = True
    return entry


def deprecated_entries() -> dict[str, Any]:
    return {old: {"newModelId": new} for old, new in DEPRECATED_MODEL_IDS.items()}
