"""The emulator's model catalogue: ids, limits and capabilities upstream reports.

One table feeds ``fetchAvailableModels``, model lookups (404 for the rest),
``maxOutputTokens`` and input-size checks, so every answer agrees on limits.
Pure data: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GEMINI_INPUT = 1_048_576
GEMINI_OUTPUT = 65_536


@dataclass(frozen=True)
class ModelSpec:
    """One upstream model, as the emulator advertises and enforces it."""

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

    @property
    def version(self) -> str:
        """``modelVersion`` answered in responses (the id unless pinned)."""
        return self.model_version or self.id

    @property
    def is_claude(self) -> bool:
        return self.provider == "anthropic"


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("gemini-2.5-pro", "Gemini 2.5 Pro", GEMINI_INPUT, GEMINI_OUTPUT, supports_thinking=True, thinking_budget=32768, recommended=True),
    ModelSpec("gemini-2.5-flash", "Gemini 2.5 Flash", GEMINI_INPUT, GEMINI_OUTPUT, supports_thinking=True, thinking_budget=24576, recommended=True),
    ModelSpec("gemini-2.5-flash-thinking", "Gemini 2.5 Flash (Thinking)", GEMINI_INPUT, GEMINI_OUTPUT, supports_thinking=True, thinking_budget=24576),
    ModelSpec("gemini-2.5-flash-lite", "Gemini 2.5 Flash Lite", GEMINI_INPUT, GEMINI_OUTPUT, supports_thinking=True, thinking_budget=24576),
    ModelSpec("gemini-3-pro-preview", "Gemini 3 Pro (Preview)", GEMINI_INPUT, GEMINI_OUTPUT, supports_thinking=True, thinking_budget=32768, recommended=True),
    ModelSpec("gemini-3-pro-high", "Gemini 3 Pro (High)", GEMINI_INPUT, GEMINI_OUTPUT, supports_thinking=True, thinking_budget=32768),
    ModelSpec("gemini-3-pro-low", "Gemini 3 Pro (Low)", GEMINI_INPUT, GEMINI_OUTPUT, supports_thinking=True, thinking_budget=8192),
    ModelSpec("gemini-3-flash", "Gemini 3 Flash", GEMINI_INPUT, GEMINI_OUTPUT, supports_thinking=True, thinking_budget=24576),
    ModelSpec("gemini-2.5-flash-image", "Gemini 2.5 Flash Image", 32_768, 32_768, image_generation=True),
    ModelSpec("gemini-3.1-flash-image", "Gemini 3.1 Flash Image", 65_536, 32_768, image_generation=True),
    ModelSpec("gemini-3-pro-image", "Gemini 3 Pro Image", 65_536, 32_768, supports_thinking=True, thinking_budget=8192, image_generation=True),
    ModelSpec("claude-sonnet-4-5", "Claude Sonnet 4.5", 200_000, 64_000, provider="anthropic"),
    ModelSpec("claude-sonnet-4-5-thinking", "Claude Sonnet 4.5 (Thinking)", 200_000, 64_000, supports_thinking=True, thinking_budget=32_000, provider="anthropic"),
    ModelSpec("claude-opus-4-5-thinking", "Claude Opus 4.5 (Thinking)", 200_000, 64_000, supports_thinking=True, thinking_budget=32_000, provider="anthropic"),
    ModelSpec("claude-sonnet-4-6", "Claude Sonnet 4.6", 200_000, 64_000, supports_thinking=True, thinking_budget=32_000, provider="anthropic"),
    ModelSpec("claude-opus-4-6-thinking", "Claude Opus 4.6 (Thinking)", 200_000, 64_000, supports_thinking=True, thinking_budget=32_000, provider="anthropic"),
)

#: Old ids upstream still names in ``deprecatedModelIds`` (emulator's guess at the shape).
DEPRECATED_MODEL_IDS: dict[str, str] = {
    "gemini-2.5-pro-preview-06-05": "gemini-2.5-pro",
    "gemini-2.5-flash-preview-05-20": "gemini-2.5-flash",
}

_BY_ID: dict[str, ModelSpec] = {m.id: m for m in MODELS}


def get_model(model_id: str) -> ModelSpec | None:
    """The spec for a bare id, or None (callers answer 404)."""
    return _BY_ID.get(model_id)


def model_ids() -> list[str]:
    return [m.id for m in MODELS]


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
        "apiProvider": "API_PROVIDER_ANTHROPIC_VERTEX" if spec.is_claude else "API_PROVIDER_GOOGLE_GEMINI",
        "modelProvider": "MODEL_PROVIDER_ANTHROPIC" if spec.is_claude else "MODEL_PROVIDER_GOOGLE",
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
