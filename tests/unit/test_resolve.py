"""Model resolution against a live catalogue: exact, deprecated, mapping, aliases by family and tier, 404."""

from __future__ import annotations

import pytest

from gateway.emulator import catalogue as emulated
from gateway.plugins.builtin import TableMapper
from gateway.protocol.catalogue import Catalogue, catalogue_from_answer
from gateway.protocol.errors import GatewayError
from gateway.protocol.resolve import alias, resolve


def today() -> Catalogue:
    """The emulator's catalogue (Cloud Code, August 2026) as fetchAvailableModels answers it."""
    models = {m.id: emulated.model_entry(m, 1.0, "2030-01-01T00:00:00Z") for m in emulated.MODELS}
    return catalogue_from_answer({"models": models, "deprecatedModelIds": emulated.deprecated_entries()})


def without(cat: Catalogue, *ids: str) -> Catalogue:
    return Catalogue({k: v for k, v in cat.models.items() if k not in ids}, cat.deprecated)


@pytest.mark.parametrize("asked, served", [
    ("gemini-2.5-flash", "gemini-3.7-flash-high"),
    ("gemini-2.0-flash", "gemini-3.7-flash-high"),
    ("gemini-flash-latest", "gemini-3.7-flash-high"),
    ("gemini-2.5-pro", "gemini-3.1-pro-low"),
    ("gemini-pro-latest", "gemini-3.1-pro-low"),
    ("gemini-3-pro-preview", "gemini-3.1-pro-low"),
    ("gemini-3.1-pro-preview", "gemini-3.1-pro-low"),
    ("gemini-3.5-flash-lite", "gemini-3.1-flash-lite"),
    ("gemini-2.5-flash-image", "gemini-3.1-flash-image"),
    ("claude-opus-4-8", "claude-opus-4-6-thinking"),
    ("claude-opus-4-1-20250805", "claude-opus-4-6-thinking"),
    ("opus", "claude-opus-4-6-thinking"),
    ("claude-sonnet-5", "claude-sonnet-4-6"),
    ("claude-3-7-sonnet-latest", "claude-sonnet-4-6"),
    ("sonnet", "claude-sonnet-4-6"),
    ("claude-haiku-4-5-20251001", "gemini-3.1-flash-lite"),
    ("haiku", "gemini-3.1-flash-lite"),
    ("gpt-4o", "gemini-3.7-flash-high"),
    ("gpt-5", "gemini-3.7-flash-high"),
    ("gpt-4o-mini", "gemini-3.1-flash-lite"),
    ("o3", "gemini-3.1-pro-low"),
    ("o4-mini", "gemini-3.1-flash-lite"),
    ("gpt-oss-20b", "gpt-oss-120b-medium"),
])
def test_aliases_pick_by_family_and_tier_in_the_live_catalogue(asked: str, served: str) -> None:
    found = resolve(asked, today())
    assert (found.model, found.how) == (served, "alias")


def test_exact_ids_and_the_models_prefix() -> None:
    assert resolve("gemini-3-flash", today()).model == "gemini-3-flash"
    assert resolve("models/gemini-pro-agent", today()).how == "exact"


def test_deprecated_ids_follow_upstream() -> None:
    found = resolve("claude-sonnet-4-5", today())
    assert (found.model, found.how) == ("claude-sonnet-4-6", "deprecated")


def test_the_operator_mapping_comes_before_aliases_and_its_target_is_resolved_again() -> None:
    mapper = TableMapper({"gpt-4o": "gemini-3-flash", "my-model": "gemini-2.5-pro", "gemini-3-flash": "claude-sonnet-4-6"})
    assert resolve("gpt-4o", today(), mapper.map).model == "gemini-3-flash"
    assert resolve("my-model", today(), mapper.map).model == "gemini-3.1-pro-low"  # a retired target still works
    assert resolve("gemini-3-flash", today(), mapper.map).model == "gemini-3-flash"  # exact ids come first


def test_picks_follow_the_catalogue_when_models_vanish() -> None:
    cat = without(today(), "gemini-3.7-flash-high")
    assert resolve("gemini-2.5-flash", cat).model == "gemini-3.6-flash-high"
    no_opus = without(today(), "claude-opus-4-6-thinking")
    assert resolve("claude-opus-4-8", no_opus).model == "claude-sonnet-4-6"
    no_claude = without(no_opus, "claude-sonnet-4-6")
    assert resolve("claude-opus-4-8", no_claude).model == "gemini-3.1-pro-low"
    no_lite = without(today(), "gemini-3.1-flash-lite")
    assert resolve("haiku", no_lite).model == "gemini-3.5-flash-extra-low"  # the lightest flash
    assert alias(Catalogue(), "gemini-2.5-flash") is None


def test_unknown_models_get_a_404_naming_them_and_the_served_ids() -> None:
    with pytest.raises(GatewayError) as caught:
        resolve("llama-3-70b", today())
    err = caught.value
    assert err.code == 404 and "'llama-3-70b'" in err.message
    assert "gemini-3-flash" in err.message and "claude-sonnet-4-6" in err.message


def test_without_a_catalogue_only_the_mapping_applies() -> None:
    mapper = TableMapper({"gpt-4o": "gemini-3-flash"})
    assert resolve("gpt-4o", None, mapper.map).model == "gemini-3-flash"
    assert resolve("gemini-2.5-flash", None, mapper.map).how == "unchecked"


def test_families_come_from_the_catalogue() -> None:
    cat = today()
    assert cat.get("gemini-pro-agent").gemini3 and cat.get("gemini-3-flash").gemini3
    assert not cat.get("claude-sonnet-4-6").gemini3 and not cat.get("gpt-oss-120b-medium").gemini3
    assert cat.get("gemini-3-flash").max_output == emulated.GEMINI_OUTPUT
    bare = catalogue_from_answer({"models": {"gemini-2.5-flash": {"displayName": "Gemini 2.5 Flash"}, "gemini-x-agent": {}}})
    assert bare.get("gemini-2.5-flash").family == "gemini-2" and bare.get("gemini-x-agent").gemini3
