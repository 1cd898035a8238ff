"""The Gemini API routes, as thin Klein handlers over the forwarder and relay.

Every path answers JSON: errors are google.rpc.Status bodies with the right
HTTP status, including unknown routes and methods. The same routes are served
under ``/v1beta``, ``/v1`` (google-genai 3.x) and ``/v1alpha``.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from klein import Klein
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from gateway import __version__, observe
from gateway.web.home import render_home
from gateway.compat import models as compat_models
from gateway.forward import Forwarder
from gateway.interfaces import IModelMapper
from gateway.protocol import envelope, framing, models
from gateway.protocol.enums import enum_names
from gateway.protocol.errors import GatewayError
from gateway.protocol.paths import parse_model_call, wants_sse
from gateway.web.doors import path_error_bytes
from gateway.web.failures import log_unhandled
from gateway.web.relay import StreamFormat, StreamRelay

JSON = b"application/json; charset=UTF-8"
VERSIONS = "any(v1beta, v1, v1alpha)"
log = Logger()


MAX_JSON_DEPTH = 128


def json_depth_exceeds(document: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a parsed document nests lists/objects deeper than ``limit`` (walked without recursion).

    Checked right after parsing, so no translation step (several recurse)
    can meet a nesting deep enough to exhaust the stack.
    """
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_json_body(raw: bytes) -> Any:
    """A request body as JSON, or a 400 that says what is wrong with it (never another error)."""
    if not raw or raw.isspace():  # what ``not raw.strip()`` says, without copying the body
        raise GatewayError(400, "The request body is empty; send a JSON object.")
    try:
        document = framing.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)[:200]
        raise GatewayError(400, f"Invalid JSON payload received: {reason}.") from None
    # Nesting needs an opening bracket per level: a body with few of them cannot be too deep (no walk).
    if raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH and json_depth_exceeds(document):
        raise GatewayError(400, f"Invalid JSON payload received: nested deeper than {MAX_JSON_DEPTH} levels.")
    return document


def read_json(request: IRequest) -> Any:
    """The request body as JSON, or a 400 that says what is wrong with it."""
    raw = request.content.read() if request.content is not None else b""
    return parse_json_body(raw)


class ModelSource(Protocol):
    """Where the models list comes from (``gateway.upstream.quota.PoolCatalogue``)."""

    async def models(self) -> list[dict[str, Any]]: ...


class GatewayApp:
    app = Klein()
    #: The live-catalogue resolver (``gateway.resolution.ModelResolver``); None: the mapper alone.
    resolver: Any = None
    app.url_map.merge_slashes = False  # ``//`` would be a redirect (a 500 through Klein); it is an unknown route

    def __init__(
        self,
        forwarder: Forwarder,
        mapper: IModelMapper,
        reactor: IReactorTime,
        stream_idle_timeout: float,
        catalogue: "ModelSource",
    ) -> None:
        self.forwarder = forwarder
        self.mapper = mapper
        self.reactor = reactor
        self.stream_idle_timeout = stream_idle_timeout
        self.catalogue = catalogue

    def resource(self) -> Any:
        """The routes: model calls served directly (``gateway.web.direct``), the rest by Klein."""
        from gateway.web.direct import ModelCalls

        return ModelCalls(self, self.app.resource())

    # -- errors --

    @app.handle_errors(NotFound)
    def _not_found(self, request: IRequest, failure: Any) -> bytes:
        path = request.path.decode("latin-1", "replace")
        return self._error(request, GatewayError(404, f"Unknown route {path}: GET / lists the routes this gateway serves."))

    @app.handle_errors(MethodNotAllowed)
    def _not_allowed(self, request: IRequest, failure: Any) -> bytes:
        method = request.method.decode("latin-1", "replace")
        path = request.path.decode("latin-1", "replace")
        request.setHeader(b"Allow", ", ".join(failure.value.valid_methods or []).encode())
        return self._error(request, GatewayError(405, f"Method {method} is not allowed on {path}.", "NOT_FOUND"))

    @app.handle_errors(Exception)
    def failed(self, request: IRequest, failure: Any) -> bytes:
        """The answer to a handler that raised: its ``GatewayError``, or a logged 500."""
        if failure.check(GatewayError):
            return self._error(request, failure.value)
        known = client_fault(failure.value)
        if known is not None:
            return self._error(request, known)
        log_unhandled(log, failure, request.path)
        return self._error(request, GatewayError(500, "Internal gateway error; it has been logged. Retry the request."))

    @staticmethod
    def _error(request: IRequest, error: GatewayError) -> bytes:
        """``error`` in the shape of the door ``request`` came through (``gateway.web.doors``)."""
        code, body = path_error_bytes(request.path, error.code, error.message, error.status, error.details)
        request.setResponseCode(code)
        request.setHeader(b"Content-Type", JSON)
        for name, value in error.headers.items():
            request.setHeader(name.encode(), value.encode())
        return body

    # -- routes --

    @app.route("/", methods=["GET", "HEAD"])
    def home(self, request: IRequest) -> bytes:
        """What answers here (JSON, or HTML for a browser); behind auth like the API when auth is on."""
        content_type, body = render_home(__version__, request.getHeader(b"accept"))
        request.setHeader(b"Content-Type", content_type)
        request.setHeader(b"Vary", b"Accept")
        return body

    @app.route("/healthz", methods=["GET", "HEAD"])
    def healthz(self, request: IRequest) -> bytes:
        request.setHeader(b"Content-Type", JSON)
        return json.dumps({"status": "ok", "version": __version__}).encode()

    @app.route(f"/<{VERSIONS}:version>/models", methods=["GET"])
    async def list_models(self, request: IRequest, version: str) -> bytes:
        catalogue = await self.catalogue.models()
        page = models.paginate(catalogue, _arg(request, b"pageSize"), _arg(request, b"pageToken"))
        # One answer for google-genai (models), the OpenAI SDK (object/data) and Claude Code (anthropic-version).
        page = compat_models.list_answer(page, catalogue, anthropic=_anthropic(request))
        request.setHeader(b"Content-Type", JSON)
        return json.dumps(page).encode()

    @app.route(f"/<{VERSIONS}:version>/models/<path:rest>", methods=["GET"])
    async def get_model(self, request: IRequest, version: str, rest: str) -> bytes:
        model_id, action = parse_model_call(rest)
        if action is not None:
            raise GatewayError(405, f"Method GET is not allowed on :{action}; use POST.", "NOT_FOUND")
        catalogue = await self.catalogue.models()
        try:
            model = models.find_model(catalogue, model_id)
        except GatewayError:
            if self.resolver is None:
                raise
            # An alias (gemini-2.5-flash, gemini-flash-latest…) is answered with the model it means
            # now, under the asked name, as Google answers its own -latest aliases.
            served = models.find_model(catalogue, await self.resolver.resolve(model_id))
            model = dict(served, name=models.MODELS_PREFIX + models.strip_models_prefix(model_id))
        request.setHeader(b"Content-Type", JSON)
        found = compat_models.model_answer(model, anthropic=_anthropic(request))
        return json.dumps(found).encode()

    @app.route(f"/<{VERSIONS}:version>/models/<path:rest>", methods=["POST"])
    async def model_action(self, request: IRequest, version: str, rest: str) -> bytes | None:
        model_id, action = parse_model_call(rest)
        if action is None:
            raise GatewayError(405, f"Method POST is not allowed on models/{model_id}; use models/{model_id}:generateContent.", "NOT_FOUND")
        if action in models.UNIMPLEMENTED_ACTIONS:
            raise GatewayError(
                501,
                f"{action} is not available through this gateway: Cloud Code has no embeddings or batch API. "
                "Use the Gemini API directly for it.",
            )
        if action not in models.MODEL_ACTIONS:
            raise GatewayError(404, f"Unknown action {action!r} on models/{model_id}: use generateContent, streamGenerateContent or countTokens.")
        body = read_json(request)
        resolver = self.resolver
        if action == "countTokens":
            if resolver is None:
                return await self._count_tokens(request, _mapped(self.mapper.map(model_id)), body)
            return await resolver.with_model(model_id, lambda m: self._count_tokens(request, _mapped(m), body))
        valid = enum_names(envelope.validate_generate_request(body))
        if action == "generateContent":
            call = lambda m: self._generate(request, _mapped(m), valid)  # noqa: E731
        else:
            sse = wants_sse(request.args)
            call = lambda m: self._stream(request, _mapped(m), valid, sse=sse)  # noqa: E731
        if resolver is None:
            return await call(self.mapper.map(model_id))
        return await resolver.with_model(model_id, call)

    async def _generate(self, request: IRequest, model: str, body: dict[str, Any]) -> bytes:
        raw = await self.forwarder.answer(model, body, session_key=self.forwarder.session_key(request))
        request.setHeader(b"Content-Type", JSON)
        return _unwrapped(raw)

    async def _count_tokens(self, request: IRequest, model: str, body: Any) -> bytes:
        raw = await self.forwarder.count_answer(model, body)
        request.setHeader(b"Content-Type", JSON)
        return _unwrapped(raw)

    async def _stream(self, request: IRequest, model: str, body: dict[str, Any], *, sse: bool) -> None:
        forwarded = await self.forwarder.generate(model, body, stream=True, session_key=self.forwarder.session_key(request))
        fmt = StreamFormat(sse)
        request.setHeader(b"Content-Type", fmt.content_type)
        if sse:
            request.setHeader(b"Cache-Control", b"no-cache")
            request.setHeader(b"X-Accel-Buffering", b"no")
        relay = StreamRelay(request, fmt, self.reactor, self.stream_idle_timeout, refusal=self.forwarder.stream_refusal)
        forwarded.upstream.response.deliverBody(relay)
        await relay.done


def _mapped(model: str) -> str:
    """Note the upstream model for this request's log line (``observe.mapped``), and pass it on."""
    observe.mapped(model)
    return model
def client_fault(error: BaseException) -> GatewayError | None:
    """The 4xx for an exception that is the client's doing (a route Werkzeug cannot match or
    would redirect, input nested too deeply), or None for a gateway bug."""
    if isinstance(error, RecursionError):
        return GatewayError(400, "The request is nested too deeply for the gateway to read; flatten it.")
    if isinstance(error, HTTPException):
        code = error.code or 404
        if code == 405:
            return GatewayError(405, "This method is not allowed on this route.", "NOT_FOUND")
        if code < 400 or code == 404:
            return GatewayError(404, "Unknown route: see the documentation for the routes this gateway serves.")
        if code < 500:
            return GatewayError(code, error.description or "The request could not be served.")
    return None


def _anthropic(request: IRequest) -> bool:
    return request.requestHeaders.hasHeader(b"anthropic-version")


def _arg(request: IRequest, name: bytes) -> str | None:
    values = request.args.get(name)
    return values[-1].decode("utf-8", "replace") if values else None


def _unwrapped(raw: bytes) -> bytes:
    try:
        document = framing.loads(raw)
    except ValueError:
        raise GatewayError(503, "Cloud Code answered with something that is not JSON; retry the request.") from None
    answer = envelope.unwrap(document)
    observe.answer_usage(answer)  # parsed here anyway: the written answer needs no second parse for its usage
    return framing.dumps(answer)

