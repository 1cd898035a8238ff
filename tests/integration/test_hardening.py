"""Client limits over raw sockets: each refused with a google.rpc.Status, before anything is buffered.

414 for a long URL, 431 for a large head, 408 for a client too slow with its
head or body, 400 (JSON, not Twisted's bare line) for malformed HTTP; plus
CORS and whose X-Forwarded-For is believed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor

from tests.integration.harness import Events, accounts, start_stack
from tests.integration.rawhttp import exchange, parse

HELLO = json.dumps({"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}).encode()
GENERATE = b"/v1beta/models/gemini-3-flash:generateContent"
KEY = "gw-key-0123456789abcdef"


def port_of(stack: Any) -> int:
    return stack.port.getHost().port


def google_error(raw: bytes, code: int, status: str) -> dict[str, str]:
    got, headers, body = parse(raw)
    assert got == code, raw[:300]
    assert headers["content-type"].startswith("application/json")
    assert headers["connection"] == "close" and len(headers["x-request-id"]) == 32
    error = json.loads(body)["error"]
    assert error["code"] == code and error["status"] == status and error["message"]
    return headers


def post_head(length: int, extra: bytes = b"") -> bytes:
    return (b"POST " + GENERATE + b" HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            + extra + b"Content-Length: %d\r\n\r\n" % length)


@pytest_twisted.ensureDeferred
async def test_a_url_over_the_limit_is_414(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), server={"max_url_bytes": 256}) as stack:
        raw = await exchange(port_of(stack), [b"GET /v1beta/models?pageToken=" + b"a" * 300 + b" HTTP/1.1\r\nHost: gw\r\n\r\n"])
        google_error(raw, 414, "INVALID_ARGUMENT")
        assert b"max_url_bytes" in raw
        ok = await exchange(port_of(stack), [b"GET /healthz?x=" + b"a" * 200 + b" HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"])
        assert parse(ok)[0] == 200


@pytest_twisted.ensureDeferred
async def test_a_request_line_longer_than_any_line_is_414_too(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        raw = await exchange(port_of(stack), [b"GET /healthz?x=" + b"a" * 40000 + b" HTTP/1.1\r\nHost: gw\r\n\r\n"])
        google_error(raw, 414, "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    "headers",
    [
        b"X-Big: " + b"b" * 1500 + b"\r\n",                                   # one large header
        b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 40) for i in range(40)),       # many that add up
        b"".join(b"X-N%d: 1\r\n" % i for i in range(250)),                     # too many fields
        b"X-Huge: " + b"h" * 40000 + b"\r\n",                                 # longer than any line
    ],
    ids=["one-large", "sum", "count", "line"],
)
@pytest_twisted.ensureDeferred
async def test_headers_over_the_limit_are_431(tmp_path: Path, headers: bytes) -> None:
    async with start_stack(tmp_path, accounts(1), server={"max_header_bytes": 1024}) as stack:
        raw = await exchange(port_of(stack), [post_head(len(HELLO), headers) + HELLO])
        google_error(raw, 431, "INVALID_ARGUMENT")
        assert stack.emulator.state.requests("generateContent") == []


@pytest_twisted.ensureDeferred
async def test_a_client_slow_with_its_head_gets_408(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), server={"client_timeout": 0.3}) as stack:
        started = reactor.seconds()
        raw = await exchange(port_of(stack), [b"POST " + GENERATE + b" HTTP/1.1\r\nHost: gw\r\n", 5.0])
        assert reactor.seconds() - started < 3
        google_error(raw, 408, "DEADLINE_EXCEEDED")
        assert b"client_timeout" in raw


@pytest_twisted.ensureDeferred
async def test_a_client_slower_than_the_body_rate_gets_408(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), server={"client_timeout": 0.3, "min_body_rate": 1000}) as stack:
        started = reactor.seconds()
        raw = await exchange(port_of(stack), [post_head(10000) + HELLO[:10], 5.0])
        assert reactor.seconds() - started < 3
        google_error(raw, 408, "DEADLINE_EXCEEDED")
        assert b"min_body_rate" in raw
        assert stack.emulator.state.requests("generateContent") == []


@pytest_twisted.ensureDeferred
async def test_a_body_sent_at_a_good_pace_is_served(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), server={"client_timeout": 0.25, "min_body_rate": 20}) as stack:
        quarter = len(HELLO) // 4 + 1
        pieces: list[bytes | float] = [post_head(len(HELLO), b"Connection: close\r\n")]
        for i in range(4):
            pieces += [HELLO[i * quarter:(i + 1) * quarter], 0.1]
        raw = await exchange(port_of(stack), pieces)
        status, _, body = parse(raw)
        assert status == 200, body[:300]


@pytest_twisted.ensureDeferred
async def test_malformed_http_is_a_json_400(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        raw = await exchange(port_of(stack), [b"GET /healthz HTTP/1.1\r\nHost: gw\r\nNo colon here\r\n\r\n"])
        google_error(raw, 400, "INVALID_ARGUMENT")


@pytest_twisted.ensureDeferred
async def test_the_limits_leave_ordinary_requests_alone(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        response = await stack.post(GENERATE.decode(), HELLO, headers={b"X-Fine": [b"f" * 4000]})
        assert response.code == 200, await treq.content(response)
        await treq.content(response)


# -- CORS --

PREFLIGHT = {b"Origin": [b"https://app.example.com"], b"Access-Control-Request-Method": [b"POST"],
             b"Access-Control-Request-Headers": [b"content-type, x-goog-api-key"]}


@pytest_twisted.ensureDeferred
async def test_cors_is_off_by_default(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        response = await stack.client.request("OPTIONS", stack.url + GENERATE.decode(), headers=PREFLIGHT)
        await treq.content(response)
        assert response.code == 405
        assert not response.headers.hasHeader(b"access-control-allow-origin")
        plain = await stack.post(GENERATE.decode(), HELLO, headers={b"Origin": [b"https://app.example.com"]})
        await treq.content(plain)
        assert not plain.headers.hasHeader(b"access-control-allow-origin")


@pytest_twisted.ensureDeferred
async def test_cors_answers_preflights_and_marks_answers_for_allowed_origins(tmp_path: Path) -> None:
    settings = {"server": {"cors_origins": ("https://app.example.com",)}, "auth": {"mode": "strict", "keys": (KEY,)}}
    async with start_stack(tmp_path, accounts(1), **settings) as stack:
        # The preflight carries no key and is answered anyway.
        response = await stack.client.request("OPTIONS", stack.url + GENERATE.decode(), headers=PREFLIGHT)
        assert await treq.content(response) == b""
        assert response.code == 204
        h = response.headers
        assert h.getRawHeaders(b"access-control-allow-origin") == [b"https://app.example.com"]
        assert b"POST" in h.getRawHeaders(b"access-control-allow-methods")[0]
        assert h.getRawHeaders(b"access-control-allow-headers") == [b"content-type, x-goog-api-key"]
        assert h.hasHeader(b"access-control-max-age")
        # The real request still needs the key, and its answer is readable by the page.
        refused = await stack.post(GENERATE.decode(), HELLO, headers={b"Origin": [b"https://app.example.com"]})
        assert refused.code == 401
        await treq.content(refused)
        allowed = await stack.post(GENERATE.decode(), HELLO, headers={b"Origin": [b"https://app.example.com"], b"x-goog-api-key": [KEY.encode()]})
        await treq.content(allowed)
        assert allowed.code == 200
        assert allowed.headers.getRawHeaders(b"access-control-allow-origin") == [b"https://app.example.com"]
        assert b"x-request-id" in allowed.headers.getRawHeaders(b"access-control-expose-headers")[0]
        # Another origin: its preflight is refused, Google-style, and its answers carry no grant.
        other = {**PREFLIGHT, b"Origin": [b"https://evil.example"]}
        denied = await stack.client.request("OPTIONS", stack.url + GENERATE.decode(), headers=other)
        body = json.loads(await treq.content(denied))
        assert denied.code == 403 and body["error"]["status"] == "PERMISSION_DENIED"
        assert not denied.headers.hasHeader(b"access-control-allow-origin")
        # The same refusal in the shape of the door the preflight is for (a 403 of the gateway's own, not an upstream one).
        denied = await stack.client.request("OPTIONS", stack.url + "/v1/messages", headers=other)
        body = json.loads(await treq.content(denied))
        assert denied.code == 403 and body["type"] == "error" and body["error"]["type"] == "permission_error", body
        denied = await stack.client.request("OPTIONS", stack.url + "/v1/chat/completions", headers=other)
        body = json.loads(await treq.content(denied))
        assert denied.code == 403 and body["error"]["type"] == "permission_error" and "cors_origins" in body["error"]["message"], body


@pytest_twisted.ensureDeferred
async def test_cors_wildcard(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), server={"cors_origins": ("*",)}) as stack:
        response = await stack.client.request("OPTIONS", stack.url + "/v1beta/models", headers=PREFLIGHT)
        await treq.content(response)
        assert response.code == 204 and response.headers.getRawHeaders(b"access-control-allow-origin") == [b"*"]


# -- X-Forwarded-For --


@pytest.mark.parametrize(
    "trusted, forwarded, client",
    [
        ((), b"203.0.113.7", "127.0.0.1"),                                   # no trusted proxy: the header is ignored
        (("10.0.0.0/8",), b"203.0.113.7", "127.0.0.1"),                      # the peer is not a trusted proxy
        (("127.0.0.1",), b"203.0.113.7, 10.0.0.9", "10.0.0.9"),              # right-most hop not trusted
        (("127.0.0.1", "10.0.0.0/8"), b"203.0.113.7, 10.0.0.9", "203.0.113.7"),
        (("127.0.0.1",), b"not-an-ip", "127.0.0.1"),                         # garbage: believe nothing
    ],
)
@pytest_twisted.ensureDeferred
async def test_x_forwarded_for_is_trusted_only_from_configured_proxies(tmp_path: Path, trusted: tuple, forwarded: bytes, client: str) -> None:
    async with start_stack(tmp_path, accounts(1), server={"trusted_proxies": trusted}) as stack:
        with Events() as seen:
            response = await stack.get("/healthz", headers={b"X-Forwarded-For": [forwarded]})
            await treq.content(response)
        assert [e["client"] for e in seen.events] == [client]
