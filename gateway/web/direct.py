"""The model calls (``POST /{version}/models/{model}:{action}``, and the OpenAI/Anthropic
``POST /v1/chat/completions``, ``/v1/messages`` and ``/v1/responses``) without Klein's dispatch.

Almost every request is one of these, and Klein costs about 50-100 µs each
(Werkzeug map binding and matching, ``maybeDeferred`` layers, two
``notifyFinish`` Deferreds). ``ModelCalls`` recognises them with one regex
and runs ``GatewayApp.model_action`` (the very handler Klein routes to) the
way ``KleinResource.render`` would: the answer is written and the request
finished, a failure is answered by ``GatewayApp.failed`` (Klein's error
handler), and a client that hangs up cancels the handler. Anything else,
including paths Klein would decode first (``%3A``) or model ids with other
characters, goes to Klein unchanged. ``DirectRoutes`` does the same for the
OpenAI/Anthropic hot paths and the Responses API's create (``DirectRoutes``:
exact paths, POST only) with their apps' handlers and error answers.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET

from gateway.upstream.deadline import HANDLER, Handler
from gateway.web.failures import log_unhandled, unhandled

if TYPE_CHECKING:
    from gateway.web.app import GatewayApp
    from gateway.web.compat_routes import CompatApp
    from gateway.web.responses_routes import ResponsesApp

MODEL_CALL = re.compile(
    rb"^/(v1beta|v1|v1alpha)/models/([A-Za-z0-9._\-]+:(?:generateContent|streamGenerateContent|countTokens))$"
)
log = Logger()
_unhandled = unhandled(log)


class _Call(Handler):
    """One request served without Klein, in flight: finishes it with the handler's answer or error.

    It is also the handler (``deferred``) the overall deadline cancels (``gateway.upstream.deadline``).
    """

    __slots__ = ("app", "request", "finished")

    def __init__(self, app: "GatewayApp | CompatApp | ResponsesApp", request: IRequest) -> None:
        super().__init__()
        self.app = app
        self.request = request
        self.finished = False

    def ended(self, result: Any) -> None:
        """``notifyFinish``: the response is done, or the client went away (cancel the handler)."""
        self.finished = True
        if isinstance(result, Failure) and self.deferred is not None:
            self.deferred.cancel()

    def settled(self, result: Any) -> None:
        """The handler's answer or error, written; anything raised while writing is logged."""
        try:
            if isinstance(result, Failure):
                self.failed(result)
            else:
                self.answered(result)
        except Exception:
            _unhandled(Failure())

    def answered(self, body: bytes | None) -> None:
        if self.finished:
            return
        request = self.request
        if body:
            if not getattr(request, "startedWriting", True):
                # A whole answer goes out with its length (as Klein's did), not chunked: one write, no framing.
                request.setHeader(b"Content-Length", b"%d" % len(body))
            request.write(body)
        request.finish()

    def failed(self, failure: Failure) -> None:
        if self.finished:
            if not failure.check(CancelledError):
                log_unhandled(log, failure, self.request.path, "unhandled error after the request ended")
            return
        self.answered(self.app.failed(self.request, failure))


class ModelCalls(Resource):
    """A leaf in front of the Klein resource: model calls here, everything else to ``klein``."""

    isLeaf = True

    def __init__(self, app: "GatewayApp", klein: IResource) -> None:
        super().__init__()
        self.app = app
        self.klein = klein

    def render(self, request: IRequest) -> Any:
        match = MODEL_CALL.match(request.path) if request.method == b"POST" else None
        if match is None:
            return self.klein.render(request)
        return self.start(request, match)

    def start(self, request: IRequest, match: "re.Match[bytes]") -> Any:
        """Run the handler for the model call ``match`` (of :data:`MODEL_CALL` on the request's path)."""
        version, rest = match.group(1).decode("ascii"), match.group(2).decode("ascii")
        return run_handler(self.app, request, lambda: self.app.model_action(request, version, rest))


#: The OpenAI/Anthropic hot paths (exact, as Klein routes them) and the ``CompatApp`` handler of each.
COMPAT_ROUTES = {
    b"/v1/chat/completions": "chat_completions",
    b"/chat/completions": "chat_completions",
    b"/v1/messages": "messages",
    b"/v1/messages/count_tokens": "count_tokens",
}
#: The Responses API's create (Codex), run by ``ResponsesApp.create``.
RESPONSES_ROUTES = {b"/v1/responses": "create", b"/responses": "create"}


class DirectRoutes(Resource):
    """A leaf in front of an OpenAI/Anthropic Klein resource: the POST paths of ``routes`` run the
    app's handler of that name here, everything else goes to ``klein``."""

    isLeaf = True

    def __init__(self, app: Any, klein: IResource, routes: dict[bytes, str]) -> None:
        super().__init__()
        self.app = app
        self.klein = klein
        #: Each path's bound handler, looked up once here rather than on every request.
        self.handlers = {path: getattr(app, name) for path, name in routes.items()}

    def render(self, request: IRequest) -> Any:
        handler = self.handlers.get(request.path) if request.method == b"POST" else None
        if handler is None:
            return self.klein.render(request)
        return run_handler(self.app, request, lambda: handler(request))


def run_handler(app: Any, request: IRequest, handler: Any) -> Any:
    """Run the coroutine ``handler()`` for ``request`` as ``KleinResource.render`` would, answering
    failures with ``app.failed`` (the app's Klein error handlers), and name it as the request's
    handler (:data:`HANDLER`): the overall deadline inside then cancels it without a Deferred of its own."""
    call = _Call(app, request)
    on_end = getattr(request, "on_end", None)  # GatewayRequest's: no Deferred per request
    if on_end is not None:
        on_end(call.ended)
    else:
        request.notifyFinish().addBoth(call.ended)
    token = HANDLER.set(call)  # the coroutine's context keeps it: deadlines inside cancel ``handler``
    try:
        coroutine = call.coroutine = handler()
        call.deferred = Deferred.fromCoroutine(coroutine)
    finally:
        HANDLER.reset(token)
    call.deferred.addBoth(call.settled)
    return NOT_DONE_YET
