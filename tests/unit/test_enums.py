"""Integer enums (google-generativeai's enum-encoding=int) become names before upstream."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

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


_SCALARS = st.none() | st.booleans() | st.integers(-1, 12) | st.text(max_size=4)
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["type", "items", "properties", "anyOf", "mode", "x"]), inner, max_size=3), max_leaves=12)
_GENERATION = st.dictionaries(st.sampled_from(
    ["temperature", "maxOutputTokens", "responseSchema", "responseModalities", "mediaResolution"]), _VALUES, max_size=3)
_REQUESTS = st.fixed_dictionaries({"contents": _VALUES}, optional={
    "generationConfig": _GENERATION | _SCALARS,
    "safetySettings": st.lists(st.dictionaries(st.sampled_from(["category", "threshold"]), _SCALARS) | _SCALARS, max_size=2),
    "toolConfig": st.fixed_dictionaries({"functionCallingConfig": st.dictionaries(st.just("mode"), _SCALARS)}) | _SCALARS,
    "tools": st.lists(st.fixed_dictionaries({"functionDeclarations": st.lists(
        st.fixed_dictionaries({"name": st.just("f"), "parameters": _VALUES}), max_size=2)}) | _SCALARS, max_size=2),
    "systemInstruction": _VALUES,
})


def _reference(request: dict) -> dict:
    """enum_names as it was before its no-copy shortcut: every field it looks at, rebuilt."""
    from gateway.protocol import enums

    out = dict(request)
    settings_ = out.get("safetySettings")
    if isinstance(settings_, list):
        out["safetySettings"] = [
            {**s, "category": enums._name(s.get("category"), enums.HARM_CATEGORY),
             "threshold": enums._name(s.get("threshold"), enums.HARM_BLOCK_THRESHOLD)} if isinstance(s, dict) else s
            for s in settings_
        ]
    config = out.get("toolConfig")
    if isinstance(config, dict) and isinstance(config.get("functionCallingConfig"), dict):
        fcc = dict(config["functionCallingConfig"])
        if "mode" in fcc:
            fcc["mode"] = enums._name(fcc["mode"], enums.FUNCTION_CALLING_MODE)
        out["toolConfig"] = {**config, "functionCallingConfig": fcc}
    if isinstance(out.get("tools"), list):
        out["tools"] = [enums._tool(t) for t in out["tools"]]
    generation = out.get("generationConfig")
    if isinstance(generation, dict):
        generation = dict(generation)
        if "responseSchema" in generation:
            generation["responseSchema"] = enums._schema(generation["responseSchema"])
        if isinstance(generation.get("responseModalities"), list):
            generation["responseModalities"] = [enums._name(m, enums.MODALITY) for m in generation["responseModalities"]]
        if "mediaResolution" in generation:
            generation["mediaResolution"] = enums._name(generation["mediaResolution"], enums.MEDIA_RESOLUTION)
        out["generationConfig"] = generation
    return out


@settings(max_examples=500, derandomize=True, database=None, deadline=None)
@given(request=_REQUESTS)
def test_same_names_as_before_and_no_copy_when_nothing_can_be_an_enum(request: dict) -> None:
    before = copy.deepcopy(request)
    out = enum_names(request)
    assert out == _reference(request)
    assert request == before
    if not ({"safetySettings", "toolConfig", "tools"} & set(request)) and not (
        isinstance(request.get("generationConfig"), dict)
        and {"responseSchema", "responseModalities", "mediaResolution"} & set(request["generationConfig"])
    ):
        assert out is request
