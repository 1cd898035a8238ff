"""The OpenAI Responses and Images doors: routing and sequencing only.

Translation is pure (``gateway.compat.responses_*``, ``gateway.compat.images``);
forwarding, image fetching, stream relaying and error shaping are the Chat
door's (:class:`~gateway.web.compat_routes.CompatApp`), so every OpenAI path
behaves alike. Here: ``previous_response_id``, ``GET`` and ``DELETE
/v1/responses/{id}`` through the response store (per client key),
Codex's need for ``response.failed`` instead of HTTP errors on a stream, and
the images routes' parallel upstream calls (one per image, spread over the
pool) and multipart uploads.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from klein import Klein
from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

from gateway import observe
from gateway.compat import images, responses_request, responses_response
from gateway.compat.models import resolve
from gateway.compat.responses_store import ResponseStore
from gateway.compat.responses_stream import ResponsesStream
from gateway.protocol import envelope
from gateway.protocol.errors import GatewayError
from gateway.protocol.models import strip_models_prefix
from gateway.team.service import client_key
from gateway.web.app import read_json
from gateway.web.compat_routes import RESPONSES_IMAGES_PATHS, CompatApp, answer_failure, install_error_handlers

log = Logger()

PATHS = RESPONSES_IMAGES_PATHS
#: ``/v1/responses/{id}`` (retrieve, delete) and anything else below the Responses path.
ITEM_PREFIXES = (b"/v1/responses/", b"/responses/")
#: Image model names OpenAI clients send that mean "the default image model" unless mapped.
OPENAI_IMAGE_MODELS = ("dall-e", "gpt-image", "chatgpt-image")


def is_codex(request: IRequest) -> bool:
    """Codex CLI (``originator: codex_…`` or its User-Agent): it reads errors only as ``response.failed``."""
    for header in (b"originator", b"user-agent"):
        value = request.getHeader(header)
        if isinstance(value, bytes) and value.lower().startswith(b"codex"):
            return True
    return False


def codex_message(error: GatewayError) -> str:
    """The error text for Codex: a rate limit says "try again in Ns", which Codex reads to wait and retry."""
    retry = error.headers.get("Retry-After", "") if error.code == 429 else ""
    if retry.isdigit() and "try again in" not in error.message.lower():
        return f"{error.message.rstrip()} Please try again in {retry}s."
    return error.message


class OpenAIExtraDispatch(Resource):
    """A leaf sending the Responses and Images paths to ``extra`` and the rest to ``fallback``."""

    isLeaf = True

    def __init__(self, extra: IResource, fallback: IResource) -> None:
        super().__init__()
        self.extra = extra
        self.fallback = fallback

    def render(self, request: IRequest) -> Any:
        path = request.path
        mine = path in PATHS or path.startswith(ITEM_PREFIXES)
        return (self.extra if mine else self.fallback).render(request)


class ResponsesApp:
    app = Klein()
    app.url_map.merge_slashes = False  # ``//`` is an unknown route, not a redirect (a 500 through Klein)

    def __init__(self, compat: CompatApp, store: ResponseStore) -> None:
        self.compat = compat
        self.store = store

    def resource(self) -> Any:
        """The routes: create served directly (``gateway.web.direct``), the rest by Klein."""
        from gateway.web.direct import RESPONSES_ROUTES, DirectRoutes

        return DirectRoutes(self, self.app.resource(), RESPONSES_ROUTES)

    @property
    def reactor(self) -> Any:
        return self.compat.reactor

    # -- errors (the OpenAI shape on every path here) --

    install_error_handlers(app)
    failed = staticmethod(answer_failure)

    # -- Responses --

    @app.route("/v1/responses", methods=["POST"])
    @app.route("/responses", methods=["POST"])
    async def create(self, request: IRequest) -> bytes | None:
        body = read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body["model"]:
            raise GatewayError(400, "model is required.")
        try:
            return await self._create(request, body)
        except GatewayError as e:
            if body.get("stream") is not True or not is_codex(request) or request.startedWriting:
                raise
            return self._codex_failure(request, body, e)

    async def _create(self, request: IRequest, body: dict[str, Any]) -> bytes | None:
        requested = body["model"]
        observe.requested(requested)
        await self._resolve(requested)  # an unknown model is a 404 before images are fetched
        history = None
        if body.get("previous_response_id") is not None:
            history = self.store.history(body["previous_response_id"], self.reactor.seconds(), client_key.get())
        fetched = await self.compat.fetcher.fetch_all(responses_request.remote_image_urls(body))
        keep = body.get("store", True) is not False

        async def call(model: str) -> bytes | None:
            observe.mapped(model)
            now = self.reactor.seconds()
            gemini, ctx = responses_request.to_gemini(body, model, history=history, images=fetched,
                                                      memory=self.compat.signatures, now=now)
            if ctx.stream:
                await self._stream(request, model, gemini, ctx, keep, now, len(history or []))
                return None
            document = await self.compat._generate(request, model, gemini)
            answer, items = responses_response.response(document, ctx, self.compat.signatures, self.reactor.seconds())
            if keep:
                self.store.put(answer["id"], ctx.items + items, self.reactor.seconds(), len(history or []),
                               response=answer, owner=client_key.get())
            return _json(request, answer)

        return await self._with_model(requested, call)

    async def _stream(self, request: IRequest, model: str, gemini: dict[str, Any], ctx: Any, keep: bool,
                      now: float, shared: int) -> None:
        owner = client_key.get()

        def remember(final: dict[str, Any], items: list[dict[str, Any]]) -> None:
            self.store.put(final["id"], ctx.items + items, self.reactor.seconds(), shared, response=final, owner=owner)

        stream = ResponsesStream(ctx, self.compat.signatures, now, on_complete=remember if keep else None,
                                 commit_errors=is_codex(request))
        await self.compat._stream(request, model, gemini, stream, ping=False)

    def _codex_failure(self, request: IRequest, body: dict[str, Any], error: GatewayError) -> bytes:
        """A failure before any upstream event, for Codex: a 200 stream ending in ``response.failed``
        (Codex retries or reports only that; an HTTP 429 it would not retry)."""
        metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else None
        ctx = responses_request.ResponsesContext(requested_model=body["model"], upstream_model=body["model"],
                                                 echo=responses_request.echo_fields(body, metadata))
        stream = ResponsesStream(ctx, self.compat.signatures, self.reactor.seconds())
        observe.failed_in_stream(getattr(request, "observation", None), error.code)
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", b"text/event-stream")
        request.setHeader(b"Cache-Control", b"no-cache")
        return stream.error(error.code, codex_message(error))

    @app.route("/v1/responses/<string:response_id>", methods=["GET"])
    @app.route("/responses/<string:response_id>", methods=["GET"])
    def retrieve(self, request: IRequest, response_id: str) -> bytes:
        """A stored response as it was answered (``store`` not false, still in the bounded store)."""
        if request.args.get(b"stream", [b""])[-1].lower() in (b"true", b"1"):
            raise GatewayError(400, "stream=true is not supported on GET /v1/responses/{id}: the gateway keeps the "
                                    "finished response only; retrieve it without stream.")
        found = self.store.response(response_id, self.reactor.seconds(), client_key.get())
        if found is None:
            raise GatewayError(404, self.store.gone_message(response_id))
        return _json(request, found)

    @app.route("/v1/responses/<string:response_id>", methods=["DELETE"])
    @app.route("/responses/<string:response_id>", methods=["DELETE"])
    def delete(self, request: IRequest, response_id: str) -> bytes:
        """Forget a stored response: it can no longer be retrieved or continued from."""
        if not self.store.delete(response_id, self.reactor.seconds(), client_key.get()):
            raise GatewayError(404, self.store.gone_message(response_id))
        return _json(request, {"id": response_id, "object": "response", "deleted": True})

    # -- models: the chat door's resolution, whatever it is --

    async def _resolve(self, requested: str) -> str:
        resolver = getattr(self.compat, "_resolve", None)
        if resolver is not None:
            return str(await resolver(requested))
        return resolve(self.compat.mapper, requested)

    async def _with_model(self, requested: str, call: Any) -> Any:
        with_model = getattr(self.compat, "_with_model", None)
        if with_model is not None:
            return await with_model(requested, call)
        return await call(await self._resolve(requested))

    # -- Images --

    @app.route("/v1/images/generations", methods=["POST"])
    @app.route("/images/generations", methods=["POST"])
    async def generations(self, request: IRequest) -> bytes:
        body = read_json(request)
        if not isinstance(body, dict):
            raise GatewayError(400, "The request body must be a JSON object.")
        _requested_image_model(body.get("model"))
        parsed = images.parse(body, await self._image_model(body.get("model")))
        return await self._images(request, parsed, edit=False)

    @app.route("/v1/images/edits", methods=["POST"])
    @app.route("/images/edits", methods=["POST"])
    async def edits(self, request: IRequest) -> bytes:
        fields = _form(request)
        uploads: list[dict[str, str]] = []
        for key in ("image", "image[]"):
            for i, data in enumerate(fields.get(key, [])):
                uploads.append(images.upload(data, f"{key}[{i}]" if key == "image" else key))
        if not uploads:
            raise GatewayError(400, "image is required: send the picture to edit as a multipart file field image (or image[]).")
        for data in fields.get("mask", [])[:1]:
            uploads.append(images.upload(data, "mask"))  # Gemini has no mask semantics: sent as one more picture
        body = {k: v[0].decode("utf-8", "replace") for k, v in fields.items() if k not in ("image", "image[]", "mask") and v}
        _requested_image_model(body.get("model"))
        parsed = images.parse(body, await self._image_model(body.get("model")), tuple(uploads))
        return await self._images(request, parsed, edit=True)

    async def _image_model(self, requested: Any) -> str:
        if requested is None or requested == "":
            return images.DEFAULT_IMAGE_MODEL
        if not isinstance(requested, str):
            raise GatewayError(400, "model must be a string.")
        bare = strip_models_prefix(requested.strip())
        if bare.lower().startswith(OPENAI_IMAGE_MODELS):
            # A live-catalogue resolver (the chat door's _resolve) knows these names; the static
            # defaults would send them to a text model, so only an operator's mapping counts there.
            if getattr(self.compat, "_resolve", None) is not None:
                mapped = await self._resolve(bare)
            else:
                mapped = self.compat.mapper.map(bare)
            return mapped if mapped != bare else images.DEFAULT_IMAGE_MODEL
        return await self._resolve(bare)

    async def _images(self, request: IRequest, parsed: images.ImageRequest, *, edit: bool) -> bytes:
        gemini = images.gemini_request(parsed)
        observe.mapped(parsed.model)
        await self.compat.forwarder.admit(parsed.model)  # one client request, whatever its n
        observation = getattr(request, "observation", None)
        calls = [Deferred.fromCoroutine(self._one_image(parsed.model, gemini, i, observation)) for i in range(parsed.n)]
        results = await DeferredList(calls, consumeErrors=True)
        found: list[dict[str, str]] = []
        texts: list[str] = []
        failure: GatewayError | None = None
        for ok, value in results:
            if ok:
                blobs, text = value
                found.extend(blobs[:1])
                if text and not blobs:
                    texts.append(text)
            elif failure is None:
                failure = value.value if isinstance(value.value, GatewayError) else GatewayError(502, "An image call failed; retry.")
        if not found:
            if failure is not None:
                raise failure
            said = f" It said: {texts[0][:300]}" if texts else ""
            raise GatewayError(400, f"{parsed.model} answered without an image (the prompt may have been refused).{said}")
        for blob in found:
            images.check_image(blob)
        if parsed.stream:
            request.setHeader(b"Content-Type", b"text/event-stream")
            request.setHeader(b"Cache-Control", b"no-cache")
            return images.stream_events(parsed, found, self.reactor.seconds(), edit)
        return _json(request, images.answer(parsed, found, self.reactor.seconds()))

    async def _one_image(self, model: str, gemini: dict[str, Any], index: int,
                         observation: Any = None) -> tuple[list[dict[str, str]], str]:
        raw = await self.compat.forwarder.answer(  # bounded in size and time, retried when cut
            model, gemini, session_key=f"images-{uuid.uuid4().hex}-{index}",  # spread over accounts
            admitted=True,
        )
        try:
            document = envelope.unwrap(json.loads(raw))
        except ValueError:
            raise GatewayError(503, "Cloud Code answered with something that is not JSON; retry the request.") from None
        observe.add_usage(observation, document)  # the request's usage: every image call's, summed
        return images.images_of(document)


def _requested_image_model(requested: Any) -> None:
    """Record the image model the client named (none: the default image model is what it asked for)."""
    if requested is None or requested == "":
        observe.requested(images.DEFAULT_IMAGE_MODEL)
    elif isinstance(requested, str):
        observe.requested(requested)


def _form(request: IRequest) -> dict[str, list[bytes]]:
    """The multipart (or urlencoded) form fields of the body (twisted.web's own parsing is off)."""
    content_type = request.getHeader(b"content-type") or b""
    raw = request.content.read() if request.content is not None else b""
    return images.form_fields(raw, content_type)


def _json(request: IRequest, obj: Any) -> bytes:
    request.setHeader(b"Content-Type", b"application/json")
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
