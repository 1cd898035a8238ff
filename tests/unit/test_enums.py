"""Integer enums (google-generativeai's enum-encoding=int) become names before upstream."""

from __future__ import annotations

import copy

from gateway.protocol.enums import enum_names


def test_safety_settings_use_generative_language_numbering() -> None:
    request = {"contents": [], "safetySettings": [{"category": 8, "threshold": 4}, {"category": "HARM_CATEGORY_HARASSMENT", "threshold": 2}]}
    before = copy.deepcopy(request)
    out = enum_names(request)
    assert out["safetySettings"] == [
        {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"},
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_MEDIUM_AND_ABOVE"},
    ]
    assert request == before


def test_tool_config_schema_types_and_generation_enums() -> None:
    request = {
        "toolConfig": {"functionCallingConfig": {"mode": 2, "allowedFunctionNames": ["f"]}},
        "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": 6, "properties": {"x": {"type": 1}, "l": {"type": 5, "items": {"type": 3}}}}}]}],
        "generationConfig": {"responseSchema": {"type": 6, "properties": {"n": {"type": 2}}}, "responseModalities": [1, 2], "mediaResolution": 1},
    }
    out = enum_names(request)
    assert out["toolConfig"]["functionCallingConfig"] == {"mode": "ANY", "allowedFunctionNames": ["f"]}
    params = out["tools"][0]["functionDeclarations"][0]["parameters"]
    assert params["type"] == "OBJECT" and params["properties"]["x"]["type"] == "STRING"
    assert params["properties"]["l"]["items"]["type"] == "INTEGER"
    assert out["generationConfig"]["responseSchema"]["properties"]["n"]["type"] == "NUMBER"
    assert out["generationConfig"]["responseModalities"] == ["TEXT", "IMAGE"]
    assert out["generationConfig"]["mediaResolution"] == "MEDIA_RESOLUTION_LOW"


def test_unknown_numbers_and_names_pass_untouched() -> None:
    request = {"safetySettings": [{"category": 99, "threshold": "BLOCK_NONE"}], "contents": [{"parts": [{"text": "x"}]}]}
    assert enum_names(request) == request
