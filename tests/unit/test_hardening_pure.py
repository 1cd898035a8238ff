"""The pure parts of issue 10: door selection, request-head checks, JSON depth, SSRF address rules."""

from __future__ import annotations

import json

import pytest

from gateway.protocol.classify import classify, client_error
from gateway.upstream.fetch import FetchRefused, address_allowed, check_url, media_type
from gateway.web.app import client_fault, json_depth_exceeds, parse_json_body
from gateway.web.doors import Door, door_for_path, error_bytes, path_error_bytes
from gateway.web.guard import problem
from gateway.protocol.errors import GatewayError


@pytest.mark.parametrize("path,door", [
    ("/v1/chat/completions", Door.OPENAI),
    ("/chat/completions", Door.OPENAI),
    ("/v1/responses", Door.OPENAI),
    ("/v1/responses/resp_1/cancel", Door.OPENAI),
    ("/v1/images/generations", Door.OPENAI),
    ("/v1/images/edits?x=1", Door.OPENAI),
    ("/v1/models", Door.OPENAI),
    ("/v1/models/gemini-3-flash", Door.OPENAI),
    ("/v1/models/gemini-3-flash:generateContent", Door.GEMINI),
    ("/v1/messages", Door.ANTHROPIC),
    ("/v1/messages/count_tokens", Door.ANTHROPIC),
    ("/v1/messages/batches/x", Door.ANTHROPIC),
    ("/v1beta/models", Door.GEMINI),
    ("/healthz", Door.GEMINI),
    ("/v1/messagesX", Door.GEMINI),
    ("/v1/responsesX", Door.GEMINI),
    ("*", Door.GEMINI),
])
def test_door_for_path(path: str, door: Door) -> None:
    assert door_for_path(path) is door
    assert door_for_path(path.encode()) is door


def test_refusals_take_each_doors_shape() -> None:
    code, body = error_bytes(Door.ANTHROPIC, 413, "too big")
    assert code == 413 and json.loads(body) == {"type": "error", "error": {"type": "request_too_large", "message": "too big"}}
    code, body = error_bytes(Door.OPENAI, 431, "headers")
    assert code == 431 and set(json.loads(body)["error"]) == {"message", "type", "param", "code"}
    code, body = path_error_bytes(b"/v1beta/models", 408, "slow")
    assert json.loads(body) == {"error": {"code": 408, "message": "slow", "status": "DEADLINE_EXCEEDED"}}
    # a lone surrogate cannot break the body
    code, body = error_bytes(Door.OPENAI, 400, "bad \ud800 text")
    assert json.loads(body.decode("utf-8"))["error"]["message"] == "bad \ud800 text"


@pytest.mark.parametrize("method,path,host,code", [
    (b"GET", b"*", None, 405),
    (b"GET", b"/v1beta/%FF", None, 400),
    (b"GET", b"/v1beta/models", b"\xff\xfe", 400),
    (b"GET", b"/v1beta/models", b"x" * 300, 400),  # Werkzeug would raise BadHost inside Klein
    (b"GET", b"/v1beta/models", b"a..b:80", 400),
    (b"GET", b"/v1beta/models?x=%FF", None, None),  # the query is the route's business
    (b"GET", b"/v1beta/models/caf%C3%A9", b"localhost", None),
])
def test_request_head_problems(method: bytes, path: bytes, host: bytes | None, code: int | None) -> None:
    found = problem(method, path, host)
    assert (found[0] if found else None) == code


def test_json_bodies_too_deep_or_broken_are_400() -> None:
    for raw in (b"[" * 1000 + b"]" * 1000, b"[" * 200 + b"]" * 200, b"{\"a\":" * 300 + b"1" + b"}" * 300, b"\xff", b"{", b"  "):
        with pytest.raises(GatewayError) as caught:
            parse_json_body(raw)
        assert caught.value.code == 400
    assert parse_json_body(b"[" * 100 + b"]" * 100)
    assert not json_depth_exceeds({"a": [[{"b": 1}]]}, 4) and json_depth_exceeds({"a": [[{"b": [1]}]]}, 4)


def test_client_faults_are_4xx_and_bugs_are_not() -> None:
    from werkzeug.routing import RequestRedirect

    assert client_fault(RecursionError()).code == 400
    assert client_fault(RequestRedirect("http://x/y")).code == 404
    assert client_fault(KeyError("x")) is None


def test_a_401_that_survives_refresh_is_the_gateways_503() -> None:
    failure = classify(401, {}, json.dumps({"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                                                      "status": "UNAUTHENTICATED"}}).encode(), 0.0)
    error = client_error(failure)
    assert error.code == 503 and error.status == "UNAVAILABLE" and "re-authorise" in error.message


@pytest.mark.parametrize("address,allowed", [
    ("8.8.8.8", True), ("2606:4700::1111", True),
    ("127.0.0.1", False), ("::1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("fe80::1", False), ("224.0.0.1", False), ("ff02::1", False), ("0.0.0.0", False),
    ("100.64.0.1", False), ("240.0.0.1", False), ("::ffff:127.0.0.1", False), ("fc00::1", False), ("not-an-ip", False),
])
def test_only_public_addresses_are_fetched(address: str, allowed: bool) -> None:
    assert address_allowed(address) is allowed


def test_an_operator_can_allow_more() -> None:
    import ipaddress

    nets = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("fd00::/8")]
    assert address_allowed("127.0.0.1", nets) and address_allowed("fd12::1", nets) and not address_allowed("10.0.0.1", nets)


def test_urls_and_media_types() -> None:
    assert check_url("https://example.com/a.png") == ("https", "example.com", 443)
    assert check_url("http://[::1]:8080/x") == ("http", "::1", 8080)
    for bad in ("file:///etc/passwd", "gopher://x/", "http:///nohost", "http://user:pw@example.com/", "http://x:99999/"):
        with pytest.raises(FetchRefused):
            check_url(bad)
    assert media_type("image/png; charset=binary") == "image/png"
    assert media_type("application/pdf") == "application/pdf"
    assert media_type("text/plain") is None and media_type("") is None


def test_emulator_body_faults_validate_and_default_to_200() -> None:
    from gateway.emulator.body_faults import huge_answer
    from gateway.emulator.state import Fault, StateError

    fault = Fault.from_json({"method": "generateContent", "kind": "huge", "size": 1000}, "f1")
    assert fault.status == 200 and fault.size == 1000
    assert Fault.from_json({"method": "token", "kind": "stall_body"}, "f2").status == 200
    with pytest.raises(StateError):
        Fault.from_json({"kind": "huge", "size": -1}, "f3")
    document = json.loads(huge_answer(5000))
    assert len(document["response"]["candidates"][0]["content"]["parts"][0]["text"]) == 5000
