"""The v1internal envelope, request checks, unwrapping and session ids."""

from __future__ import annotations

import copy
import json
import re

import pytest

from gateway.protocol.envelope import (
    new_request_id,
    request_type_for,
    session_id_for,
    unwrap,
    unwrap_event,
    validate_generate_request,
    wrap,
    wrap_count_tokens,
)
from gateway.protocol.errors import GatewayError

HELLO = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}


# -- validate_generate_request ---------------------------------------------------


def test_valid_request_is_returned_unchanged() -> None:
    body = {
        "contents": [{"parts": [{"text": "no role is fine"}]}, {"role": "model", "parts": []}],
        "generationConfig": {"temperature": 0.2},
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "tools": [{"functionDeclarations": []}],
        "safetySettings": [{"category": 7, "threshold": 3}],
        "unknownFieldUpstreamJudges": 1,
    }
    snapshot = copy.deepcopy(body)
    assert validate_generate_request(body) is body
    assert body == snapshot


def test_null_optional_fields_count_as_absent() -> None:
    body = {**HELLO, "generationConfig": None, "tools": None, "systemInstruction": None}
    assert validate_generate_request(body) is body


@pytest.mark.parametrize("body", [None, [], "text", 3, True])
def test_body_must_be_an_object(body: object) -> None:
    with pytest.raises(GatewayError) as info:
        validate_generate_request(body)
    assert info.value.code == 400
    assert info.value.status == "INVALID_ARGUMENT"
    assert "JSON object" in info.value.message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "contents must be a non-empty array"),
        ({"contents": []}, "an empty array"),
        ({"contents": {"parts": []}}, "got an object"),
        ({"contents": "hi"}, "got a string"),
        ({"contents": ["hi"]}, "contents[0] must be a Content object"),
        ({"contents": [{"role": "user"}]}, "contents[0].parts must be an array"),
        ({"contents": [{"parts": [{"text": "a"}]}, {"parts": "b"}]}, "contents[1].parts"),
    ],
)
def test_bad_contents_say_what_to_fix(body: dict, fragment: str) -> None:
    with pytest.raises(GatewayError) as info:
        validate_generate_request(body)
    assert info.value.code == 400
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("generationConfig", [], "generationConfig must be an object"),
        ("generationConfig", "hot", "generationConfig must be an object"),
        ("systemInstruction", "be brief", "systemInstruction must be an object"),
        ("systemInstruction", {"parts": "x"}, "systemInstruction.parts must be an array"),
        ("tools", {"functionDeclarations": []}, "tools must be an array"),
        ("tools", ["search"], "tools[0] must be an object"),
        ("toolConfig", [], "toolConfig must be an object"),
        ("safetySettings", {}, "safetySettings must be an array"),
    ],
)
def test_bad_top_level_field_types(field: str, value: object, fragment: str) -> None:
    with pytest.raises(GatewayError) as info:
        validate_generate_request({**HELLO, field: value})
    assert info.value.code == 400
    assert fragment in info.value.message


# -- wrap --------------------------------------------------------------------------


def wrap_hello(**kwargs: object) -> dict:
    args = dict(model="gemini-2.5-pro", project="proj-1", request_id="agent-1", session_id="-1")
    args.update(kwargs)
    return wrap(HELLO, **args)  # type: ignore[arg-type]


def test_wrap_envelope_per_protocol() -> None:
    assert wrap_hello() == {
        "model": "gemini-2.5-pro",
        "project": "proj-1",
        "requestId": "agent-1",
        "request": {**HELLO, "sessionId": "-1"},
        "requestType": "agent",
        "userAgent": "antigravity",
    }


@pytest.mark.parametrize("model", ["models/gemini-2.5-pro", "models/models/gemini-2.5-pro"])
def test_wrap_strips_models_prefix(model: str) -> None:
    assert wrap_hello(model=model)["model"] == "gemini-2.5-pro"


def test_wrap_image_models_get_image_gen() -> None:
    assert wrap_hello(model="gemini-2.5-flash-image")["requestType"] == "image_gen"
    assert wrap_hello(model="models/gemini-3-pro-image-preview")["requestType"] == "image_gen"
    assert request_type_for("Gemini-IMAGE") == "image_gen"
    assert request_type_for("claude-sonnet-4-5") == "agent"


def test_wrap_explicit_request_type_and_user_agent_win() -> None:
    out = wrap_hello(model="gemini-2.5-flash-image", request_type="agent", user_agent="antigravity/1.2 linux/amd64")
    assert out["requestType"] == "agent"
    assert out["userAgent"] == "antigravity/1.2 linux/amd64"


def test_wrap_does_not_mutate_input() -> None:
    request = {**HELLO, "sessionId": "client", "model": "models/x", "session_id": "snake"}
    snapshot = copy.deepcopy(request)
    out = wrap(request, model="m", project="p", request_id="r", session_id="s")
    assert request == snapshot
    assert out["request"] is not request


def test_wrap_session_id_argument_wins_and_duplicates_go() -> None:
    request = {**HELLO, "sessionId": "client", "session_id": "snake", "model": "models/other"}
    inner = wrap(request, model="m", project="p", request_id="r", session_id="mine")["request"]
    assert inner["sessionId"] == "mine"
    assert "session_id" not in inner
    assert "model" not in inner
    assert inner["contents"] is request["contents"]  # shallow copy


def test_wrap_keeps_every_other_field() -> None:
    request = {**HELLO, "generationConfig": {"x": 1}, "labels": {"a": "b"}, "cachedContent": "c"}
    inner = wrap(request, model="m", project="p", request_id="r", session_id="s")["request"]
    assert {k: v for k, v in inner.items() if k != "sessionId"} == request


# -- wrap_count_tokens --------------------------------------------------------------


def test_count_tokens_contents_form() -> None:
    assert wrap_count_tokens(HELLO, "models/gemini-2.5-pro") == {
        "request": {"model": "models/gemini-2.5-pro", "contents": HELLO["contents"]}
    }


def test_count_tokens_generate_content_request_form_plain() -> None:
    body = {"generateContentRequest": {**HELLO, "generationConfig": {"temperature": 1}}}
    assert wrap_count_tokens(body, "gemini-2.5-pro") == {
        "request": {"model": "models/gemini-2.5-pro", "contents": HELLO["contents"]}
    }


def test_count_tokens_folds_system_instruction_and_tools_into_a_leading_turn() -> None:
    tools = [{"functionDeclarations": [{"name": "get_weather", "description": "Weather for a city"}]}]
    body = {
        "generateContentRequest": {
            **HELLO,
            "systemInstruction": {"role": "system", "parts": [{"text": "Be terse."}]},
            "tools": tools,
        }
    }
    contents = wrap_count_tokens(body, "m")["request"]["contents"]
    assert len(contents) == 2
    lead = contents[0]
    assert lead["role"] == "user"
    assert lead["parts"][0] == {"text": "Be terse."}
    assert json.loads(lead["parts"][1]["text"]) == tools
    assert contents[1] == HELLO["contents"][0]


def test_count_tokens_does_not_mutate_input() -> None:
    body = {"generateContentRequest": {**HELLO, "systemInstruction": {"parts": [{"text": "s"}]}}}
    snapshot = copy.deepcopy(body)
    wrap_count_tokens(body, "m")
    assert body == snapshot


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "send"),
        ({"contents": None, "generateContentRequest": None}, "send"),
        ({**HELLO, "generateContentRequest": HELLO}, "not both"),
        ({"contents": []}, "contents must be a non-empty array"),
        ({"generateContentRequest": {"contents": []}}, "generateContentRequest.contents"),
        ({"generateContentRequest": "x"}, "generateContentRequest must be a JSON object"),
        ([], "must be a JSON object"),
    ],
)
def test_count_tokens_rejects(body: object, fragment: str) -> None:
    with pytest.raises(GatewayError) as info:
        wrap_count_tokens(body, "m")
    assert info.value.code == 400
    assert fragment in info.value.message


# -- unwrap / unwrap_event ------------------------------------------------------------


def test_unwrap() -> None:
    assert unwrap({"response": {"a": 1}, "traceId": "t"}) == {"a": 1}
    assert unwrap({"totalTokens": 3}) == {"totalTokens": 3}
    assert unwrap([{"response": 1}]) == [{"response": 1}]
    assert unwrap({"response": None}) is None
    assert unwrap("x") == "x"


RESPONSE = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hi, there: é"}]}}], "modelVersion": "m"}
COMPACT = json.dumps(RESPONSE, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize(
    "payload",
    [
        json.dumps({"response": RESPONSE, "traceId": "abc", "metadata": {}}, separators=(",", ":")).encode(),
        json.dumps({"response": RESPONSE, "traceId": "abc"}).encode(),  # ", " and ": " spacing
        json.dumps({"response": RESPONSE, "traceId": "abc"}, indent=2).encode(),  # multi-line
        json.dumps({"traceId": "abc", "response": RESPONSE}).encode(),  # other key order
        b'  {"response":' + COMPACT + b"}",  # leading whitespace
        b'{"response":\n' + COMPACT + b"\n}",
        json.dumps({"response": RESPONSE}, ensure_ascii=False).encode(),
    ],
)
def test_unwrap_event_gives_compact_response(payload: bytes) -> None:
    out = unwrap_event(payload)
    assert out == COMPACT
    assert b"\n" not in out


def test_unwrap_event_fast_path_keeps_escapes_valid() -> None:
    payload = b'{"response":{"t":"\\u00e9\\n"},"traceId":"x"}'
    out = unwrap_event(payload)
    assert json.loads(out) == {"t": "é\n"}
    assert b"\n" not in out


def test_unwrap_event_duplicate_response_key_last_wins_like_json() -> None:
    assert unwrap_event(b'{"response":{"a":1},"response":{"b":2}}') == b'{"b":2}'


def test_unwrap_event_without_response_passes_through_compact() -> None:
    assert unwrap_event(b'{"error": {"code": 500, "message": "x"}}') == b'{"error":{"code":500,"message":"x"}}'
    assert unwrap_event(b'[{"response": 1}]') == b'[{"response":1}]'


def test_unwrap_event_non_object_response() -> None:
    assert unwrap_event(b'{"response":null}') == b"null"
    assert unwrap_event(b'{"response": [1, 2]}') == b"[1,2]"


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"[DONE]",
        b"not json",
        b'{"response":',
        b'{"response":{"a":1}',
        b'{"response":{"a":1},"traceId":"x"',
        b'{"response":{"a":1}}trailing',
        b'{"response":{"a":1},}',
        b'{"response":{"a":1}} {"x":2}',
        b'{"response":"\xff"}',
    ],
)
def test_unwrap_event_rejects_non_json(payload: bytes) -> None:
    with pytest.raises(ValueError):
        unwrap_event(payload)


def test_unwrap_event_lone_surrogate_is_escaped_not_fatal() -> None:
    out = unwrap_event(b'{"response": {"t": "\\ud800 x"}}')
    assert json.loads(out) == {"t": "\ud800 x"}


# -- ids ----------------------------------------------------------------------------


def conversation(first: str, *later: str, system: str | None = None) -> dict:
    contents = [{"role": "user", "parts": [{"text": first}]}]
    for i, text in enumerate(later):
        contents.append({"role": "model" if i % 2 == 0 else "user", "parts": [{"text": text}]})
    request: dict = {"contents": contents}
    if system is not None:
        request["systemInstruction"] = {"parts": [{"text": system}]}
    return request


def test_session_id_format() -> None:
    assert re.fullmatch(r"-\d{19}", session_id_for(conversation("hi")))


def test_session_id_stable_as_the_conversation_grows() -> None:
    first = session_id_for(conversation("hi", system="sys"))
    assert session_id_for(conversation("hi", "hello!", "how are you?", system="sys")) == first
    assert session_id_for(conversation("hi", system="sys")) == first


def test_session_id_differs_for_different_conversations() -> None:
    ids = {
        session_id_for(conversation("hi")),
        session_id_for(conversation("hi!")),
        session_id_for(conversation("hi", system="a")),
        session_id_for(conversation("hi", system="b")),
    }
    assert len(ids) == 4


def test_session_id_skips_leading_model_turns_to_the_first_user_turn() -> None:
    a = {"contents": [{"role": "model", "parts": [{"text": "greeting"}]}, {"role": "user", "parts": [{"text": "q"}]}]}
    b = {"contents": [{"role": "user", "parts": [{"text": "q"}]}]}
    assert session_id_for(a) == session_id_for(b)


def test_session_id_honours_a_sane_client_session_id() -> None:
    assert session_id_for({**conversation("hi"), "sessionId": "my-chat-42"}) == "my-chat-42"
    assert session_id_for({**conversation("hi"), "session_id": "snake-7"}) == "snake-7"


@pytest.mark.parametrize("bad", ["", "   ", "x" * 129, "tab\there", "é", 42, None])
def test_session_id_ignores_unusable_client_session_ids(bad: object) -> None:
    assert session_id_for({**conversation("hi"), "sessionId": bad}) == session_id_for(conversation("hi"))


def test_session_id_tolerates_odd_contents() -> None:
    assert re.fullmatch(r"-\d{19}", session_id_for({}))
    assert re.fullmatch(r"-\d{19}", session_id_for({"contents": "x"}))
    assert session_id_for({"contents": []}) == session_id_for({})


def test_new_request_id_unique_and_prefixed() -> None:
    ids = {new_request_id() for _ in range(100)}
    assert len(ids) == 100
    for rid in ids:
        assert re.fullmatch(r"agent-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", rid)


def test_missing_roles_become_user_upstream() -> None:
    from gateway.protocol.envelope import wrap, wrap_count_tokens

    request = {"contents": [{"parts": [{"text": "hi"}]}]}
    wrapped = wrap(request, model="m", project="p", request_id="r", session_id="s")
    assert wrapped["request"]["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert request == {"contents": [{"parts": [{"text": "hi"}]}]}
    counted = wrap_count_tokens({"generateContentRequest": request}, "m")
    assert all(c["role"] for c in counted["request"]["contents"])
    kept = wrap({"contents": [{"role": "model", "parts": [{"text": "x"}]}]}, model="m", project="p", request_id="r", session_id="s")
    assert kept["request"]["contents"][0]["role"] == "model"
