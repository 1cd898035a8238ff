"""``framing.loads``/``framing.dumps`` answer exactly what ``json.loads``/``json.dumps`` answered."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocol import framing

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def reference_dumps(obj: Any) -> bytes:
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":")).encode("ascii")


def outcome(call: Any) -> tuple[str, Any]:
    """A call's value, or its exception's type and text (what a client's 400 message is made of)."""
    try:
        value = call()
    except (ValueError, RecursionError) as e:
        return type(e).__name__, str(e)
    return "ok", json.dumps(value, sort_keys=True) if not _has_nan(value) else repr(value)


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, list):
        return any(_has_nan(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    return False


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(value=VALUES)
def test_dumps_is_unchanged(value: Any) -> None:
    assert framing.dumps(value) == reference_dumps(value)


ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(value=VALUES, encoding=ENCODINGS, ascii_only=st.booleans())
def test_loads_reads_every_encoding_json_loads_reads(value: Any, encoding: str, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    try:
        raw = text.encode(encoding)
    except UnicodeEncodeError:  # lone surrogates only exist escaped
        raw = json.dumps(value).encode(encoding)
    assert outcome(lambda: framing.loads(raw)) == outcome(lambda: json.loads(raw))


@settings(max_examples=600, derandomize=True, database=None, deadline=None)
@given(raw=st.binary(max_size=40) | st.text(max_size=30).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_loads_fails_as_json_loads_fails(raw: bytes) -> None:
    assert outcome(lambda: framing.loads(raw)) == outcome(lambda: json.loads(raw))


@pytest.mark.parametrize("raw", [
    b"", b" ", b"{", b'{"a":1}x', b"\xef\xbb\xbf{}", b"\xef\xbb\xbf", b'{"a":"\xff"}', b'{"a":NaN}', b"[1,2",
    b'"\x00"', b"{\x00}", b"1\x00", b'{"a":"\\ud800"}', b"[" * 5000 + b"]" * 5000, '{"é":"ü"}'.encode(),
])
def test_loads_edge_cases(raw: bytes) -> None:
    assert outcome(lambda: framing.loads(raw)) == outcome(lambda: json.loads(raw))


@pytest.mark.parametrize("raw", [
    b' {"a":1}', b'{"a":1} ', b'{"a":1}\r\n\t ', b'{"a":1}\x0b', b'{"a":1}\x0c', '{"a":1}\u00a0'.encode(), b'{"a":1}{}',
    b'1 2', b'"x"\n', b"\n", b"[]]",
])
def test_loads_leading_and_trailing_text(raw: bytes) -> None:
    assert outcome(lambda: framing.loads(raw)) == outcome(lambda: json.loads(raw))


def _reference_body(raw: bytes) -> tuple[str, Any]:
    """parse_json_body's answer as it was with ``raw.strip()`` and ``json.loads``."""
    from gateway.web.app import MAX_JSON_DEPTH, json_depth_exceeds

    if not raw.strip():
        return "error", "The request body is empty; send a JSON object."
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)[:200]
        return "error", f"Invalid JSON payload received: {reason}."
    if raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH and json_depth_exceeds(document):
        return "error", f"Invalid JSON payload received: nested deeper than {MAX_JSON_DEPTH} levels."
    return "ok", repr(document)


def _body(raw: bytes) -> tuple[str, Any]:
    from gateway.protocol.errors import GatewayError
    from gateway.web.app import parse_json_body

    try:
        return "ok", repr(parse_json_body(raw))
    except GatewayError as e:
        assert e.code == 400
        return "error", e.message


@settings(max_examples=600, derandomize=True, database=None, deadline=None)
@given(raw=st.binary(max_size=30) | st.sampled_from([b"", b" \t\r\n\x0b\x0c", b"\x0b{}", b"{}\x0c", b"[" * 300 + b"]" * 300])
       | VALUES.map(lambda v: json.dumps(v).encode()))
def test_parse_json_body_answers_as_before(raw: bytes) -> None:
    assert _body(raw) == _reference_body(raw)


@settings(max_examples=500, derandomize=True, database=None, deadline=None)
@given(value=VALUES | st.dictionaries(st.text(max_size=3) | st.integers() | st.floats() | st.booleans() | st.none(), VALUES, max_size=3),
       ensure_ascii=st.booleans(), sort_keys=st.booleans())
def test_compact_encoder_writes_what_json_dumps_writes(value: Any, ensure_ascii: bool, sort_keys: bool) -> None:
    encode = framing.compact_encoder(ensure_ascii=ensure_ascii, sort_keys=sort_keys)
    try:
        expected = json.dumps(value, separators=(",", ":"), ensure_ascii=ensure_ascii, sort_keys=sort_keys)
    except TypeError as e:  # sort_keys over mixed key types
        with pytest.raises(TypeError) as caught:
            encode(value)
        assert str(caught.value) == str(e)
        return
    assert encode(value) == expected


def test_compact_encoder_default_and_unknown_objects() -> None:
    import datetime

    value = {"b": [datetime.date(2026, 1, 2), 1.5, float("inf")], "a": "é"}
    assert framing.compact_encoder(ensure_ascii=True, sort_keys=True, default=str)(value) == json.dumps(
        value, separators=(",", ":"), sort_keys=True, default=str)
    with pytest.raises(TypeError, match="not JSON serializable"):
        framing.compact_encoder(ensure_ascii=False)({"a": object()})
    assert framing.compact_encoder(ensure_ascii=False)("plain é") == json.dumps("plain é", ensure_ascii=False)
