"""Model names at the compat doors and the one models answer for three SDKs."""

from __future__ import annotations

import pytest

from gateway.compat.models import list_answer, model_answer, resolve
from gateway.plugins.builtin import TableMapper


def test_a_plain_mapper_still_works_without_the_live_resolver() -> None:
    """Doors written against an IModelMapper keep their mapping (resolution proper: test_resolve)."""
    mapper = TableMapper({"gpt-4o": "gemini-3-flash"})
    assert resolve(mapper, "gpt-4o") == "gemini-3-flash"
    assert resolve(mapper, "models/gemini-3-flash") == "gemini-3-flash"


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
