"""JSON Schema cleaning (COMPAT.md: applied to schemas only, never to the whole request)."""

from __future__ import annotations

import copy

import pytest

from gateway.compat.schema import clean_schema, parameters_schema


def test_local_refs_are_inlined_and_defs_dropped() -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "x", "type": "object",
              "$defs": {"City": {"type": "string", "description": "a city"}},
              "definitions": {"N": {"type": "integer"}},
              "properties": {"city": {"$ref": "#/$defs/City"}, "n": {"$ref": "#/definitions/N"}}}
    assert clean_schema(schema) == {"type": "object", "properties": {"city": {"type": "string", "description": "a city"},
                                                                     "n": {"type": "integer"}}}


def test_recursive_ref_stops() -> None:
    schema = {"$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
              "$ref": "#/$defs/Node"}
    cleaned = clean_schema(schema)
    assert cleaned["type"] == "object"
    assert cleaned["properties"]["next"] == {"type": "object", "description": "(recursive reference #/$defs/Node)"}


def test_const_becomes_enum_and_enum_values_strings() -> None:
    assert clean_schema({"const": "fixed"}) == {"type": "string", "enum": ["fixed"]}
    assert clean_schema({"type": "integer", "enum": [1, 2, True]}) == {"type": "string", "enum": ["1", "2", "true"]}
    assert clean_schema({"enum": ["a", None]}) == {"nullable": True, "enum": ["a"], "type": "string"}


@pytest.mark.parametrize("key, value, text", [
    ("minLength", 1, "minLength: 1"), ("maxLength", 9, "maxLength: 9"), ("pattern", "^a+$", "pattern: ^a+$"),
    ("format", "email", "format: email"), ("default", {"a": 1}, 'default: {"a":1}'), ("examples", ["x"], 'examples: ["x"]'),
    ("minItems", 1, "minItems: 1"), ("maxItems", 3, "maxItems: 3"), ("uniqueItems", True, "uniqueItems: true"),
    ("exclusiveMinimum", 0, "exclusiveMinimum: 0"), ("exclusiveMaximum", 10, "exclusiveMaximum: 10"),
])
def test_constraints_move_into_the_description(key: str, value: object, text: str) -> None:
    cleaned = clean_schema({"type": "string", "description": "Thing", key: value})
    assert cleaned == {"type": "string", "description": f"Thing ({text})"}
    assert clean_schema({"type": "string", key: value})["description"] == text


def test_all_of_is_merged() -> None:
    schema = {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                        {"properties": {"b": {"type": "number"}}, "required": ["b"]}]}
    assert clean_schema(schema) == {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "number"}},
                                    "required": ["a", "b"]}


@pytest.mark.parametrize("key", ["anyOf", "oneOf"])
def test_any_of_one_of_keep_one_branch_and_null_makes_nullable(key: str) -> None:
    assert clean_schema({key: [{"type": "string"}, {"type": "null"}]}) == {"type": "string", "nullable": True}
    assert clean_schema({key: [{"type": "integer"}, {"type": "string"}]}) == {"type": "integer"}
    assert clean_schema({"description": "d", key: [{"$ref": "#/$defs/X"}], "$defs": {"X": {"type": "boolean"}}}) == {
        "type": "boolean", "description": "d"}


def test_type_list_with_null() -> None:
    assert clean_schema({"type": ["string", "null"]}) == {"type": "string", "nullable": True}
    assert clean_schema({"type": ["null"]}) == {"nullable": True}


@pytest.mark.parametrize("key", ["$schema", "$defs", "definitions", "$id", "additionalProperties", "patternProperties",
                                 "propertyNames", "if", "then", "else", "$comment", "x-google-extension", "not",
                                 "unevaluatedProperties", "dependentRequired"])
def test_unknown_keywords_are_dropped(key: str) -> None:
    assert clean_schema({"type": "object", "properties": {}, key: {"type": "string"}}) == {"type": "object", "properties": {}}


def test_required_names_missing_from_properties_are_dropped() -> None:
    assert clean_schema({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "ghost", "a"]}) == {
        "type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    assert "required" not in clean_schema({"type": "object", "required": ["ghost"]})


def test_nested_items_and_properties_are_cleaned_and_input_untouched() -> None:
    schema = {"type": "array", "items": {"type": "object", "additionalProperties": False,
                                         "properties": {"tags": {"type": "array", "items": {"const": 3}, "minItems": 1}}}}
    before = copy.deepcopy(schema)
    assert clean_schema(schema) == {"type": "array", "items": {"type": "object", "properties": {
        "tags": {"type": "array", "description": "minItems: 1", "items": {"type": "string", "enum": ["3"]}}}}}
    assert schema == before
    assert clean_schema({"type": "array"}) == {"type": "array", "items": {"type": "string"}}
    assert clean_schema({"items": [{"type": "integer"}]}) == {"type": "array", "items": {"type": "integer"}}


def test_parameters_default_to_an_empty_object() -> None:
    assert parameters_schema(None) == {"type": "object", "properties": {}}
    assert parameters_schema({}) == {"type": "object", "properties": {}}
    assert parameters_schema({"type": "object"}) == {"type": "object", "properties": {}}
    assert parameters_schema("nonsense") == {"type": "object", "properties": {}}
