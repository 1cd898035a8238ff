"""The OpenAI and Anthropic front doors: routing, auth, image fetching and relaying only.

Every translation is in ``gateway.compat`` (pure). Here: read the body,
resolve the model, fetch remote images (``gateway.upstream.fetch``: public addresses only,
capped), call the same
``Forwarder`` the Gemini routes use, and either translate the whole answer or
relay the upstream SSE through the shared :class:`StreamRelay` with a format
object that speaks OpenAI chunks or Anthropic named events. Errors are shaped
for the door they came through — before the first byte with the right HTTP
status, after it as an in-stream error event. Streams commit their 200 only
when the first upstream event arrives, so an upstream failure before that is
still a proper HTTP error the SDKs can retry.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable

from klein import Klein
from treq.client import HTTPClient
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from werkzeug.exceptions import MethodNotAllowed, NotFound

from gateway import observe
from gateway.compat import anthropic_request, anthropic_response, openai_request, openai_response
from gateway.compat.anthropic_search import SEARCH_MODEL
from gateway.compat.anthropic_stream import AnthropicStream
from gateway.compat.common import is_claude
from gateway.compat.models import resolve
from gateway.compat.common import read_stream_event
from gateway.compat.openai_stream import OpenAIStream
from gateway.compat.signatures import SignatureMemory
from gateway.forward import Forwarder
from gateway.interfaces import IAuthStrategy, IModelMapper
from gateway.protocol import envelope, framing
from gateway.protocol.errors import GatewayError
from gateway.upstream.deadline import within
from gateway.upstream.fetch import FetchPolicy, FetchRefused, SafeFetcher
from gateway.web.app import client_fault, read_json
from gateway.web.doors import Door, door_for_path, error_bytes
from gateway.web.failures import log_unhandled
from gateway.web.auth import needs_auth, request_credential
from gateway.web.relay import StreamRelay

JSON = b"application/json"
log = Logger()

#: The Responses and Images doors (gateway.web.responses_routes), OpenAI-shaped like Chat.
RESPONSES_IMAGES_PATHS = frozenset({b"/v1/responses", b"/responses", b"/v1/images/generations", b"/v1/images/edits",
                                    b"/images/generations", b"/images/edits"})
OPENAI_PATHS = frozenset({b"/v1/chat/completions", b"/chat/completions"}) | RESPONSES_IMAGES_PATHS
ANTHROPIC_PATHS = frozenset({b"/v1/messages", b"/v1/messages/count_tokens"})
COMPAT_PATHS = OPENAI_PATHS | ANTHROPIC_PATHS


def is_compat(path: bytes) -> bool:
    """Served by this app: every OpenAI/Anthropic path (known or not) except the models list,
    which the Gemini app answers for all three SDKs."""
    if path.startswith(b"/v1beta/"):  # the Gemini API's own prefix (most requests): no door is under it
        return False
    return door_for_path(path) is not Door.GEMINI and not (path == b"/v1/models" or path.startswith(b"/v1/models/"))


def shaped_error(request: IRequest, code: int, message: str, headers: dict[str, str] | None = None, *, own: bool = False) -> bytes:
    """Set the status and headers of ``request`` and return the error body for its door.

    ``own``: the gateway's own refusal (a key's limits), answered with its real
    status even where an upstream 403 would be turned into a 503."""
    door = door_for_path(request.path)
    status, body = error_bytes(door if door is not Door.GEMINI else Door.OPENAI, code, message, own=own)
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", JSON)
    for name, value in (headers or {}).items():
        request.setHeader(name.encode(), value.encode())
    return body


def answer_gateway_error(request: IRequest, failure: Any) -> bytes:
    """A ``GatewayError`` raised by an OpenAI/Anthropic route, in its door's shape (every compat Klein app)."""
    error: GatewayError = failure.value
    return shaped_error(request, error.code, error.message, error.headers, own=type(error).__name__ == "KeyRefused")


def answer_unexpected(request: IRequest, failure: Any) -> bytes:
    """Any other exception: the client's 4xx when it is the client's doing, else a logged (scrubbed) 500."""
    known = client_fault(failure.value)
    if known is not None:
        return shaped_error(request, known.code, known.message, known.headers)
    log_unhandled(log, failure, request.path)
    return shaped_error(request, 500, "Internal gateway error; it has been logged. Retry the request.")


def answer_failure(request: IRequest, failure: Any) -> bytes:
    """What :func:`install_error_handlers` answers to a handler that raised, for the routes served
    without Klein (``gateway.web.direct``; they never raise Werkzeug's NotFound or MethodNotAllowed)."""
    if failure.check(GatewayError):
        return answer_gateway_error(request, failure)
    return answer_unexpected(request, failure)


def _not_allowed_message(request: IRequest, failure: Any) -> str:
    allowed = " or ".join(m for m in (failure.value.valid_methods or ["POST"]) if m != "HEAD")
    method = request.method.decode("latin-1", "replace")
    return f"Method {method} is not allowed on {request.path.decode('latin-1', 'replace')}; use {allowed}."


def install_error_handlers(app: Klein) -> None:
    """Every OpenAI/Anthropic Klein app answers failures the same way, in its door's shape."""

    @app.handle_errors(GatewayError)
    def _gateway_error(self: Any, request: IRequest, failure: Any) -> bytes:
        return answer_gateway_error(request, failure)

    @app.handle_errors(NotFound)
    def _not_found(self: Any, request: IRequest, failure: Any) -> bytes:
        return shaped_error(request, 404, f"Unknown route {request.path.decode('latin-1', 'replace')}.")

    @app.handle_errors(MethodNotAllowed)
    def _not_allowed(self: Any, request: IRequest, failure: Any) -> bytes:
        request.setHeader(b"Allow", ", ".join(failure.value.valid_methods or []).encode())
        return shaped_error(request, 405, _not_allowed_message(request, failure))

    @app.handle_errors(Exception)
    def _unexpected(self: Any, request: IRequest, failure: Any) -> bytes:
        return answer_unexpected(request, failure)


class CompatDispatch(Resource):
    """A leaf that sends the OpenAI/Anthropic paths to ``compat`` and everything else to ``gemini``."""

    isLeaf = True

    def __init__(self, gemini: IResource, compat: IResource) -> None:
        super().__init__()
        self.gemini = gemini
        self.compat = compat

    def render(self, request: IRequest) -> Any:
        return (self.compat if is_compat(request.path) else self.gemini).render(request)


class ShapedAuth(Resource):
    """The gateway's auth (same mode, same strategy) answering 401 in the door's error shape."""

    isLeaf = True

    def __init__(self, wrapped: IResource, strategy: IAuthStrategy, mode: str) -> None:
        super().__init__()
        self.wrapped = wrapped
        self.strategy = strategy
        self.mode = mode

    def render(self, request: IRequest) -> Any:
        if needs_auth(self.mode, request.path):
            credential = request_credential(request)
            if not self.strategy.authenticate(credential):
                if credential is None:
                    message = "API key required: send it as Authorization: Bearer, x-api-key or x-goog-api-key."
                else:
                    message = "API key not valid. Pass one of the keys configured in [auth] keys."
                return shaped_error(request, 401, message)
        return self.wrapped.render(request)


# -- remote images ---------------------------------------------------------------


class ImageFetcher:
    """Fetches the http(s) images/documents a request names, through ``SafeFetcher`` (SSRF-safe,
    capped in size, redirects and time; ``[image_fetch]``), as Gemini ``inlineData``."""

    def __init__(self, fetcher: SafeFetcher) -> None:
        self.fetcher = fetcher

    async def fetch_all(self, urls: list[str]) -> dict[str, dict[str, str]]:
        """Every URL's media, all within one ``[image_fetch] timeout`` (not one per image)."""
        if not urls:
            return {}
        seconds = self.fetcher.policy.timeout
        return await within(self._fetch_all(urls), seconds, self.fetcher.reactor, lambda: GatewayError(
            400, f"The images named in the request could not all be fetched within {seconds:g} s ([image_fetch] timeout); "
                 "send them as data: URIs instead."))

    async def _fetch_all(self, urls: list[str]) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for url in urls:
            found[url] = await self.fetch(url)
        return found

    async def fetch(self, url: str) -> dict[str, str]:
        shown = url.split("?", 1)[0]
        shown = shown if len(shown) <= 200 else shown[:197] + "..."
        try:
            mime, body = await self.fetcher.fetch(url)
        except FetchRefused as e:
            raise GatewayError(400, f"The image at {shown} {e}; send it as a data: URI instead.") from None
        return {"mimeType": mime, "data": base64.b64encode(body).decode("ascii")}


# -- streams -----------------------------------------------------------------------


class CompatStreamFormat:
    """``StreamFormat``'s interface over a pure stream translator, committing on the first event.

    Until the first upstream event the HTTP status is still open: an upstream
    error then is answered with the door's JSON error and its real status.
    """

    content_type = b"text/event-stream"

    def __init__(self, request: IRequest, translator: Any, clock: Callable[[], float]) -> None:
        self.request = request
        self.translator = translator
        self.clock = clock
        self.committed = False
        self.refused = False
        self.last_write = clock()

    def _wrote(self, data: bytes) -> bytes:
        if data:
            self.committed = True
            self.last_write = self.clock()
        return data

    def event(self, payload: bytes) -> bytes:
        if self.refused:
            return b""
        document, error = read_stream_event(payload)
        observe.note_usage(getattr(self.request, "observation", None), document)
        if error is not None:
            return self.error(*error)
        return self._wrote(self.translator.response(document))

    def error(self, code: int, message: str) -> bytes:
        if self.refused:
            return b""
        if not self.committed and not getattr(self.translator, "commit_errors", False):
            self.refused = True
            self.request.setHeader(b"Cache-Control", b"no-store")
            return shaped_error(self.request, code, message)
        observe.failed_in_stream(getattr(self.request, "observation", None), code)
        return self._wrote(self.translator.error(code, message))

    def end(self) -> bytes:
        if self.refused:
            return b""
        return self._wrote(self.translator.end())

    def ping(self) -> bytes:
        """Anthropic's keep-alive, when the stream is committed and quiet; else nothing."""
        if self.refused or not self.committed or not hasattr(self.translator, "ping"):
            return b""
        return self._wrote(self.translator.ping())


# -- the routes ----------------------------------------------------------------------


class CompatApp:
    app = Klein()
    app.url_map.merge_slashes = False  # ``//`` is an unknown route, not a redirect
    #: Seconds of silence after which an Anthropic stream gets a ``ping`` event.
    ping_interval = 10.0

    def __init__(
        self,
        forwarder: Forwarder,
        mapper: IModelMapper,
        reactor: Any,
        stream_idle_timeout: float,
        http: HTTPClient,
        signatures: SignatureMemory | None = None,
        image_fetch: FetchPolicy | None = None,
    ) -> None:
        self.forwarder = forwarder
        self.mapper = mapper
        self.reactor = reactor
        self.stream_idle_timeout = stream_idle_timeout
        self.fetcher = ImageFetcher(SafeFetcher(reactor, image_fetch or FetchPolicy()))
        self.signatures = signatures if signatures is not None else SignatureMemory()

    def resource(self) -> Any:
        """The routes: the hot POST paths served directly (``gateway.web.direct``), the rest by Klein."""
        from gateway.web.direct import COMPAT_ROUTES, DirectRoutes

        return DirectRoutes(self, self.app.resource(), COMPAT_ROUTES)

    # -- errors --

    install_error_handlers(app)

    failed = staticmethod(answer_failure)

    # -- OpenAI --
    # POSTs to these routes are run by ``gateway.web.direct.DirectRoutes``; the Klein routes still give
    # every other method its 405 (with ``Allow``) and serve anyone who renders the Klein resource itself.

    @app.route("/v1/chat/completions", methods=["POST"])
    @app.route("/chat/completions", methods=["POST"])
    async def chat_completions(self, request: IRequest) -> bytes | None:
        body = read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body["model"]:
            raise GatewayError(400, "model is required.")
        observe.requested(body["model"])
        await self._resolve(body["model"])  # an unknown model is a 404 before images are fetched
        images = await self.fetcher.fetch_all(openai_request.remote_image_urls(body))

        async def call(model: str) -> bytes | None:
            observe.mapped(model)
            now = self.reactor.seconds()
            gemini, ctx = openai_request.to_gemini(body, model, images=images, memory=self.signatures, now=now)
            if ctx.stream:
                await self._stream(request, model, gemini, OpenAIStream(ctx, self.signatures, now), ping=False)
                return None
            document = await self._generate(request, model, gemini)
            return _json(request, openai_response.completion(document, ctx, self.signatures, self.reactor.seconds()))

        return await self._with_model(body["model"], call)

    # -- Anthropic --

    @app.route("/v1/messages", methods=["POST"])
    async def messages(self, request: IRequest) -> bytes | None:
        body = read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body["model"]:
            raise GatewayError(400, "model: Field required")
        observe.requested(body["model"])
        await self._resolve(body["model"])
        _note_ignored(request, body)
        images = await self.fetcher.fetch_all(anthropic_request.remote_urls(body))

        async def call(model: str) -> bytes | None:
            if anthropic_request.web_search_tool(body) is not None and is_claude(model):
                model = await self._resolve(SEARCH_MODEL)  # Cloud Code grounds only Gemini models (docs/clients.md)
            observe.mapped(model)
            now = self.reactor.seconds()
            gemini, ctx = anthropic_request.to_gemini(body, model, images=images, memory=self.signatures, now=now)
            if ctx.stream:
                await self._stream(request, model, gemini, AnthropicStream(ctx, self.signatures, now), ping=True)
                return None
            document = await self._generate(request, model, gemini)
            return _json(request, anthropic_response.message(document, ctx, self.signatures, self.reactor.seconds()))

        return await self._with_model(body["model"], call)

    @app.route("/v1/messages/count_tokens", methods=["POST"])
    async def count_tokens(self, request: IRequest) -> bytes:
        body = read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body["model"]:
            raise GatewayError(400, "model: Field required")
        observe.requested(body["model"])
        model = await self._resolve(body["model"])
        observe.mapped(model)
        images = await self.fetcher.fetch_all(anthropic_request.remote_urls(body))
        counted = anthropic_request.count_request(body, model, images=images)
        document = envelope.unwrap(_loads(await self.forwarder.count_answer(model, counted)))
        total = document.get("totalTokens") if isinstance(document, dict) else None
        if isinstance(total, str) and total.isdigit():
            total = int(total)
        if not isinstance(total, int) or isinstance(total, bool):
            raise GatewayError(503, "Cloud Code's countTokens answer had no totalTokens; retry the request.")
        return _json(request, {"input_tokens": max(1, total)})

    # -- shared --

    async def _resolve(self, requested: str) -> str:
        """The live-catalogue resolver when the mapper is one (``gateway.resolution``), else the mapping."""
        resolver = getattr(self.mapper, "resolve", None)
        if resolver is not None:
            return str(await resolver(requested))
        return resolve(self.mapper, requested)

    async def _with_model(self, requested: str, call: Callable[[str], Any]) -> Any:
        with_model = getattr(self.mapper, "with_model", None)
        if with_model is not None:
            return await with_model(requested, call)
        return await call(resolve(self.mapper, requested))

    async def _generate(self, request: IRequest, model: str, gemini: dict[str, Any]) -> Any:
        raw = await self.forwarder.answer(model, gemini, session_key=self.forwarder.session_key(request))
        document = envelope.unwrap(_loads(raw))
        observe.note_usage(getattr(request, "observation", None), document)
        return document

    async def _stream(self, request: IRequest, model: str, gemini: dict[str, Any], translator: Any, *, ping: bool) -> None:
        forwarded = await self.forwarder.generate(model, gemini, stream=True, session_key=self.forwarder.session_key(request))
        fmt = CompatStreamFormat(request, translator, self.reactor.seconds)
        request.setHeader(b"Content-Type", fmt.content_type)
        request.setHeader(b"Cache-Control", b"no-cache")
        request.setHeader(b"X-Accel-Buffering", b"no")
        relay = StreamRelay(request, fmt, self.reactor, self.stream_idle_timeout, refusal=self.forwarder.stream_refusal)
        pinger: LoopingCall | None = None
        if ping:
            gone: list[bool] = [False]
            request.notifyFinish().addBoth(lambda _: gone.__setitem__(0, True))

            def keep_alive() -> None:
                if not gone[0] and self.reactor.seconds() - fmt.last_write >= self.ping_interval:
                    data = fmt.ping()
                    if data:
                        request.write(data)

            pinger = LoopingCall(keep_alive)
            pinger.clock = self.reactor
            pinger.start(self.ping_interval / 2, now=False)
        try:
            forwarded.upstream.response.deliverBody(relay)
            await relay.done
        finally:
            if pinger is not None and pinger.running:
                pinger.stop()


_noted: set[str] = set()


def _note_ignored(request: IRequest, body: dict[str, Any]) -> None:
    """Log each unknown top-level field and ``anthropic-beta`` value once, at debug: accepted, not used."""
    betas = b",".join(request.requestHeaders.getRawHeaders(b"anthropic-beta", [])).decode("latin-1", "replace")
    names = [f"field {n}" for n in anthropic_request.unknown_fields(body)]
    names += [f"beta {b.strip()}" for b in betas.split(",") if b.strip()]
    for name in names:
        if name not in _noted and len(_noted) < 1000:
            _noted.add(name)
            log.debug("Anthropic door ignores {name} (accepted, not used)", name=name)


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise GatewayError(503, "Cloud Code answered with something that is not JSON; retry the request.") from None


def _json(request: IRequest, obj: Any) -> bytes:
    request.setHeader(b"Content-Type", JSON)
    return framing.dumps(obj)
