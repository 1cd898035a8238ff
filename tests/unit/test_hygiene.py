"""The shared pre-upstream step: tool schemas, output caps, signature sentinels, identity block."""

from __future__ import annotations

import copy

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
