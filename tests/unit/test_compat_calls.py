"""DirectRoutes: the OpenAI/Anthropic hot POST paths run their app's handler directly, the rest go to Klein."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from gateway.upstream.deadline import HANDLER
from gateway.web.direct import COMPAT_ROUTES, RESPONSES_ROUTES, DirectRoutes


class App:
    def __init__(self) -> None:
        self.ran: list[str] = []
        self.handlers: list[Any] = []

    def _handler(self, name: str) -> Any:
        async def handle(request: Any) -> bytes:
            self.ran.append(name)
            self.handlers.append(HANDLER.get())
            return b'{"ok":true}'
        return handle

    def __getattr__(self, name: str) -> Any:
        if name in ("chat_completions", "messages", "count_tokens", "create"):
            return self._handler(name)
        raise AttributeError(name)

    def failed(self, request: Any, failure: Any) -> bytes:
        raise AssertionError(failure)


class Klein:
    def __init__(self) -> None:
        self.paths: list[bytes] = []

    def render(self, request: Any) -> bytes:
        self.paths.append(request.path)
        return b"klein"


def request(method: bytes, path: bytes) -> DummyRequest:
    r = DummyRequest([])
    r.method, r.path = method, path
    return r


def test_hot_posts_run_directly_as_the_named_handler_and_everything_else_goes_to_klein() -> None:
    app, klein = App(), Klein()
    calls = DirectRoutes(app, klein, COMPAT_ROUTES)
    for path in (b"/v1/chat/completions", b"/chat/completions", b"/v1/messages", b"/v1/messages/count_tokens"):
        r = request(b"POST", path)
        assert calls.render(r) is NOT_DONE_YET
        assert r.finished and b"".join(r.written) == b'{"ok":true}'
    assert app.ran == ["chat_completions", "chat_completions", "messages", "count_tokens"]
    assert all(h is not None and isinstance(h.deferred, Deferred) for h in app.handlers)  # the deadline's handler
    for method, path in ((b"GET", b"/v1/messages"), (b"POST", b"/v1/messages/"), (b"POST", b"/v1/embeddings"),
                         (b"POST", b"/v1/chat/completions/x")):
        assert calls.render(request(method, path)) == b"klein"
    assert klein.paths == [b"/v1/messages", b"/v1/messages/", b"/v1/embeddings", b"/v1/chat/completions/x"]
    assert HANDLER.get() is None  # not left set outside the handler


def test_the_responses_create_paths_run_create() -> None:
    app, klein = App(), Klein()
    calls = DirectRoutes(app, klein, RESPONSES_ROUTES)
    for path in (b"/v1/responses", b"/responses"):
        assert calls.render(request(b"POST", path)) is NOT_DONE_YET
    assert calls.render(request(b"GET", b"/v1/responses/resp_1")) == b"klein"
    assert app.ran == ["create", "create"]
