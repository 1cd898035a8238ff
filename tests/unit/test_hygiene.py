"""The shared pre-upstream step: tool schemas, output caps, signature sentinels, identity block."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocol.catalogue import catalogue_from_answer
from gateway.protocol.hygiene import AGENT_SDK_IDENTITY, CLAUDE_CODE_IDENTITY, clean_request

CAT = catalogue_from_answer({"models": {
    "gemini-pro-agent": {"displayName": "Gemini Pro (Agent)", "maxOutputTokens": 65536, "modelFamily": "gemini-3"},
    "claude-sonnet-4-6": {"maxOutputTokens": 64000, "modelProvider": "MODEL_PROVIDER_ANTHROPIC"},
}})
CALL_TURN = {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}


def test_parameters_json_schema_becomes_clean_parameters_with_refs_inlined() -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "properties": {"where": {"$ref": "#/$defs/place"}}, "required": ["where"],
              "additionalProperties": False, "$defs": {"place": {"type": "string", "title": "Place"}}}
    request = {"contents": [], "tools": [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": schema}]},
                                          {"function_declarations": [{"name": "g", "parameters_json_schema": {"type": "object"}}]}]}
    original = copy.deepcopy(request)
    fixed = clean_request(request, "gemini-pro-agent", CAT)
    decl = fixed["tools"][0]["functionDeclarations"][0]
    assert "parametersJsonSchema" not in decl
    assert decl["parameters"]["properties"]["where"]["type"] == "string"
    assert "$defs" not in decl["parameters"] and "additionalProperties" not in decl["parameters"]
    assert fixed["tools"][1]["function_declarations"][0]["parameters"] == {"type": "object", "properties": {}}
    assert request == original  # the caller's request is not changed


def test_max_output_tokens_is_clamped_to_the_catalogue_limit() -> None:
    fixed = clean_request({"contents": [], "generationConfig": {"maxOutputTokens": 100_000}}, "claude-sonnet-4-6", CAT)
    assert fixed["generationConfig"]["maxOutputTokens"] == 64000
    same = {"contents": [], "generationConfig": {"maxOutputTokens": 1000}}
    assert clean_request(same, "claude-sonnet-4-6", CAT) is same  # nothing to do: no copy
    assert clean_request({"contents": [], "generationConfig": {"maxOutputTokens": 10**6}}, "unknown", CAT)["generationConfig"]["maxOutputTokens"] == 10**6


def test_gemini3_family_from_the_catalogue_gets_the_signature_sentinel() -> None:
    request = {"contents": [{"role": "user", "parts": [{"text": "go"}]}, CALL_TURN]}
    fixed = clean_request(request, "gemini-pro-agent", CAT)
    assert fixed["contents"][1]["parts"][0]["thoughtSignature"] == "skip_thought_signature_validator"
    signed = {"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f"}, "thoughtSignature": "real"}]}]}
    assert clean_request(signed, "gemini-pro-agent", CAT)["contents"][0]["parts"][0]["thoughtSignature"] == "real"
    assert "thoughtSignature" not in clean_request(request, "claude-sonnet-4-6", CAT)["contents"][1]["parts"][0]


def test_the_agent_sdk_identity_block_is_replaced_on_exact_match_only() -> None:
    request = {"contents": [], "systemInstruction": {"parts": [{"text": AGENT_SDK_IDENTITY}, {"text": "Be brief."}]}}
    fixed = clean_request(request, "claude-sonnet-4-6", CAT)
    assert [p["text"] for p in fixed["systemInstruction"]["parts"]] == [CLAUDE_CODE_IDENTITY, "Be brief."]
    longer = {"contents": [], "systemInstruction": {"parts": [{"text": AGENT_SDK_IDENTITY + " Also do X."}]}}
    assert clean_request(longer, "claude-sonnet-4-6", CAT) is longer
    assert clean_request({"contents": [], "system_instruction": AGENT_SDK_IDENTITY}, "x", None)["system_instruction"] == CLAUDE_CODE_IDENTITY


def test_the_read_only_probe_agrees_with_the_fixes() -> None:
    """``clean_request`` copies exactly when a fix changes something (the probe reads, never copies)."""
    cases = [
        {"contents": [], "systemInstruction": " " + AGENT_SDK_IDENTITY + "\n"},
        {"contents": [], "system_instruction": {"parts": [{"text": "x"}, {"text": AGENT_SDK_IDENTITY}]}},
        {"contents": [], "systemInstruction": {"parts": [{"text": 3}, "junk", {"text": "Be brief."}]}},
        {"contents": [], "systemInstruction": {"parts": "junk"}},
        {"contents": [], "generation_config": {"max_output_tokens": 64001}},
        {"contents": [], "generationConfig": {"maxOutputTokens": True}},
        {"contents": [], "generationConfig": {"maxOutputTokens": 64000}},
    ]
    for request in cases:
        original = copy.deepcopy(request)
        fixed = clean_request(request, "claude-sonnet-4-6", CAT)
        assert request == original
        assert (fixed is request) == (fixed == original), request


def _fixes_change(request: dict, model: str) -> bool:
    """Whether the fixes, applied as ``clean_request`` applies them, change anything (on a copy)."""
    from gateway.protocol.hygiene import clamp_output, fix_tool_schemas, normalise_identity, sign_history_calls

    fixed = copy.deepcopy(request)
    changed = fix_tool_schemas(fixed)
    changed = normalise_identity(fixed) or changed
    live = CAT.get(model)
    if live is not None:
        changed = clamp_output(fixed, live.max_output) or changed
        if live.gemini3:
            changed = sign_history_calls(fixed) or changed
    return changed


JUNK = st.none() | st.integers(-2, 70000) | st.booleans() | st.text(max_size=3)
TEXTS = st.sampled_from([AGENT_SDK_IDENTITY, " " + AGENT_SDK_IDENTITY + "\n", "Be brief.", ""]) | JUNK
SYSTEMS = TEXTS | st.fixed_dictionaries({"parts": st.lists(st.fixed_dictionaries({"text": TEXTS}) | JUNK, max_size=3) | JUNK})
CONFIGS = st.dictionaries(st.sampled_from(["maxOutputTokens", "max_output_tokens", "temperature"]), JUNK, max_size=2) | JUNK
PARTS = st.lists(
    st.fixed_dictionaries({}, optional={
        "functionCall": st.just({"name": "f", "args": {}}), "function_call": st.just({"name": "f"}),
        "thoughtSignature": st.sampled_from(["", "sig"]), "thought_signature": st.sampled_from(["", "sig"]),
        "text": st.just("t"),
    }) | JUNK,
    max_size=3,
)
TURNS = st.lists(st.fixed_dictionaries({"parts": PARTS | JUNK}, optional={"role": st.sampled_from(["user", "model"])}) | JUNK, max_size=3)
DECLS = st.lists(st.fixed_dictionaries({"name": st.just("f")}, optional={
    "parametersJsonSchema": st.just({"type": "object", "properties": {}}),
    "parameters_json_schema": st.just({"type": "object"}),
    "parameters": st.just({"type": "OBJECT"}),
}) | JUNK, max_size=2)
TOOLS = st.lists(st.fixed_dictionaries({}, optional={"functionDeclarations": DECLS | JUNK, "function_declarations": DECLS}) | JUNK, max_size=2) | JUNK
REQUESTS = st.fixed_dictionaries({"contents": TURNS}, optional={
    "systemInstruction": SYSTEMS, "system_instruction": SYSTEMS, "generationConfig": CONFIGS,
    "generation_config": CONFIGS, "tools": TOOLS,
})


@settings(max_examples=500, derandomize=True, database=None, deadline=None)
@given(request=REQUESTS, model=st.sampled_from(["gemini-pro-agent", "claude-sonnet-4-6", "models/gemini-pro-agent", "unknown"]))
def test_the_probe_copies_exactly_when_a_fix_would_change_something(request: dict, model: str) -> None:
    original = copy.deepcopy(request)
    fixed = clean_request(request, model, CAT)
    assert request == original
    assert (fixed is not request) == _fixes_change(request, model)
    assert clean_request(request, model, None) is request or _fixes_change(request, "unknown")
