"""Model names at the compat doors and the one models answer for three SDKs."""

from __future__ import annotations

import pytest

from gateway.compat.models import DEFAULT_MAPPING, list_answer, model_answer, resolve
from gateway.plugins.builtin import TableMapper


@pytest.mark.parametrize("asked, upstream", [
    ("gpt-4o", "gemini-2.5-flash"), ("gpt-4.1-mini", "gemini-2.5-flash"), ("o3-mini", "gemini-2.5-pro"),
    ("claude-sonnet-4-5", "claude-sonnet-4-6"), ("claude-sonnet-4-6", "claude-sonnet-4-6"),
    ("claude-3-5-haiku-20241022", "gemini-3-flash"), ("claude-haiku-4-5-20251001", "gemini-3-flash"),
    # Claude Code 2.1.x: opus (its default), sonnet, haiku (its background model) and the bare aliases
    ("claude-opus-4-8", "claude-opus-4-6-thinking"), ("claude-sonnet-5", "claude-sonnet-4-6"), ("opus", "claude-opus-4-6-thinking"),
    ("sonnet", "claude-sonnet-4-6"), ("haiku", "gemini-3-flash"),
    ("claude-opus-4-6", "claude-opus-4-6-thinking"), ("gemini-2.5-pro", "gemini-2.5-pro"), ("models/gemini-3-flash", "gemini-3-flash"),
])
def test_defaults_apply_when_the_config_has_no_entry(asked: str, upstream: str) -> None:
    assert resolve(TableMapper({}), asked) == upstream


def test_configured_entries_win() -> None:
    mapper = TableMapper({"gpt-4o": "gemini-3-pro-preview", "claude-*": "gemini-2.5-pro"})
    assert resolve(mapper, "gpt-4o") == "gemini-3-pro-preview"
    assert resolve(mapper, "claude-3-5-haiku-latest") == "gemini-2.5-pro"
    assert resolve(mapper, "gpt-4o-mini") == DEFAULT_MAPPING["gpt-*"]


CATALOGUE = [{"name": "models/claude-sonnet-4-6", "displayName": "Claude Sonnet 4.6"},
             {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash"}]


def test_list_answer_carries_all_shapes() -> None:
    page = {"models": CATALOGUE[:1], "nextPageToken": "t"}
    plain = list_answer(page, CATALOGUE, anthropic=False)
    assert plain["models"] == CATALOGUE[:1] and plain["nextPageToken"] == "t" and plain["object"] == "list"
    assert plain["data"] == [{"id": "claude-sonnet-4-6", "object": "model", "created": 1735689600, "owned_by": "anthropic"},
                             {"id": "gemini-2.5-flash", "object": "model", "created": 1735689600, "owned_by": "google"}]
    assert "has_more" not in plain
    claude = list_answer(page, CATALOGUE, anthropic=True)
    assert claude["data"][0]["type"] == "model" and claude["data"][0]["display_name"] == "Claude Sonnet 4.6"
    assert claude["data"][0]["created_at"] == "2025-01-01T00:00:00Z"
    assert claude["has_more"] is False and claude["first_id"] == "claude-sonnet-4-6" and claude["last_id"] == "gemini-2.5-flash"
    assert list_answer({"models": []}, [], anthropic=True)["first_id"] is None


def test_model_answer() -> None:
    one = model_answer(CATALOGUE[1], anthropic=False)
    assert one["name"] == "models/gemini-2.5-flash" and one["id"] == "gemini-2.5-flash" and one["object"] == "model"
    assert model_answer(CATALOGUE[1], anthropic=True)["display_name"] == "Gemini 2.5 Flash"
