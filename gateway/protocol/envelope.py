"""Public Gemini requests <-> Cloud Code's ``v1internal`` envelope.

Owns request checks, the generation and countTokens envelopes, unwrapping
answers and stream events, and request/session ids; must not do I/O.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
import os
from typing import Any, Mapping

from gateway.protocol.errors import GatewayError
from gateway.protocol.framing import compact_encoder
from gateway.protocol.framing import dumps as framing_dumps
from gateway.protocol.models import strip_models_prefix

#: Fields of a GenerateContentRequest that must be JSON objects when present.
_OBJECT_FIELDS = ("generationConfig", "systemInstruction", "toolConfig")
#: Fields that must be JSON arrays of objects when present (``tools`` is a list in the API).
_LIST_FIELDS = ("tools", "safetySettings")

_EXAMPLE = '{"contents":[{"role":"user","parts":[{"text":"Hello"}]}]}'

_RESPONSE_PREFIX = '{"response":'
_WHITESPACE = " \t\r\n"
_decoder = json.JSONDecoder()
#: What ``json.dumps(obj, separators=(",", ":"))`` writes, set up once (``framing.compact_encoder``).
_upstream = compact_encoder(ensure_ascii=True)
#: A str as ``_upstream`` writes it.
_quote = json.encoder.encode_basestring_ascii
#: The session id's canonical form (see :func:`session_id_for`), set up once.
_canonical_json = compact_encoder(ensure_ascii=True, sort_keys=True, default=str)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _check_contents(contents: object, where: str) -> None:
    if not isinstance(contents, list) or not contents:
        if contents is None:
            got = "missing"
        elif isinstance(contents, list):
            got = "an empty array"
        else:
            got = _json_type(contents)
        raise GatewayError(
            400,
            f"Invalid request: {where}contents must be a non-empty array of Content objects "
            f"(got {got}), e.g. {_EXAMPLE}",
        )
    for index, content in enumerate(contents):
        if not isinstance(content, dict):
            raise GatewayError(
                400,
                f"Invalid request: {where}contents[{index}] must be a Content object "
                f'{{"role":…,"parts":[…]}}, got {_json_type(content)}.',
            )
        parts = content.get("parts")
        if not isinstance(parts, list):
            got = "missing" if parts is None else _json_type(parts)
            raise GatewayError(
                400,
                f"Invalid request: {where}contents[{index}].parts must be an array of Part objects "
                f'such as {{"text":"…"}} (got {got}).',
            )


def validate_generate_request(body: object, *, where: str = "") -> dict[str, Any]:
    """Check the shape the gateway itself relies on and return ``body`` unchanged.

    Only structure is judged (a JSON object; non-empty ``contents`` of
    objects with a ``parts`` array; object/array types of the top-level
    fields the gateway reads); values are upstream's business. ``null``
    counts as absent, as proto3 JSON parsers treat it. ``where`` prefixes
    field names in messages (``generateContentRequest.``).
    """
    if not isinstance(body, dict):
        raise GatewayError(
            400,
            f"Invalid request: {where.rstrip('.') or 'the body'} must be a JSON object "
            f"(GenerateContentRequest), got {_json_type(body)}, e.g. {_EXAMPLE}",
        )
    _check_contents(body.get("contents"), where)
    for name in _OBJECT_FIELDS:
        value = body.get(name)
        if value is not None and not isinstance(value, dict):
            raise GatewayError(400, f"Invalid request: {where}{name} must be an object, got {_json_type(value)}.")
    for name in _LIST_FIELDS:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, list):
            raise GatewayError(
                400, f"Invalid request: {where}{name} must be an array of objects, got {_json_type(value)}."
            )
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise GatewayError(
                    400, f"Invalid request: {where}{name}[{index}] must be an object, got {_json_type(item)}."
                )
    system = body.get("systemInstruction")
    if isinstance(system, dict) and "parts" in system and not isinstance(system["parts"], list):
        raise GatewayError(
            400, f"Invalid request: {where}systemInstruction.parts must be an array, got {_json_type(system['parts'])}."
        )
    return body


def request_type_for(model: str) -> str:
    """``image_gen`` for image models (id contains ``image``), else ``agent``, as the desktop client sends."""
    return "image_gen" if "image" in strip_models_prefix(model).lower() else "agent"


def wrap(
    request: Mapping[str, Any],
    *,
    model: str,
    project: str,
    request_id: str,
    session_id: str,
    user_agent: str = "antigravity",
    request_type: str | None = None,
) -> dict[str, Any]:
    """The ``v1internal`` generation envelope around a client's request.

    ``request`` becomes a shallow copy with ``sessionId`` set to
    ``session_id``: the argument always wins, so upstream's cache affinity
    follows the same id the pool sticks accounts to (a client's own
    ``sessionId`` is honoured earlier, by ``session_id_for``). The copy
    drops ``session_id`` (same proto field, snake-case: both names would
    be "set twice") and ``model`` (the envelope names the model; Cloud
    Code's request type has no such field). The input is not mutated.
    """
    bare = strip_models_prefix(model)
    inner = {k: v for k, v in request.items() if k not in ("model", "session_id", "sessionId")}
    if isinstance(inner.get("contents"), list):
        inner["contents"] = with_roles(inner["contents"])
    inner["sessionId"] = session_id
    return {
        "model": bare,
        "project": project,
        "requestId": request_id,
        "request": inner,
        "requestType": request_type if request_type is not None else request_type_for(bare),
        "userAgent": user_agent,
    }


def wrapped_json(
    request: Mapping[str, Any],
    *,
    model: str,
    project: str,
    request_id: str,
    session_id: str,
    user_agent: str = "antigravity",
    request_type: str | None = None,
) -> bytes:
    """The upstream body: exactly ``json.dumps(wrap(…), separators=(",", ":")).encode()``, cheaper.

    Hot path (one per upstream attempt): the envelope's fields are written
    around the request's own encoding, and the request is encoded as it is
    (no copy) when it holds none of the keys :func:`wrap` drops and every
    turn has its role; ``sessionId`` is then spliced in as its last key,
    where :func:`wrap` puts it. ASCII JSON, like ``json.dumps``.
    """
    contents = request.get("contents")
    if (
        not isinstance(request, dict)
        or "model" in request
        or "session_id" in request
        or "sessionId" in request
        or (isinstance(contents, list) and with_roles(contents) is not contents)
    ):
        wrapped = wrap(request, model=model, project=project, request_id=request_id, session_id=session_id,
                       user_agent=user_agent, request_type=request_type)
        return _upstream(wrapped).encode()
    bare = strip_models_prefix(model)
    kind = request_type if request_type is not None else request_type_for(bare)
    quote = _quote  # what the encoder writes for a str
    inner = _upstream(request).encode()  # "{…}": its closing brace gives way to sessionId
    head = f'{{"model":{quote(bare)},"project":{quote(project)},"requestId":{quote(request_id)},"request":'
    comma = "" if inner == b"{}" else ","
    tail = (
        f'{comma}"sessionId":{quote(session_id)}}},'
        f'"requestType":{quote(kind)},"userAgent":{quote(user_agent)}}}'
    )
    # One copy of the (possibly large) request into the result, none through intermediate strings.
    return b"".join((head.encode(), memoryview(inner)[:-1], tail.encode()))


def _prompt_turn(request: Mapping[str, Any]) -> dict[str, Any] | None:
    """systemInstruction parts and tools as one leading user turn, for countTokens."""
    parts: list[Any] = []
    system = request.get("systemInstruction")
    if isinstance(system, dict) and isinstance(system.get("parts"), list):
        parts.extend(system["parts"])
    tools = request.get("tools")
    if isinstance(tools, list) and tools:
        parts.append({"text": json.dumps(tools, separators=(",", ":"), ensure_ascii=False, sort_keys=True)})
    if not parts:
        return None
    return {"role": "user", "parts": parts}


def wrap_count_tokens(body: object, model: str) -> dict[str, Any]:
    """The upstream countTokens body for either public request form.

    ``{"contents": …}`` is forwarded as it is. ``{"generateContentRequest":
    …}`` also counts what the model will read besides ``contents``:
    upstream countTokens takes only ``contents``, so the systemInstruction
    parts and a compact JSON rendering of ``tools`` are prepended as one
    user turn. That approximates how the model reads them (not exactly:
    upstream adds its own framing) but never answers a number that ignores
    them. Other fields (generationConfig, safetySettings…) add no tokens.
    """
    if not isinstance(body, dict):
        raise GatewayError(
            400, f"Invalid countTokens request: the body must be a JSON object, got {_json_type(body)}."
        )
    has_contents = body.get("contents") is not None
    has_request = body.get("generateContentRequest") is not None
    if has_contents and has_request:
        raise GatewayError(
            400,
            "Invalid countTokens request: send either contents or generateContentRequest, not both.",
        )
    if not has_contents and not has_request:
        raise GatewayError(
            400,
            'Invalid countTokens request: send {"contents":[…]} or {"generateContentRequest":{…}}.',
        )
    bare = strip_models_prefix(model)
    if has_contents:
        _check_contents(body["contents"], "")
        contents = list(body["contents"])
    else:
        inner = validate_generate_request(body["generateContentRequest"], where="generateContentRequest.")
        contents = list(inner["contents"])
        lead = _prompt_turn(inner)
        if lead is not None:
            contents.insert(0, lead)
    return {"request": {"model": "models/" + bare, "contents": with_roles(contents)}}


def with_roles(contents: list[Any]) -> list[Any]:
    """Contents with a missing ``role`` set to ``user``.

    The public API lets a single-turn request omit the role (google-generativeai's
    ``count_tokens("Hello")`` does); Cloud Code insists on one. The list is
    returned as it is when nothing is missing (the common case: no copy).
    """
    if all(not isinstance(c, dict) or c.get("role") for c in contents):
        return contents
    return [
        {**c, "role": "user"} if isinstance(c, dict) and not c.get("role") else c
        for c in contents
    ]


def unwrap(obj: object) -> object:
    """An upstream answer's ``response``, or the answer itself when it has none."""
    if isinstance(obj, dict) and "response" in obj:
        return obj["response"]
    return obj


#: Compact one-line UTF-8 JSON; escapes instead of failing on lone surrogates (the same as ``framing.dumps``).
_compact = framing_dumps


def unwrap_event(payload: bytes) -> bytes:
    """One upstream SSE event's JSON -> the client's compact one-line JSON.

    Hot path: when the payload starts ``{"response":`` the response value
    is located with one C-level decode and, if it is already free of
    whitespace (so already compact), returned verbatim without
    re-serialising. The rest of the payload is still checked, so a
    truncated or invalid payload raises ValueError, and a duplicate
    ``response`` key falls back to full parsing (last one wins, as in
    ``json.loads``). Anything else is parsed and re-serialised.
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"upstream event is not UTF-8 JSON: {exc}") from None
    if text.startswith(_RESPONSE_PREFIX):
        start = len(_RESPONSE_PREFIX)
        length = len(text)
        while start < length and text[start] in _WHITESPACE:
            start += 1
        try:
            value, end = _decoder.raw_decode(text, start)
            rest = text[end:]
            if rest == "}":
                duplicate = False
            else:
                tail = json.loads('{"r":0' + rest)
                duplicate = "response" in tail
        except json.JSONDecodeError as exc:
            raise ValueError(f"upstream event is not JSON: {exc}") from None
        if not duplicate:
            raw = text[start:end]
            if " " in raw or "\n" in raw or "\r" in raw or "\t" in raw:
                return _compact(value)
            return raw.encode("utf-8")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"upstream event is not JSON: {exc}") from None
    return _compact(unwrap(obj))


_MAX_CLIENT_SESSION_ID = 128


def _client_session_id(request: Mapping[str, Any]) -> str | None:
    for key in ("sessionId", "session_id"):
        value = request.get(key)
        if (
            isinstance(value, str)
            and 0 < len(value) <= _MAX_CLIENT_SESSION_ID
            and value.isascii()
            and value.isprintable()
            and not value.isspace()
        ):
            return value
    return None


def _first_user_turn(contents: object) -> object:
    if not isinstance(contents, list):
        return None
    for content in contents:
        if isinstance(content, dict) and content.get("role", "user") in ("user", None):
            return content.get("parts")
    return contents[0].get("parts") if contents and isinstance(contents[0], dict) else None


def _canonical(value: object) -> str:
    """``_canonical_json(value)``; text-only parts (the usual first turn and system
    instruction) written directly, which is the same text at a third of the cost."""
    if type(value) is list and value and all(type(p) is dict and len(p) == 1 and type(p.get("text")) is str for p in value):
        return "[" + ",".join(['{"text":' + _quote(p["text"]) + "}" for p in value]) + "]"
    if type(value) is dict and len(value) == 1 and type(value.get("parts")) is list:
        return '{"parts":' + _canonical(value["parts"]) + "}"
    return "null" if value is None else _canonical_json(value)


def session_id_for(request: Mapping[str, Any]) -> str:
    """A stable session id for a conversation, as Antigravity formats them.

    A client's own printable ``sessionId``/``session_id`` (≤128 ASCII
    chars) is kept: it knows its conversation better than a hash. Else the
    id is derived from the systemInstruction and the parts of the first user
    turn (role ``user`` or none) — the two things that stay fixed while a
    conversation grows — as ``-`` followed by 19 decimal digits taken from
    their SHA-256 (the desktop client's negative-int64 style). Same
    conversation -> same id; any change to either -> a different id.
    """
    own = _client_session_id(request)
    if own is not None:
        return own
    system = request.get("systemInstruction")
    first = _first_user_turn(request.get("contents"))
    # The canonical JSON of {"s": system, "u": first turn} (sorted keys, compact, ASCII), written as
    # its two values around the fixed keys: the same text ``json.dumps`` of the pair gives, so the
    # same ids, without building the pair and an encoder per request.
    canonical = '{"s":' + _canonical(system) + ',"u":' + _canonical(first) + "}"
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    number = int.from_bytes(digest[:8], "big") % 10**19
    return f"-{number:019d}"


def new_request_id() -> str:
    """A unique upstream ``requestId``: ``agent-<uuid4>``, as the desktop client sends."""
    # uuid4's text without its UUID object: 16 random bytes, version 4 and the RFC 4122 variant set.
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"agent-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
