"""JSON Schema -> the OpenAPI subset Gemini's ``Schema`` accepts.

Applied to tool parameter schemas and ``response_format`` schemas only, never
to a whole request (that would corrupt ``args`` in the history). Pure.

What happens, in order, at every level: local ``$ref`` inlined; ``allOf``
merged; ``anyOf``/``oneOf`` reduced to one branch (a ``null`` branch makes the
result ``nullable``); ``type: [x, "null"]`` likewise; ``const`` -> ``enum``;
enum values as strings; constraints Gemini does not take (``minLength``,
``pattern``, ``format``, ``default``, ``examples`` …) written into the
description instead; unknown keywords (``$schema``, ``additionalProperties``,
``if/then/else``, ``x-*`` …) dropped; ``required`` names that are not
properties dropped.
"""

from __future__ import annotations

import copy
import json
from typing import Any

#: Keywords moved into the description, in this order.
DESCRIBED = (
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "default",
    "examples",
    "minItems",
    "maxItems",
    "uniqueItems",
    "exclusiveMinimum",
    "exclusiveMaximum",
)
#: Keywords kept as they are (after cleaning their values).
KEPT = ("type", "title", "description", "nullable", "enum", "items", "properties", "required", "minimum", "maximum",
        "minProperties", "maxProperties", "propertyOrdering")
MAX_DEPTH = 32


def _resolve_ref(ref: str, root: dict[str, Any]) -> Any:
    """The target of a local ``#/…`` pointer, or None."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    node: Any = root
    for raw in ref[1:].split("/"):
        if raw == "":
            continue
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return None
    return node


def _merge_all_of(node: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
    for branch in node.get("allOf") or []:
        if not isinstance(branch, dict):
            continue
        for key, value in branch.items():
            if key == "properties" and isinstance(value, dict):
                merged.setdefault("properties", {})
                if isinstance(merged["properties"], dict):
                    for name, sub in value.items():
                        merged["properties"].setdefault(name, sub)
            elif key == "required" and isinstance(value, list):
                current = merged.setdefault("required", [])
                if isinstance(current, list):
                    current.extend(v for v in value if v not in current)
            elif key == "description" and "description" in merged:
                continue
            else:
                merged.setdefault(key, value)
    return merged


def _is_null(branch: Any) -> bool:
    return isinstance(branch, dict) and (branch.get("type") == "null" or branch == {"const": None}
                                         or branch.get("enum") == [None])


def _one_branch(node: dict[str, Any]) -> dict[str, Any]:
    """``anyOf``/``oneOf`` -> the first non-null branch merged into the node."""
    for key in ("anyOf", "oneOf"):
        branches = node.get(key)
        if not isinstance(branches, list):
            continue
        node = {k: v for k, v in node.items() if k != key}
        nullable = any(_is_null(b) for b in branches)
        chosen = next((b for b in branches if isinstance(b, dict) and not _is_null(b)), None)
        if chosen is not None:
            for k, v in chosen.items():
                if k == "description" and "description" in node:
                    continue
                node.setdefault(k, v)
        if nullable:
            node["nullable"] = True
    return node


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _clean(node: Any, root: dict[str, Any], depth: int, seen: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {}
    if depth > MAX_DEPTH:
        return {"type": "object", "description": "(schema nested too deeply; simplified)"}
    if "$ref" in node:
        ref = node["$ref"]
        if ref in seen:
            description = node.get("description") or f"(recursive reference {ref})"
            return {"type": "object", "description": description}
        target = _resolve_ref(ref, root)
        rest = {k: v for k, v in node.items() if k != "$ref"}
        if isinstance(target, dict):
            combined = dict(copy.deepcopy(target))
            combined.update(rest)
            return _clean(combined, root, depth + 1, seen + (ref,))
        node = rest or {"type": "object"}
    if "allOf" in node:
        node = _merge_all_of(node)
        if "$ref" in node:
            return _clean(node, root, depth + 1, seen)
    if "anyOf" in node or "oneOf" in node:
        node = _one_branch(node)
        if "$ref" in node or "allOf" in node or "anyOf" in node or "oneOf" in node:
            return _clean(node, root, depth + 1, seen)

    out: dict[str, Any] = {}
    kind = node.get("type")
    if isinstance(kind, list):
        types = [t for t in kind if isinstance(t, str)]
        if "null" in types:
            out["nullable"] = True
        non_null = [t for t in types if t != "null"]
        kind = non_null[0] if non_null else None
    if isinstance(kind, str) and kind != "null":
        out["type"] = kind.lower()
    elif kind == "null":
        out["nullable"] = True

    if "const" in node:
        out["enum"] = [_enum_value(node["const"])]
    elif isinstance(node.get("enum"), list):
        values = [_enum_value(v) for v in node["enum"] if v is not None]
        if None in node["enum"]:
            out["nullable"] = True
        if values:
            out["enum"] = values
    if "enum" in out:
        out["type"] = "string"

    for key in ("title", "description"):
        if isinstance(node.get(key), str):
            out[key] = node[key]
    if node.get("nullable") is True:
        out["nullable"] = True
    for key in ("minimum", "maximum"):
        if isinstance(node.get(key), (int, float)) and not isinstance(node.get(key), bool):
            out[key] = node[key]
    for key in ("minProperties", "maxProperties"):
        if isinstance(node.get(key), int) and not isinstance(node.get(key), bool):
            out[key] = node[key]

    notes = [f"{key}: {_describe(node[key])}" for key in DESCRIBED if key in node]
    if notes:
        text = "; ".join(notes)
        out["description"] = f"{out['description']} ({text})" if out.get("description") else text

    properties = node.get("properties")
    if isinstance(properties, dict):
        out["properties"] = {
            str(name): _clean(sub, root, depth + 1, seen) for name, sub in properties.items() if isinstance(sub, dict)
        }
        if "type" not in out:
            out["type"] = "object"
    items = node.get("items")
    if isinstance(items, list):
        items = items[0] if items else None
    if isinstance(items, dict):
        out["items"] = _clean(items, root, depth + 1, seen)
        out.setdefault("type", "array")
    elif out.get("type") == "array":
        out["items"] = {"type": "string"}
    required = node.get("required")
    if isinstance(required, list):
        known = out.get("properties", {})
        kept = []
        for name in required:
            if isinstance(name, str) and name in known and name not in kept:
                kept.append(name)
        if kept:
            out["required"] = kept
    ordering = node.get("propertyOrdering")
    if isinstance(ordering, list) and "properties" in out:
        out["propertyOrdering"] = [n for n in ordering if isinstance(n, str) and n in out["properties"]]
    return out


def _enum_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def clean_schema(schema: Any) -> dict[str, Any]:
    """A Gemini-acceptable copy of ``schema`` (the input is not changed)."""
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    return _clean(schema, schema, 0, ())


def parameters_schema(schema: Any) -> dict[str, Any]:
    """A function's ``parameters``: cleaned, and ``{type: object, properties: {}}`` when missing."""
    if not isinstance(schema, dict) or not schema:
        return {"type": "object", "properties": {}}
    cleaned = clean_schema(schema)
    if cleaned.get("type") in (None, "object") and "properties" not in cleaned:
        cleaned["properties"] = {}
    cleaned.setdefault("type", "object")
    return cleaned
