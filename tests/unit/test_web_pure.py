"""The small pure pieces of the web edge: path parsing, SSE choice, auth scope, stream formats."""

from __future__ import annotations

import json

import pytest

from gateway.protocol.errors import GatewayError
from gateway.protocol.paths import parse_model_call, wants_sse
from gateway.web.auth import needs_auth
from gateway.web.relay import StreamFormat


@pytest.mark.parametrize(
    "rest, expected",
    [
        ("gemini-2.5-pro:generateContent", ("gemini-2.5-pro", "generateContent")),
        ("models/gemini-2.5-pro:streamGenerateContent", ("gemini-2.5-pro", "streamGenerateContent")),
        ("models/models/gemini-2.5-pro:countTokens", ("gemini-2.5-pro", "countTokens")),
        ("gemini-2.5-pro/countTokens", ("gemini-2.5-pro", "countTokens")),
        ("gemini-2.5-pro%3AgenerateContent", ("gemini-2.5-pro", "generateContent")),
        ("gemini-2.5-pro", ("gemini-2.5-pro", None)),
    ],
)
def test_parse_model_call(rest: str, expected: tuple) -> None:
    assert parse_model_call(rest) == expected


@pytest.mark.parametrize("rest", ["", ":generateContent", "a/b/c", "a:", "a:b:c"])
def test_parse_model_call_rejects_junk_with_404(rest: str) -> None:
    with pytest.raises(GatewayError) as caught:
        parse_model_call(rest)
    assert caught.value.code == 404


def test_wants_sse() -> None:
    assert wants_sse({b"alt": [b"sse"]})
    assert wants_sse({b"$alt": [b"sse"]})
    assert not wants_sse({b"$alt": [b"json;enum-encoding=int"]})
    assert not wants_sse({b"alt": [b"json"]})
    assert not wants_sse({})


@pytest.mark.parametrize(
    "mode, path, needed",
    [
        ("off", b"/v1beta/models", False),
        ("strict", b"/healthz", True),
        ("strict", b"/v1beta/models", True),
        ("all_except_health", b"/healthz", False),
        ("all_except_health", b"/v1/models", True),
        ("all_except_health", b"/healthz/../v1/models", True),
    ],
)
def test_needs_auth(mode: str, path: bytes, needed: bool) -> None:
    assert needs_auth(mode, path) is needed


def test_sse_format_unwraps_and_frames_each_event() -> None:
    fmt = StreamFormat(sse=True)
    out = fmt.event(b'{"response": {"candidates": []}, "traceId": "t"}')
    assert out == b'data: {"candidates":[]}\r\n\r\n'
    error = fmt.error(504, "stalled")
    assert error.startswith(b"data: ") and error.endswith(b"\r\n\r\n")
    assert json.loads(error[6:])["error"]["status"] == "DEADLINE_EXCEEDED"
    assert fmt.end() == b""
    assert fmt.content_type == b"text/event-stream"


def test_array_format_is_one_json_array_with_errors_as_elements() -> None:
    fmt = StreamFormat(sse=False)
    body = fmt.event(b'{"response":{"a":1}}') + fmt.event(b'{"response":{"a":2}}') + fmt.error(502, "cut") + fmt.end()
    parsed = json.loads(body)
    assert parsed[:2] == [{"a": 1}, {"a": 2}] and parsed[2]["error"]["code"] == 502
    assert StreamFormat(sse=False).end() == b"[]"
