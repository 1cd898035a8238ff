"""The envelope's hot-path functions give exactly what their plain versions gave.

``wrapped_json``, ``session_id_for`` and ``new_request_id`` were rewritten to
do less work per request; each is checked here against the straightforward
code it replaced (kept below as the reference) on generated JSON.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocol.envelope import _first_user_turn, new_request_id, session_id_for, wrap, wrapped_json

# JSON values as a request can hold them: any text (lone surrogates, quotes, control
# characters), big ints, floats incl. NaN/inf (json.loads accepts them), nesting.
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
PART = st.dictionaries(st.sampled_from(["text", "thought", "inlineData", "functionCall"]), VALUES, max_size=3)
TURN = st.fixed_dictionaries(
    {"parts": st.lists(PART, max_size=3)},
    optional={"role": st.sampled_from(["user", "model", "", None, "function"])},
)
REQUEST = st.fixed_dictionaries(
    {"contents": st.lists(TURN | VALUES, max_size=4)},
    optional={
        "systemInstruction": st.fixed_dictionaries({"parts": st.lists(PART, max_size=2)}) | VALUES,
        "generationConfig": st.dictionaries(st.text(max_size=6), VALUES, max_size=3),
        "tools": VALUES,
        "model": st.text(max_size=10),
        "sessionId": VALUES,
        "session_id": VALUES,
        "zzz": VALUES,
    },
)
MODELS = st.sampled_from(["gemini-3-flash", "models/gemini-3.1-flash-image", "claude-sonnet-4-6", 'q"uo\\te\u00e9'])


def reference_session_id(request: dict[str, Any]) -> str:
    """``session_id_for`` as it was before the hot-path rewrite (the derived-id branch)."""
    seed = {"s": request.get("systemInstruction"), "u": _first_user_turn(request.get("contents"))}
    canonical = json.dumps(seed, separators=(",", ":"), sort_keys=True, ensure_ascii=True, default=str)
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return f"-{int.from_bytes(digest[:8], 'big') % 10**19:019d}"


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(request=REQUEST, model=MODELS, project=st.text(max_size=8), request_id=st.text(max_size=8),
       session_id=st.text(max_size=8), request_type=st.none() | st.sampled_from(["agent", "image_gen"]))
def test_wrapped_json_is_json_dumps_of_wrap(
    request: dict[str, Any], model: str, project: str, request_id: str, session_id: str, request_type: str | None
) -> None:
    args = dict(model=model, project=project, request_id=request_id, session_id=session_id, request_type=request_type)
    expected = json.dumps(wrap(request, **args), separators=(",", ":")).encode()  # type: ignore[arg-type]
    assert wrapped_json(request, **args) == expected  # type: ignore[arg-type]


def test_wrapped_json_fast_path_examples() -> None:
    hello = {"contents": [{"role": "user", "parts": [{"text": "Hi é \ud800"}]}], "generationConfig": {"t": float("nan")}}
    for request in (hello, {}, {"contents": []}, {"contents": "x"}, {"contents": [{"parts": []}]}, {**hello, "sessionId": "c"}):
        args = dict(model="models/gemini-3-flash", project="p", request_id="r", session_id="-12")
        assert wrapped_json(request, **args) == json.dumps(wrap(request, **args), separators=(",", ":")).encode()


def test_wrapped_json_does_not_change_the_request() -> None:
    request = {"contents": [{"parts": [{"text": "no role"}]}], "model": "m", "sessionId": "s"}
    before = json.dumps(request)
    wrapped_json(request, model="m", project="p", request_id="r", session_id="s2")
    assert json.dumps(request) == before


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(request=REQUEST)
def test_session_id_for_is_unchanged(request: dict[str, Any]) -> None:
    request = {k: v for k, v in request.items() if k not in ("sessionId", "session_id")}
    assert session_id_for(request) == reference_session_id(request)


def test_session_id_known_values_do_not_move() -> None:
    """Fixed ids: sticky sessions must not move after an upgrade."""
    hello = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
    assert session_id_for(hello) == reference_session_id(hello)
    system = {**hello, "systemInstruction": {"parts": [{"text": "be brief"}]}}
    assert session_id_for(system) == reference_session_id(system)
    digest = hashlib.sha256(b'{"s":null,"u":[{"text":"Hello"}]}').digest()
    assert session_id_for(hello) == f"-{int.from_bytes(digest[:8], 'big') % 10**19:019d}"


def test_new_request_id_is_a_uuid4_in_its_usual_text() -> None:
    seen = set()
    for _ in range(2000):
        rid = new_request_id()
        assert re.fullmatch(r"agent-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", rid)
        parsed = uuid.UUID(rid[len("agent-"):])
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == rid[len("agent-"):]
        seen.add(rid)
    assert len(seen) == 2000


TEXT_PARTS = st.lists(st.fixed_dictionaries({"text": st.text()}) | PART, max_size=3)


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(first=TEXT_PARTS, system=st.none() | st.fixed_dictionaries({"parts": TEXT_PARTS}) | st.fixed_dictionaries(
    {"parts": TEXT_PARTS, "role": st.just("user")}) | VALUES)
def test_session_id_for_text_turns_is_unchanged(first: list[Any], system: Any) -> None:
    request: dict[str, Any] = {"contents": [{"role": "user", "parts": first}]}
    if system is not None:
        request["systemInstruction"] = system
    assert session_id_for(request) == reference_session_id(request)


def test_canonical_text_parts_examples() -> None:
    from gateway.protocol.envelope import _canonical

    for value in ([{"text": 'a"\\\n\u00e9\ud800'}], [{"text": "a"}, {"text": "b"}], [], [{"text": 1}], [{"text": "a", "thought": True}],
                  {"parts": [{"text": "s"}]}, {"parts": []}, {"parts": "x"}, {"role": "user", "parts": [{"text": "s"}]}, None, "x"):
        assert _canonical(value) == json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=True, default=str)


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(response=VALUES, trace=st.none() | st.text(max_size=5), spaced=st.booleans())
def test_unwrap_event_gives_the_compact_response(response: Any, trace: str | None, spaced: bool) -> None:
    from gateway.protocol import framing
    from gateway.protocol.envelope import unwrap_event

    event = {"response": response} if trace is None else {"response": response, "traceId": trace}
    separators = (", ", ": ") if spaced else (",", ":")
    payload = json.dumps(event, separators=separators, ensure_ascii=False).encode("utf-8", "surrogatepass")
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:  # a lone surrogate: only its escaped form is UTF-8 JSON
        payload = json.dumps(event, separators=separators).encode()
    out = unwrap_event(payload)
    # The same value as parsing and re-serialising (compared as canonical text: NaN != NaN), on one line.
    assert framing.dumps(json.loads(out)) == framing.dumps(json.loads(payload)["response"])
    assert b"\n" not in out
    if spaced:  # anything not already compact is re-serialised exactly as framing.dumps writes it
        assert out == framing.dumps(json.loads(payload)["response"])
