"""Function-name sanitising (round trip) and the thought-signature memory."""

from __future__ import annotations

import pytest

from gateway.compat.names import NameMap, is_valid, sanitise
from gateway.compat.signatures import (
    SKIP_SIGNATURE,
    SignatureMemory,
    call_signature,
    model_family,
    thinking_signature,
)


@pytest.mark.parametrize("name", ["get_weather", "a.b:c-d", "_x", "A" * 64])
def test_valid_names_are_unchanged(name: str) -> None:
    assert sanitise(name) == name


@pytest.mark.parametrize("name", ["get weather", "1tool", "$fn", "naïve", "", "a" * 65, "mcp__server__tool/with/slash" * 3])
def test_invalid_names_become_valid(name: str) -> None:
    safe = sanitise(name)
    assert is_valid(safe) and len(safe) <= 64


def test_long_names_with_a_shared_prefix_stay_distinct() -> None:
    a, b = "x" * 70 + "one", "x" * 70 + "two"
    assert sanitise(a) != sanitise(b)


def test_name_map_round_trip_and_collisions() -> None:
    names = NameMap(["get weather", "get_weather", "1st"])
    safe = [names.safe("get weather"), names.safe("get_weather"), names.safe("1st")]
    assert len(set(safe)) == 3 and all(is_valid(s) for s in safe)
    assert [names.client(s) for s in safe] == ["get weather", "get_weather", "1st"]
    assert names.safe("get weather") == safe[0]  # stable
    assert names.client("not_in_request") == "not_in_request"


def test_model_families() -> None:
    assert model_family("claude-sonnet-4-6") == "claude" == model_family("models/claude-opus-4-6-thinking")
    assert model_family("gemini-3-pro-preview") == "gemini-3" == model_family("gemini-3-flash")
    assert model_family("gemini-2.5-flash") == "gemini-2"


def test_memory_by_call_id_with_ttl() -> None:
    memory = SignatureMemory(ttl=100)
    memory.remember("sig-1", "gemini-3-flash", now=0, call_id="call_1")
    assert memory.for_call("call_1", now=99) == ("sig-1", "gemini-3")
    assert memory.for_call("call_1", now=100) is None
    assert memory.family_of("sig-1", now=100) is None
    assert memory.for_call("call_2", now=1) is None


def test_memory_is_bounded() -> None:
    memory = SignatureMemory(ttl=1000, max_entries=3)
    for i in range(5):
        memory.remember(f"s{i}", "gemini-3-flash", now=i, call_id=f"c{i}")
    assert memory.for_call("c0", now=5) is None and memory.for_call("c4", now=5) == ("s4", "gemini-3")


def test_call_signature_restores_only_within_the_family() -> None:
    memory = SignatureMemory()
    memory.remember("g3", "gemini-3-flash", now=0, call_id="call_g")
    memory.remember("cl", "claude-sonnet-4-6", now=0, call_id="call_c")
    assert call_signature(memory, "call_g", None, "gemini-3-pro-preview", 1) == "g3"
    assert call_signature(memory, "call_g", None, "claude-sonnet-4-6", 1) is None
    assert call_signature(memory, "call_c", None, "gemini-3-flash", 1) is None
    # the client's own signature: kept when of this family or of unknown origin on Gemini
    assert call_signature(memory, "x", "g3", "gemini-3-flash", 1) == "g3"
    assert call_signature(memory, "x", "unknown", "gemini-3-flash", 1) == "unknown"
    assert call_signature(memory, "x", "unknown", "claude-sonnet-4-6", 1) is None
    assert call_signature(memory, "x", "cl", "gemini-3-flash", 1) is None
    assert SKIP_SIGNATURE == "skip_thought_signature_validator"


def test_thinking_signatures_are_never_invented_nor_crossed() -> None:
    memory = SignatureMemory()
    memory.remember("claude-sig", "claude-sonnet-4-6", now=0)
    assert thinking_signature(memory, "claude-sig", "claude-opus-4-6-thinking", 1) == "claude-sig"
    assert thinking_signature(memory, "claude-sig", "gemini-2.5-flash", 1) is None
    assert thinking_signature(memory, "forged", "claude-sonnet-4-6", 1) is None
    assert thinking_signature(memory, "", "claude-sonnet-4-6", 1) is None
