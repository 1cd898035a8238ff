"""The model-call short cut (``ModelCallFront``) answers exactly as the layers it skips would."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.web.resource import Resource
from twisted.web.test.requesthelper import DummyRequest

from gateway.web.auth import AuthWrapper
from gateway.web.front import CORSResource, ModelCallFront
from gateway.web.guard import RequestGuard

MODEL = b"/v1beta/models/gemini-3-flash:generateContent"


class _Keys:
    def __init__(self, *keys: str) -> None:
        self.keys = set(keys)

    def authenticate(self, credential: str | None) -> bool:
        return credential in self.keys


class _Calls(Resource):
    """ModelCalls' stand-in: ``start`` on the short cut, ``render`` through the tree."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.started: list[bytes] = []

    def start(self, request: Any, match: Any) -> bytes:
        self.started.append(match.group(2))
        return b"answered"

    def render(self, request: Any) -> bytes:
        from gateway.web.direct import MODEL_CALL

        match = MODEL_CALL.match(request.path) if request.method == b"POST" else None
        return self.start(request, match) if match else b"klein"


def _stack(origins: tuple[str, ...], mode: str) -> tuple[ModelCallFront, RequestGuard, _Calls, AuthWrapper]:
    calls = _Calls()
    auth = AuthWrapper(calls, _Keys("good"), mode)
    cors = CORSResource(auth, origins)
    tree = RequestGuard(cors)
    return ModelCallFront(tree, cors, auth, calls), tree, calls, auth


def _request(method: bytes, path: bytes, headers: dict[bytes, bytes]) -> DummyRequest:
    request = DummyRequest([])
    request.method, request.path, request.uri = method, path, path
    for name, value in headers.items():
        request.requestHeaders.setRawHeaders(name, [value])
    return request


def _answer(resource: Any, method: bytes, path: bytes, headers: dict[bytes, bytes]) -> tuple[Any, ...]:
    request = _request(method, path, headers)
    body = resource.render(request)
    return request.responseCode, sorted(request.responseHeaders.getAllRawHeaders()), body


@pytest.mark.parametrize("origins", [(), ("https://app.example.com",), ("*",)])
@pytest.mark.parametrize("mode", ["strict", "off"])
@pytest.mark.parametrize("method, path, headers", [
    (b"POST", MODEL, {b"host": b"gw:8080", b"x-goog-api-key": b"good"}),
    (b"POST", MODEL, {b"host": b"gw", b"x-goog-api-key": b"bad", b"origin": b"https://app.example.com"}),
    (b"POST", MODEL, {b"origin": b"https://elsewhere.example.com"}),  # no key, no Host
    (b"POST", b"/v1/models/gemini-3-flash:streamGenerateContent", {b"host": b"gw", b"authorization": b"Bearer good"}),
    (b"POST", MODEL, {b"host": b"bad host\xff", b"x-goog-api-key": b"good"}),  # the guard's 400
    (b"POST", MODEL, {b"host": b"a..b", b"x-goog-api-key": b"good"}),  # not IDNA-encodable
    (b"OPTIONS", MODEL, {b"origin": b"https://app.example.com", b"access-control-request-method": b"POST"}),
    (b"GET", b"/v1beta/models", {b"host": b"gw", b"x-goog-api-key": b"good"}),
    (b"POST", b"/v1beta/models/gemini%3AgenerateContent", {b"host": b"gw", b"x-goog-api-key": b"good"}),
])
def test_the_short_cut_answers_as_the_tree(origins: tuple[str, ...], mode: str, method: bytes, path: bytes,
                                           headers: dict[bytes, bytes]) -> None:
    front, tree, calls, _ = _stack(origins, mode)
    fast = _answer(front, method, path, headers)
    started = list(calls.started)
    assert fast == _answer(tree, method, path, headers)
    assert calls.started == started * 2  # the call started (or not) on both ways alike


def test_a_model_call_skips_the_tree_and_a_reload_applies() -> None:
    front, _, calls, auth = _stack((), "strict")
    front.tree = None  # type: ignore[assignment]  # a model call never reaches it
    assert _answer(front, b"POST", MODEL, {b"x-goog-api-key": b"good"})[2] == b"answered"
    auth.strategy = _Keys("new")  # what a SIGHUP reload swaps
    code, _, body = _answer(front, b"POST", MODEL, {b"x-goog-api-key": b"good"})
    assert code == 401 and b"API key not valid" in body and calls.started == [b"gemini-3-flash:generateContent"]


def test_a_bad_host_is_refused_by_the_guard() -> None:
    front, _, calls, _ = _stack((), "off")
    for host in (b"a..b", b"bad host\xff"):
        code, _, body = _answer(front, b"POST", MODEL, {b"host": host})
        assert code == 400 and b"Host header" in body and not calls.started
