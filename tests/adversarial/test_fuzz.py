"""Property-based fuzzing of every route: bodies, paths, headers, framing (Hypothesis).

One gateway (started with ``twist``, as users run it) and its emulator serve a
fixed, derandomised set of generated requests sent as raw bytes. Whatever
arrives, the properties hold:

- never a 5xx the gateway raised itself (no 500; 501-504 only, which are
  deliberate: unimplemented, or upstream trouble);
- every error is JSON in the shape of the door its path names;
- the log never holds a traceback, nor any credential sent (right or wrong).

Bounded: a fixed number of examples, no example database, derandomised, so a
run is repeatable and takes a few seconds.
"""

from __future__ import annotations

import json
import os
import string
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.web.doors import Door, door_for_path
from tests.integration import processes
from tests.integration.rawhttp import blocking_exchange, dechunk

KEY = "sk-fuzz-5f1d2c3b4a59687766554433"
WRONG_KEY = "sk-wrong-99887766554433221100aa"
#: Fixed and derandomised in CI; ``FUZZ_EXAMPLES=5000`` (random each run) for a longer hunt by hand.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
DERANDOMIZE = "FUZZ_EXAMPLES" not in os.environ

ROUTES = [
    ("POST", "/v1beta/models/gemini-3-flash:generateContent", "gemini"),
    ("POST", "/v1beta/models/gemini-3-flash:streamGenerateContent?alt=sse", "gemini"),
    ("POST", "/v1beta/models/gemini-3-flash:streamGenerateContent", "gemini"),
    ("POST", "/v1beta/models/gemini-3-flash:countTokens", "gemini"),
    ("POST", "/v1/models/claude-sonnet-4-6:generateContent", "gemini"),
    ("POST", "/v1beta/models/gemini-3-flash:embedContent", "gemini"),
    ("GET", "/v1beta/models", "gemini"),
    ("GET", "/v1beta/models/gemini-3-flash", "gemini"),
    ("GET", "/v1/models", "openai"),
    ("POST", "/v1/chat/completions", "openai"),
    ("POST", "/chat/completions", "openai"),
    ("POST", "/v1/responses", "openai"),
    ("POST", "/v1/images/generations", "openai"),
    ("POST", "/v1/messages", "anthropic"),
    ("POST", "/v1/messages/count_tokens", "anthropic"),
    ("GET", "/healthz", "gemini"),
    ("GET", "/admin/accounts", "gemini"),
    ("GET", "/nowhere", "gemini"),
    ("HEAD", "/healthz", "gemini"),
    ("HEAD", "/admin/accounts", "gemini"),
    ("HEAD", "/v1/models", "openai"),
]

LONE = st.sampled_from(["\ud800", "a\udfffb", "\udbff", "x\ud83d"])
TEXT = st.text(max_size=12) | LONE
SCALARS = st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False, allow_infinity=False) | TEXT
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                      max_leaves=12)
PARTS = st.lists(st.one_of(st.fixed_dictionaries({"text": TEXT}), VALUES), max_size=3)
GEMINI = st.fixed_dictionaries(
    {"contents": st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "model", "x"]), "parts": PARTS}), max_size=3) | VALUES},
    optional={"generationConfig": VALUES | st.fixed_dictionaries({"maxOutputTokens": VALUES, "thinkingConfig": VALUES}),
              "tools": VALUES, "systemInstruction": VALUES, "safetySettings": VALUES},
)
CONTENT = TEXT | st.lists(st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": TEXT}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": st.sampled_from(
        ["data:image/png;base64,iVBORw0KGgo=", "data:,x", "http://127.0.0.1:1/x.png", "ftp://x/y", "data:image/png;base64,%%%"])})}),
    st.fixed_dictionaries({"type": st.sampled_from(["image", "document", "tool_use", "tool_result", "thinking"]),
                           "source": VALUES}),
    VALUES), max_size=3)
MESSAGES = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool", "developer", "bogus"]),
                                           "content": CONTENT}, optional={"tool_calls": VALUES, "name": TEXT}), max_size=3)
MODEL = st.sampled_from(["gemini-3-flash", "claude-sonnet-4-6", "claude-opus-4-6-thinking", "", "nope", "gpt-4o"]) | VALUES
OPENAI = st.fixed_dictionaries({"model": MODEL, "messages": MESSAGES | VALUES},
                               optional={"stream": st.booleans() | VALUES, "tools": VALUES, "max_tokens": VALUES,
                                         "response_format": VALUES, "reasoning_effort": VALUES, "n": VALUES, "tool_choice": VALUES})
ANTHROPIC = st.fixed_dictionaries({"model": MODEL, "messages": MESSAGES | VALUES, "max_tokens": st.integers(-5, 100000) | VALUES},
                                  optional={"stream": st.booleans() | VALUES, "system": VALUES | TEXT, "tools": VALUES,
                                            "thinking": VALUES, "tool_choice": VALUES, "metadata": VALUES})


DEPTHS = st.sampled_from([2, 60, 130, 400, 999, 1200, 5000])


def _encode(document: Any) -> bytes:
    return json.dumps(document).encode()  # ASCII escapes: lone surrogates go through as \ud800


BODIES = st.one_of(
    GEMINI.map(_encode), OPENAI.map(_encode), ANTHROPIC.map(_encode), VALUES.map(_encode),
    st.binary(max_size=120),
    DEPTHS.map(lambda n: b"[" * n + b"]" * n),
    DEPTHS.map(lambda n: b'{"contents":' + b"[" * n + b"]" * n + b"}"),
    DEPTHS.map(lambda n: b'{"model":"gemini-3-flash","messages":[{"role":"user","content":' + b"[" * n + b"]" * n + b"}]}"),
    st.just(b""),
)
TOKEN = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
HEADER_VALUES = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
EXTRA_HEADERS = st.lists(st.tuples(st.text(TOKEN, min_size=1, max_size=16).map(str.encode), HEADER_VALUES), max_size=4)
#: Mostly a valid key, so most requests reach the routes behind the auth check.
CREDENTIALS = st.sampled_from(["x-goog-api-key", "authorization", "x-api-key"] * 3 + ["query", "none", "wrong-header", "wrong-query"])
PATH_MUTATIONS = st.sampled_from(["none", "none", "none", "double-slash", "ff", "trailing-slash", "suffix", "encoded", "star"])
#: LF-only heads never complete a line for Twisted: they end in a 408 after ``client_timeout`` (kept short, and rare).
FRAMINGS = st.sampled_from(["plain"] * 6 + ["chunked", "short-length", "bad-chunk", "http10", "no-length", "lf"])
HOSTS = st.sampled_from([b"127.0.0.1", b"127.0.0.1", b"\xff\xfe", b"", None, b"x" * 300])
CONTENT_TYPES = st.sampled_from([b"application/json", b"application/json", b"text/plain", b"application/x-www-form-urlencoded", None])


def mutate(path: str, how: str, suffix: str) -> str:
    base, _, query = path.partition("?")
    if how == "double-slash":
        base = base.replace("/", "//", 2)[1:] if base.count("/") > 1 else "/" + base
    elif how == "ff":
        base += "%FF"
    elif how == "trailing-slash":
        base += "/"
    elif how == "suffix":
        base += "/" + suffix
    elif how == "encoded":
        base = base.replace("/", "%2F", 2).replace(":", "%3A")
        base = "/" + base.lstrip("/%2F") if not base.startswith("/") else base
    elif how == "star":
        return "*"
    return base + ("?" + query if query else "")


def build(method: str, target: str, body: bytes, credential: str, headers: list[tuple[bytes, bytes]], framing: str,
          host: bytes | None, content_type: bytes | None) -> bytes:
    """The raw request: ``Connection: close`` so every exchange ends with the server closing."""
    if credential in ("query", "wrong-query") and target != "*":
        target += ("&" if "?" in target else "?") + "key=" + (KEY if credential == "query" else WRONG_KEY)
    eol = b"\n" if framing == "lf" else b"\r\n"
    version = b"HTTP/1.0" if framing == "http10" else b"HTTP/1.1"
    lines = [method.encode() + b" " + target.encode("latin-1") + b" " + version]
    if host is not None:
        lines.append(b"Host: " + host)
    lines.append(b"Connection: close")
    if credential in ("x-goog-api-key", "x-api-key"):
        lines.append(credential.encode() + b": " + KEY.encode())
    elif credential == "authorization":
        lines.append(b"Authorization: Bearer " + KEY.encode())
    elif credential == "wrong-header":
        lines.append(b"x-goog-api-key: " + WRONG_KEY.encode())
    if content_type is not None:
        lines.append(b"Content-Type: " + content_type)
    lines += [name + b": " + value for name, value in headers if name.lower() not in (
        b"content-length", b"transfer-encoding", b"connection", b"host", b"expect")]
    payload = body
    if framing in ("chunked", "bad-chunk"):
        lines.append(b"Transfer-Encoding: chunked")
        if framing == "chunked":
            payload = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 50]), body[i:i + 50]) for i in range(0, len(body), 50)) + b"0\r\n\r\n"
        else:
            payload = b"zz\r\n" + body + b"\r\n0\r\n\r\n"
    elif framing == "short-length":
        lines.append(b"Content-Length: %d" % max(0, len(body) // 2))
    elif framing != "no-length" or method == "POST":
        lines.append(b"Content-Length: %d" % len(body))
    return eol.join(lines) + eol + eol + payload


def door_shaped(door: Door, document: Any) -> bool:
    if not isinstance(document, dict):
        return False
    error = document.get("error")
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return False
    if door is Door.ANTHROPIC:
        return document.get("type") == "error" and isinstance(error.get("type"), str)
    if door is Door.OPENAI:
        return isinstance(error.get("type"), str) and "status" not in error
    return isinstance(error.get("code"), int) and isinstance(error.get("status"), str)


def log_problems(text: str) -> list[str]:
    found = []
    for needle in ("Traceback", "log_failure", KEY, WRONG_KEY, "key=sk-"):
        if needle in text:
            found.append(needle)
    return found


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[processes.Stack]:
    directory: Path = tmp_path_factory.mktemp("fuzz")
    stack = processes.start(directory, store_accounts=2, server_toml="client_timeout = 0.3\n",
                            extra_toml=f'[auth]\nmode = "all_except_health"\nkeys = ["{KEY}"]\n')
    try:
        yield stack
    finally:
        stack.close()


class _Offset:
    value = 0


@settings(max_examples=EXAMPLES, derandomize=DERANDOMIZE, database=None, deadline=None, print_blob=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(route=st.sampled_from(ROUTES), body=BODIES, credential=CREDENTIALS, headers=EXTRA_HEADERS, framing=FRAMINGS,
       mutation=PATH_MUTATIONS, suffix=st.text(string.ascii_letters + string.digits + "-._~:@", max_size=10),
       host=HOSTS, content_type=CONTENT_TYPES)
def test_no_request_makes_the_gateway_fail(gateway: processes.Stack, route: tuple[str, str, str], body: bytes, credential: str,
                                           headers: list[tuple[bytes, bytes]], framing: str, mutation: str, suffix: str,
                                           host: bytes | None, content_type: bytes | None) -> None:
    method, path, _ = route
    target = mutate(path, mutation, suffix)
    if method in ("GET", "HEAD"):
        body = b""
    raw = blocking_exchange(int(gateway.gateway_url.rsplit(":", 1)[1]), build(method, target, body, credential, headers, framing, host, content_type))
    assert raw.startswith(b"HTTP/1."), (target, raw[:200])
    head, _, payload = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    head_lower = head.lower()
    assert status != 500 and status < 600, (target, raw[:500])
    if b"transfer-encoding: chunked" in head_lower:
        payload = dechunk(payload)
    if method == "HEAD":
        assert not payload, (target, raw[:300])  # a HEAD answer carries no body
    elif status >= 400:
        assert b"content-type: application/json" in head_lower, (target, raw[:300])
        document = json.loads(payload)
        door = door_for_path(target.split("?", 1)[0].encode("latin-1"))
        assert door_shaped(door, document), (target, status, document)
        assert "Internal gateway error" not in payload.decode("utf-8")  # strict UTF-8 too
    elif status == 200 and b"text/event-stream" not in head_lower and payload[:1] in (b"{", b"["):
        json.loads(payload.decode("utf-8"))
    text = gateway.gateway.text()
    new, _Offset.value = text[_Offset.value:], len(text)
    assert not log_problems(new), (target, log_problems(new), new[-3000:])


def test_the_whole_fuzz_log_is_clean(gateway: processes.Stack) -> None:
    """After every example (and anything logged late): no traceback, no credential."""
    text = gateway.gateway.text()
    assert text, "the gateway wrote no log at all"
    assert not log_problems(text), text[-3000:]
