"""The emulator answers like a model: tool choice, schema-valid arguments, JSON mode, thinking, grounding.

Every generated value is checked with the ``jsonschema`` validator (a test
extra): frameworks validate what a model returns the same way.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from gateway.emulator import answers
from gateway.emulator.catalogue import get_model
from gateway.emulator.content import plan_answer, validate_request
from gateway.protocol.errors import GatewayError

FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


def valid(schema: dict[str, Any], value: Any) -> None:
    jsonschema.Draft202012Validator(schema, format_checker=FORMATS).validate(value)


def lower_types(schema: Any) -> Any:
    """A Gemini (OpenAPI subset, upper-case types) schema as JSON Schema, for the validator."""
    if isinstance(schema, dict):
        out = {k: lower_types(v) for k, v in schema.items() if k != "nullable"}
        if isinstance(out.get("type"), str):
            out["type"] = out["type"].lower()
            if schema.get("nullable"):
                out["type"] = [out["type"], "null"]
        return out
    if isinstance(schema, list):
        return [lower_types(v) for v in schema]
    return schema


SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
     "required": ["city", "unit"]},
    {"type": "object", "properties": {
        "a": {"type": "integer", "minimum": 5, "maximum": 9},
        "b": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "c": {"type": "integer", "multipleOf": 7, "minimum": 20},
        "d": {"type": "boolean"},
        "e": {"type": "null"},
    }, "required": ["a", "b", "c", "d", "e"]},
    {"type": "object", "properties": {
        "when": {"type": "string", "format": "date-time"}, "day": {"type": "string", "format": "date"},
        "mail": {"type": "string", "format": "email"}, "site": {"type": "string", "format": "uri"},
        "id": {"type": "string", "format": "uuid"}, "ip": {"type": "string", "format": "ipv4"},
        "code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"},
        "short": {"type": "string", "maxLength": 3}, "long": {"type": "string", "minLength": 300},
    }, "required": ["when", "day", "mail", "site", "id", "ip", "code", "short", "long"]},
    {"type": "object", "properties": {"items": {"type": "array", "minItems": 3, "maxItems": 3, "uniqueItems": True,
                                                 "items": {"type": "string", "enum": ["x", "y", "z"]}},
                                       "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True,
                                                "minItems": 2}},
     "required": ["items", "tags"], "additionalProperties": False},
    {"$defs": {"Person": {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
                          "required": ["name", "age"], "additionalProperties": False}},
     "type": "object", "properties": {"people": {"type": "array", "items": {"$ref": "#/$defs/Person"}, "minItems": 1},
                                      "owner": {"$ref": "#/$defs/Person"}},
     "required": ["people", "owner"]},
    {"type": "object", "properties": {
        "maybe": {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 3}]},
        "either": {"oneOf": [{"type": "string", "const": "yes"}, {"type": "integer"}]},
        "both": {"allOf": [{"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]},
                           {"properties": {"y": {"type": "integer"}}, "required": ["y"]}]},
        "typed": {"type": ["string", "null"], "minLength": 2},
        "fixed": {"const": 42},
    }, "required": ["maybe", "either", "both", "typed", "fixed"]},
    {"type": "object", "properties": {"deep": {"type": "object", "properties": {"deeper": {"type": "object",
        "properties": {"leaf": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "number"}},
                                                           "required": ["n"]}}}, "required": ["leaf"]}},
        "required": ["deeper"]}}, "required": ["deep"]},
    {"type": "object", "minProperties": 2, "additionalProperties": {"type": "integer"}},
    {"type": "string", "enum": ["red", "green", "blue"]},
    {"type": "array", "items": {"type": "integer"}, "minItems": 2},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=[f"schema{i}" for i in range(len(SCHEMAS))])
def test_generated_values_validate(schema: dict[str, Any]) -> None:
    for text in ("", "What is the weather in Paris today? Use `ls -l` and 12 and 7", "green please"):
        valid(schema, answers.schema_value(schema, answers.Hint(text)))


def test_gemini_schema_with_upper_case_types_and_nullable() -> None:
    schema = {"type": "OBJECT", "properties": {
        "city": {"type": "STRING", "description": "City name"},
        "days": {"type": "INTEGER", "minimum": 1, "maximum": 10},
        "hourly": {"type": "BOOLEAN", "nullable": True},
        "kinds": {"type": "ARRAY", "items": {"type": "STRING", "enum": ["rain", "sun"]}},
    }, "required": ["city", "days", "hourly", "kinds"]}
    value = answers.schema_value(schema, answers.Hint("Weather in Berlin for 3 days, rain only"))
    valid(lower_types(schema), value)
    assert value["city"] == "Berlin" and value["days"] == 3 and value["kinds"] == ["rain"]


def test_values_come_from_the_user_text() -> None:
    schema = {"type": "object", "properties": {"command": {"type": "string"}, "description": {"type": "string"}},
              "required": ["command"]}
    assert answers.schema_value(schema, answers.Hint("Please run `echo hi` now")) == {"command": "echo hi"}
    numbers = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}
    assert answers.schema_value(numbers, answers.Hint("add 2 and 3.5")) == {"a": 2, "b": 3.5}


def test_optional_fields_are_left_out_when_some_are_required() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}, "limit": {"type": "integer"}}, "required": ["q"]}
    assert set(answers.schema_value(schema, answers.Hint("x"))) == {"q"}
    assert set(answers.schema_value({"type": "object", "properties": {"q": {"type": "string"}}}, answers.Hint("x"))) == {"q"}


def test_recursive_schema_terminates() -> None:
    schema = {"$defs": {"Node": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}},
              "$ref": "#/$defs/Node"}
    valid(schema, answers.schema_value(schema))


# -- choosing tools --

TOOLS = [
    answers.Tool("get_weather", "Get the current weather for a city", {"type": "object"}),
    answers.Tool("Bash", "Executes a given bash command in a shell", {"type": "object"}),
    answers.Tool("search_docs", "Search the documentation", {"type": "object"}),
]


@pytest.mark.parametrize(("said", "mode", "allowed", "after", "expected"), [
    ("What's the weather in Paris?", "AUTO", [], False, "get_weather"),
    ("Use bash to run `ls`", "VALIDATED", [], False, "Bash"),
    ("Hello there", "AUTO", [], False, None),
    ("Hello there", "ANY", [], False, "get_weather"),
    ("Hello there", "ANY", ["search_docs"], False, "search_docs"),
    ("What's the weather?", "ANY", ["Bash"], False, "Bash"),
    ("What's the weather?", "NONE", [], False, None),
    ("What's the weather?", "AUTO", [], True, None),
    ("What's the weather?", "ANY", [], True, "get_weather"),
    ("please call function search_docs", "AUTO", [], False, "search_docs"),
    ("please call function missing", "AUTO", [], False, None),
    ("Search the documentation for tokens", "AUTO", [], False, "search_docs"),
])
def test_choose_tool(said: str, mode: str, allowed: list[str], after: bool, expected: str | None) -> None:
    chosen = answers.choose_tool(TOOLS, said, mode, allowed, after)
    assert (chosen.name if chosen else None) == expected


def test_name_words() -> None:
    assert answers.name_words("getWeatherForecast") == ["get", "weather", "forecast"]
    assert answers.name_words("mcp__server.read-file:v2") == ["mcp", "server", "read", "file", "v2"]
    assert answers.name_words("HTTPRequest") == ["http", "request"]


# -- whole answers through plan_answer --


def plan(request: dict[str, Any], model: str = "gemini-3-flash"):
    spec = get_model(model)
    return plan_answer(validate_request(request, spec), spec, "req-1", 3)


WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"},
                                                            "unit": {"type": "STRING", "enum": ["celsius", "fahrenheit"]}},
                          "required": ["city", "unit"]}}


def test_plan_calls_a_tool_with_valid_arguments() -> None:
    answer = plan({"contents": [{"role": "user", "parts": [{"text": "How is the weather in Rome?"}]}],
                   "tools": [{"functionDeclarations": [WEATHER]}]})
    assert answer.function_call == {"name": "get_weather", "args": {"city": "Rome", "unit": "celsius"}}
    assert answer.call_signature  # Gemini 3 signs its calls


def test_plan_ignores_parameters_json_schema_as_cloud_code_does() -> None:
    """Cloud Code's model sees a parametersJsonSchema tool without parameters (PROTOCOL.md 2b): empty args."""
    decl = {"name": "extract", "parametersJsonSchema": {"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}},
                                                        "required": ["n"], "additionalProperties": False}}
    answer = plan({"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "tools": [{"functionDeclarations": [decl]}],
                   "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["extract"]}}})
    assert answer.function_call == {"name": "extract", "args": {}}


def test_plan_forced_choice_with_a_json_schema_in_parameters() -> None:
    """What the gateway's hygiene sends instead: the schema as (cleaned) parameters, args valid against it."""
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}}, "required": ["n"]}
    answer = plan({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                   "tools": [{"functionDeclarations": [{"name": "extract", "parameters": schema}]}],
                   "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["extract"]}}})
    assert answer.function_call["name"] == "extract"
    valid(schema, answer.function_call["args"])


def test_plan_answers_text_after_function_results() -> None:
    answer = plan({"contents": [
        {"role": "user", "parts": [{"text": "weather in Rome?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}, "thoughtSignature": "c2ln"}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}]},
    ], "tools": [{"functionDeclarations": [WEATHER]}]})
    assert answer.function_call is None and answer.text == 'Results: get_weather={"output":"sunny"}'


@pytest.mark.parametrize("key", ["responseSchema", "responseJsonSchema"])
def test_plan_json_mode_with_schema(key: str) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "score": {"type": "integer", "minimum": 1, "maximum": 5}},
              "required": ["name", "score"]}
    answer = plan({"contents": [{"role": "user", "parts": [{"text": "Rate \"Dune\""}]}],
                   "generationConfig": {"responseMimeType": "application/json", key: schema}})
    value = json.loads(answer.text)
    valid(schema, value)
    assert value["name"] == "Dune"


def test_plan_json_mode_without_schema_is_an_object() -> None:
    answer = plan({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                   "generationConfig": {"responseMimeType": "application/json"}})
    assert isinstance(json.loads(answer.text), dict)


def test_plan_thinking_and_grounding() -> None:
    answer = plan({"contents": [{"role": "user", "parts": [{"text": "latest news on Mars"}]}], "tools": [{"googleSearch": {}}],
                   "generationConfig": {"thinkingConfig": {"includeThoughts": True, "thinkingLevel": "LOW"}}})
    assert answer.thought == "Thinking about: latest news on Mars" and answer.signature
    metadata = answer.extra["groundingMetadata"]
    assert metadata["webSearchQueries"] == ["latest news on Mars"]
    assert [c["web"]["uri"].startswith("https://") for c in metadata["groundingChunks"]] == [True, True]


def test_rules_refuse_search_beside_functions_and_claude_thinking_combinations() -> None:
    with pytest.raises(GatewayError, match="all search tools"):
        plan({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
              "tools": [{"googleSearch": {}}, {"functionDeclarations": [WEATHER]}]})
    thinking = {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 2048}, "maxOutputTokens": 8192}
    with pytest.raises(GatewayError, match="temperature may only be set to 1"):
        plan({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
              "generationConfig": {**thinking, "temperature": 0.2}}, "claude-sonnet-4-6")
    with pytest.raises(GatewayError, match="forces tool use"):
        plan({"contents": [{"role": "user", "parts": [{"text": "x"}]}], "tools": [{"functionDeclarations": [WEATHER]}],
              "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}, "generationConfig": thinking}, "claude-sonnet-4-6")
    plan({"contents": [{"role": "user", "parts": [{"text": "x"}]}], "generationConfig": {**thinking, "temperature": 1}},
         "claude-sonnet-4-6")


def test_help_says_how_to_steer_the_model() -> None:
    from gateway.emulator.tap import Options

    text = str(Options())
    for needle in ("call function NAME", "mode ANY", "responseJsonSchema", "includeThoughts", "googleSearch",
                   "stream N events", "/_emulator/faults", "docs/emulator.md"):
        assert needle in text
