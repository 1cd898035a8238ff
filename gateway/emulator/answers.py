"""What the emulated model says beyond echoing: tool calls, JSON answers, thinking, search grounding.

Frameworks validate what a model returns (pydantic, zod, LangChain, Claude
Code's own tools), so the emulator must answer like a model: it picks a
declared tool from the request, fills arguments that validate against the
tool's schema, honours forced tool choice, returns schema-valid JSON in JSON
mode and grounding metadata when Google Search is on. Everything is
deterministic in the request. Pure: no I/O, no Twisted.

The rules (also in docs/emulator.md and ``twist antigravity-emulator --help``):

- ``call function NAME`` in the last user text calls NAME when it is declared
  (and allowed).
- Otherwise, in AUTO / VALIDATED mode, a tool is called when a word of its
  name (split at ``_ - . :`` and camelCase, ignoring words like ``get``)
  appears in the last user text; after function responses the model answers
  with text.
- Mode ``ANY`` always calls a permitted tool: the best match, else the first.
- ``NONE`` never calls one.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

#: Name words too generic to say which tool the user means.
GENERIC_WORDS = frozenset({
    "get", "set", "put", "post", "fetch", "list", "make", "do", "run", "use", "call", "tool", "tools", "function",
    "func", "api", "the", "a", "an", "to", "of", "for", "and", "or", "by", "with", "new", "data", "info", "default",
    "json", "output", "response", "result", "structured",
})
#: Description words that carry no meaning when matching.
STOP_WORDS = frozenset({
    "this", "that", "with", "from", "into", "your", "when", "what", "which", "will", "would", "should", "could",
    "have", "there", "their", "they", "them", "then", "than", "these", "those", "about", "only", "also", "must",
    "tool", "tools", "function", "call", "calls", "user", "using", "used", "uses", "returns", "return", "given",
    "please", "some", "more", "most", "other", "such", "each", "every", "here", "where", "were", "been", "being",
})
EXPLICIT_CALL = re.compile(r"call\s+function\s+([A-Za-z_][A-Za-z0-9_.:\-]*)")
MAX_DEPTH = 12
FORMAT_EXAMPLES = {
    "date-time": "2026-01-01T12:00:00Z",
    "date": "2026-01-01",
    "time": "12:00:00",
    "duration": "P1D",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "regex": ".*",
    "json-pointer": "/a",
    "byte": "ZW11bGF0b3I=",
}
PATTERN_CANDIDATES = (
    "a", "A", "0", "1", "abc", "ABC", "a1", "emulator", "Emulator", "2026-01-01", "12:00", "user@example.com",
    "https://example.com/", "example.com", "+12025550123", "AB-123", "a_b", "a-b", "ab12", "x",
)


# --------------------------------------------------------------------------- words


def words(text: str) -> list[str]:
    """Lower-case word tokens (letters and digits)."""
    return re.findall(r"[a-z0-9]+", text.lower())


def name_words(name: str) -> list[str]:
    """A function name's words: split at ``_ - . :`` and camelCase boundaries, lower-cased."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    return [w for w in words(re.sub(r"[_.:\-]", " ", spaced)) if w]


# --------------------------------------------------------------------------- the request's facts


@dataclass(frozen=True)
class Hint:
    """What argument values can be taken from: the last user text and its pieces."""

    text: str = ""

    @property
    def snippet(self) -> str | None:
        """The first ``backquoted`` (or fenced) piece of the text: "run `ls -l`"."""
        match = re.search(r"```(?:[a-zA-Z0-9_-]*\n)?(.*?)```", self.text, re.S) or re.search(r"`([^`\n]+)`", self.text)
        return match.group(1).strip() if match and match.group(1).strip() else None

    @property
    def quoted(self) -> list[str]:
        return [m for m in re.findall(r'"([^"\n]{1,200})"', self.text) if m.strip()]

    @property
    def numbers(self) -> list[float]:
        return [float(n) for n in re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])", self.text)]

    @property
    def place(self) -> str | None:
        """A capitalised word that does not start a sentence ("weather in Paris" -> Paris)."""
        for match in re.finditer(r"(?<=[a-z,] )([A-Z][a-zA-Z\-]{1,40})", self.text):
            return match.group(1)
        return None

    @property
    def url(self) -> str | None:
        match = re.search(r"https?://[^\s`'\"<>)]+", self.text)
        return match.group(0) if match else None

    def short(self, limit: int = 200) -> str:
        text = " ".join(self.text.split())
        return text[:limit] if text else "emulator"


@dataclass(frozen=True)
class Tool:
    """One declared function: name, description and its schema (Gemini Schema or JSON Schema)."""

    name: str
    description: str = ""
    schema: Any = None


def declared_tools(tools: Iterable[dict[str, Any]] | None) -> list[Tool]:
    """Every ``functionDeclarations`` entry, in declaration order."""
    found: list[Tool] = []
    for tool in tools or []:
        for decl in tool.get("functionDeclarations", []) or []:
            # Cloud Code ignores parametersJsonSchema: the model sees such a tool without parameters
            # (PROTOCOL.md 2b), so a call to it comes back with empty args.
            schema = decl.get("parameters")
            found.append(Tool(decl["name"], decl.get("description") or "", schema))
    return found


def search_requested(tools: Iterable[dict[str, Any]] | None) -> bool:
    return any("googleSearch" in t or "googleSearchRetrieval" in t for t in tools or [])


def calling_mode(req: dict[str, Any]) -> tuple[str, list[str]]:
    """``(mode, allowedFunctionNames)`` from ``toolConfig`` (AUTO and [] by default)."""
    config = (req.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode = config.get("mode") or "AUTO"
    if isinstance(mode, int):
        mode = ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")[mode] if 0 <= mode < 5 else "AUTO"
    allowed = [n for n in config.get("allowedFunctionNames") or [] if isinstance(n, str)]
    return ("AUTO" if mode == "MODE_UNSPECIFIED" else mode), allowed


def answers_function_results(contents: list[dict[str, Any]]) -> bool:
    """Whether the last user turn only carries function responses."""
    for turn in reversed(contents):
        if turn.get("role") == "user":
            return bool(turn["parts"]) and all("functionResponse" in p for p in turn["parts"])
    return False


# --------------------------------------------------------------------------- choosing a tool


def tool_score(tool: Tool, said: str) -> tuple[int, int]:
    """``(name words mentioned, description words shared)`` with the user's text."""
    spoken = set(words(said))
    named = sum(1 for w in set(name_words(tool.name)) if len(w) >= 3 and w not in GENERIC_WORDS and w in spoken)
    if tool.name.lower() in said.lower():
        named += 1
    described = {w for w in words(tool.description) if len(w) >= 4 and w not in STOP_WORDS}
    return named, len(described & spoken)


def choose_tool(tools: list[Tool], said: str, mode: str, allowed: list[str], after_results: bool) -> Tool | None:
    """The tool the model calls, or None for a text answer (rules in the module docstring)."""
    if mode == "NONE" or not tools:
        return None
    permitted = [t for t in tools if not allowed or t.name in allowed] or (tools if mode != "ANY" else [])
    if not permitted:
        return None
    match = EXPLICIT_CALL.search(said)
    if match:
        chosen = next((t for t in permitted if t.name == match.group(1)), None)
        if chosen is not None:
            return chosen
    ranked = sorted(enumerate(permitted), key=lambda it: (tool_score(it[1], said), -it[0]), reverse=True)
    best = ranked[0][1]
    if mode == "ANY":
        return best
    if after_results:
        return None
    return best if tool_score(best, said)[0] > 0 else None


# --------------------------------------------------------------------------- values for a schema


class _Numbers:
    """Numbers from the user text, handed out in order to numeric fields."""

    def __init__(self, values: list[float]) -> None:
        self.values = list(values)

    def take(self) -> float | None:
        return self.values.pop(0) if self.values else None


def _resolve(schema: Any, root: Any) -> Any:
    """Follow local ``$ref`` (``#/$defs/X``, ``#/definitions/X``) against the root schema."""
    seen = 0
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < 32:
        ref = schema["$ref"]
        target: Any = root
        if not ref.startswith("#"):
            return {k: v for k, v in schema.items() if k != "$ref"}
        for piece in [p for p in ref[1:].split("/") if p]:
            piece = piece.replace("~1", "/").replace("~0", "~")
            target = target.get(piece) if isinstance(target, dict) else None
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **rest} if isinstance(target, dict) else rest
        seen += 1
    return schema


def _merge_all_of(schema: dict[str, Any], root: Any) -> dict[str, Any]:
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    for branch in schema.get("allOf") or []:
        branch = _resolve(branch, root)
        if not isinstance(branch, dict):
            continue
        branch = _merge_all_of(branch, root) if "allOf" in branch else branch
        for key, value in branch.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = list(dict.fromkeys(list(merged.get("required", [])) + list(value)))
            else:
                merged.setdefault(key, value)
    return merged


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [str(k).lower() for k in kind]
        kind = next((k for k in kinds if k != "null"), "null")
    if isinstance(kind, str) and kind and kind.upper() != "TYPE_UNSPECIFIED":
        return kind.lower()
    if "properties" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    if "enum" in schema and schema["enum"]:
        first = schema["enum"][0]
        return {bool: "boolean", int: "integer", float: "number", type(None): "null"}.get(type(first), "string")
    if "const" in schema:
        return "const"
    return "string"


def schema_value(schema: Any, hint: Hint = Hint(), *, root: Any = None, name: str = "", numbers: _Numbers | None = None,
                 depth: int = 0) -> Any:
    """A value that validates against ``schema`` (Gemini's OpenAPI subset or JSON Schema), taken from ``hint`` where it fits."""
    root = schema if root is None else root
    numbers = numbers if numbers is not None else _Numbers(hint.numbers)
    schema = _resolve(schema, root)
    if not isinstance(schema, dict) or schema is True:
        return hint.short(60) if depth == 0 else "emulator"
    if "allOf" in schema:
        schema = _merge_all_of(schema, root)
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            resolved = [_resolve(b, root) for b in branches]
            usable = [b for b in resolved if not (isinstance(b, dict) and _type_of(b) == "null" and "type" in b)]
            rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            branch = usable[0] if usable else resolved[0]
            merged = {**rest, **branch} if isinstance(branch, dict) else rest
            return schema_value(merged, hint, root=root, name=name, numbers=numbers, depth=depth)
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        spoken = hint.text.lower()
        mentioned = [v for v in enum if isinstance(v, str) and v and re.search(r"\b" + re.escape(v.lower()) + r"\b", spoken)]
        return mentioned[0] if mentioned else enum[0]
    kind = _type_of(schema)
    if kind == "null":
        return None
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return _number(schema, kind, numbers.take())
    if kind == "array":
        return _array(schema, hint, root, name, numbers, depth)
    if kind == "object":
        return _object(schema, hint, root, numbers, depth)
    return _string(schema, hint, name)


def _number(schema: dict[str, Any], kind: str, wanted: float | None) -> int | float:
    """The first candidate inside the bounds (inclusive, exclusive, ``multipleOf``): the user's number if it fits."""
    integer = kind == "integer"
    low, high = schema.get("minimum"), schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(ex_low, bool):  # draft 4: a flag that makes ``minimum`` exclusive
        ex_low, low = (low, None) if ex_low else (None, low)
    if isinstance(ex_high, bool):
        ex_high, high = (high, None) if ex_high else (None, high)
    step = schema.get("multipleOf")
    step = step if isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0 else None

    def fits(v: float) -> bool:
        if integer and not float(v).is_integer():
            return False
        if isinstance(low, (int, float)) and v < low or isinstance(high, (int, float)) and v > high:
            return False
        if isinstance(ex_low, (int, float)) and v <= ex_low or isinstance(ex_high, (int, float)) and v >= ex_high:
            return False
        return step is None or abs(v / step - round(v / step)) < 1e-9

    bounds = [b for b in (low, high, ex_low, ex_high) if isinstance(b, (int, float)) and not isinstance(b, bool)]
    candidates: list[float] = []
    if wanted is not None:
        candidates += [wanted, round(wanted)]
    candidates += [1, 0, 2, 10]
    for b in bounds:
        candidates += [b, b + 1, b - 1, math.ceil(b), math.floor(b), math.ceil(b) + 1, math.floor(b) - 1]
    if len(bounds) >= 2:
        candidates.append((min(bounds) + max(bounds)) / 2)
    if step is not None:
        candidates = [m for c in candidates for m in (round(c / step) * step, math.ceil(c / step) * step, math.floor(c / step) * step)]
    value = next((c for c in candidates if fits(c)), candidates[0])
    return int(value) if integer or (float(value).is_integer() and isinstance(step, int)) else float(value)


def _array(schema: dict[str, Any], hint: Hint, root: Any, name: str, numbers: _Numbers, depth: int) -> list[Any]:
    low = schema.get("minItems")
    high = schema.get("maxItems")
    count = max(int(low) if isinstance(low, int) else 0, 1 if depth < MAX_DEPTH else 0)
    if isinstance(high, int):
        count = min(count, high)
    prefix = schema.get("prefixItems") if isinstance(schema.get("prefixItems"), list) else []
    items = schema.get("items", {})
    out: list[Any] = []
    for i in range(max(count, len(prefix) if count else 0)):
        sub = prefix[i] if i < len(prefix) else items
        value = schema_value(sub if isinstance(sub, dict) else {}, hint, root=root, name=name, numbers=numbers, depth=depth + 1)
        out.append(value)
    if schema.get("uniqueItems") and len(out) > 1:
        out = _distinct(out, _resolve(items, root) if isinstance(items, dict) else {})
    return out


def _distinct(values: list[Any], items: dict[str, Any]) -> list[Any]:
    enum = items.get("enum") if isinstance(items, dict) else None
    out: list[Any] = []
    for i, value in enumerate(values):
        if value in out:
            if isinstance(enum, list):
                value = next((v for v in enum if v not in out), value)
            elif isinstance(value, str):
                value = f"{value}{i}"
            elif isinstance(value, bool):
                value = not value
            elif isinstance(value, (int, float)):
                value = value + i
            elif isinstance(value, dict):
                value = {**value, f"item{i}": i}
        out.append(value)
    return out


def _object(schema: dict[str, Any], hint: Hint, root: Any, numbers: _Numbers, depth: int) -> dict[str, Any]:
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = [r for r in schema.get("required") or [] if isinstance(r, str)]
    wanted = required if "required" in schema else ([] if depth >= MAX_DEPTH else list(properties))
    out: dict[str, Any] = {}
    for key in wanted:
        sub = properties.get(key)
        if sub is None:
            extra = schema.get("additionalProperties")
            sub = extra if isinstance(extra, dict) else {"type": "string"}
        out[key] = schema_value(sub, hint, root=root, name=key, numbers=numbers, depth=depth + 1)
    least = schema.get("minProperties")
    if isinstance(least, int) and len(out) < least:
        for key, sub in properties.items():
            if len(out) >= least:
                break
            if key not in out:
                out[key] = schema_value(sub, hint, root=root, name=key, numbers=numbers, depth=depth + 1)
        extra = schema.get("additionalProperties")
        n = 0
        while len(out) < least and extra is not False:
            n += 1
            out[f"key{n}"] = schema_value(extra if isinstance(extra, dict) else {"type": "string"}, hint, root=root,
                                          numbers=numbers, depth=depth + 1)
    return out


def _string(schema: dict[str, Any], hint: Hint, name: str) -> str:
    fmt = schema.get("format")
    key = name.lower()
    if isinstance(fmt, str) and fmt in FORMAT_EXAMPLES:
        value = hint.url if fmt in ("uri", "url", "iri") and hint.url else FORMAT_EXAMPLES[fmt]
    elif any(k in key for k in ("url", "uri", "link", "href")):
        value = hint.url or "https://example.com/"
    elif "email" in key:
        value = "user@example.com"
    elif key.endswith("date") or key.startswith("date"):
        value = "2026-01-01"
    elif any(k in key for k in ("city", "location", "place", "country", "town", "region")):
        value = hint.place or (hint.quoted[0] if hint.quoted else "Paris")
    elif any(k in key for k in ("path", "file", "dir", "folder")):
        value = hint.snippet or "README.md"
    elif key in ("description", "reason", "explanation", "summary", "title", "rationale", "justification"):
        value = "Asked by the user: " + hint.short(80)
    elif key in ("id", "uuid") or key.endswith("_id") or key.endswith("Id"):
        value = "id-" + hashlib.sha256(hint.text.encode()).hexdigest()[:8]
    else:
        value = hint.snippet or (hint.quoted[0] if hint.quoted else hint.short())
    return _fit_string(value, schema)


def _fit_string(value: str, schema: dict[str, Any]) -> str:
    low = schema.get("minLength")
    high = schema.get("maxLength")
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            compiled = re.compile(pattern)
        except re.error:
            compiled = None
        if compiled is not None and not compiled.search(value):
            value = next((c for c in PATTERN_CANDIDATES if compiled.search(c)), value)
    if isinstance(low, int) and len(value) < low:
        value = value + "x" * (low - len(value))
    if isinstance(high, int) and len(value) > high:
        value = value[:high]
    return value


# --------------------------------------------------------------------------- whole answers


def call_arguments(tool: Tool, said: str) -> dict[str, Any]:
    """Arguments for a call of ``tool`` that validate against its schema."""
    if tool.schema is None:
        return {}
    value = schema_value(tool.schema, Hint(said))
    return value if isinstance(value, dict) else {"value": value}


def json_answer(config: dict[str, Any], said: str) -> str | None:
    """The text of a JSON-mode answer (``responseMimeType``), or None when the answer is not JSON."""
    mime = str(config.get("responseMimeType") or "").lower()
    schema = config.get("responseJsonSchema", config.get("responseSchema"))
    if mime == "text/x.enum" and isinstance(schema, dict):
        return str(schema_value(schema, Hint(said)))
    if mime != "application/json":
        return None
    if schema is None:
        return json.dumps({"answer": "Echo: " + said if said else "emulator"}, ensure_ascii=False)
    return json.dumps(schema_value(schema, Hint(said)), ensure_ascii=False)


def thought_text(said: str) -> str:
    """The visible reasoning of a thinking model: short and deterministic."""
    return "Thinking about: " + (said[:60] or "the request")


def grounding(said: str) -> tuple[str, dict[str, Any]]:
    """A search-grounded answer's text and its ``groundingMetadata`` (two sources, one support)."""
    query = " ".join(said.split())[:120] or "the request"
    slug = "-".join(words(query)[:6]) or "search"
    sources = [
        {"web": {"uri": f"https://example.com/search/{slug}", "title": "example.com"}},
        {"web": {"uri": f"https://example.org/articles/{slug}", "title": "example.org"}},
    ]
    text = f"According to the search results, here is what I found about {query}."
    metadata = {
        "webSearchQueries": [query],
        "searchEntryPoint": {"renderedContent": f"<div>Search: {query}</div>"},
        "groundingChunks": sources,
        "groundingSupports": [{
            "segment": {"startIndex": 0, "endIndex": len(text.encode("utf-8")), "text": text},
            "groundingChunkIndices": [0, 1],
        }],
    }
    return text, metadata
