"""The resources in front of the Gemini routes: CORS, and ``/metrics`` beside the Klein app.

Order on the main listener: ``CORSResource`` (answers preflights, which carry
no key) → ``AuthWrapper`` → ``Router`` (``/metrics`` or the Klein app). Leaf
resources that delegate, as TWISTED.md says middleware must be. A model call
takes a short cut past them (``ModelCallFront``), with the same checks.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

from gateway.web.direct import MODEL_CALL
from gateway.web.doors import path_error_bytes
from gateway.web.guard import host_valid

JSON = b"application/json; charset=UTF-8"
ALLOW_METHODS = b"GET, POST, OPTIONS"
EXPOSE_HEADERS = b"x-request-id, retry-after"
_HEADER_LIST = re.compile(rb"^[A-Za-z0-9!#$%&'*+.^_`|~\-]+(?:\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~\-]+)*$")
PREFLIGHT_MAX_AGE = b"600"


class CORSResource(Resource):
    """Cross-origin access for browser clients; ``origins`` ("*" or exact origins), empty: off."""

    isLeaf = True

    def __init__(self, wrapped: IResource, origins: Iterable[str]) -> None:
        super().__init__()
        self.wrapped = wrapped
        self.origins = frozenset(o.rstrip("/").lower() for o in origins)

    def allowed(self, origin: bytes) -> bool:
        if not self.origins:
            return False
        return "*" in self.origins or origin.decode("latin-1").rstrip("/").lower() in self.origins

    def render(self, request: IRequest) -> Any:
        origin = request.getHeader(b"origin")
        if not self.origins or origin is None:
            return self.wrapped.render(request)
        asked = request.getHeader(b"access-control-request-method")
        if request.method == b"OPTIONS" and asked is not None:
            return self._preflight(request, origin)
        self.decorate(request, origin)
        return self.wrapped.render(request)

    def decorate(self, request: IRequest, origin: bytes) -> None:
        """The headers of an actual (not preflight) cross-origin request from ``origin``."""
        if self.allowed(origin):
            self._allow(request, origin)
            request.setHeader(b"Access-Control-Expose-Headers", EXPOSE_HEADERS)
        request.responseHeaders.addRawHeader(b"Vary", b"Origin")

    def _allow(self, request: IRequest, origin: bytes) -> None:
        request.setHeader(b"Access-Control-Allow-Origin", b"*" if "*" in self.origins else origin)

    def _preflight(self, request: IRequest, origin: bytes) -> bytes:
        request.responseHeaders.addRawHeader(b"Vary", b"Origin")
        if not self.allowed(origin):
            # The gateway's own refusal, in the shape of the door the preflight is for.
            status, body = path_error_bytes(request.path, 403, "This origin is not allowed to call the gateway "
                                            "([server] cors_origins).", "PERMISSION_DENIED", own=True)
            request.setResponseCode(status)
            request.setHeader(b"Content-Type", JSON)
            return body
        request.setResponseCode(204)
        self._allow(request, origin)
        request.setHeader(b"Access-Control-Allow-Methods", ALLOW_METHODS)
        headers = request.getHeader(b"access-control-request-headers")
        if headers and _HEADER_LIST.match(headers.strip()):
            request.setHeader(b"Access-Control-Allow-Headers", headers.strip())
        request.setHeader(b"Access-Control-Max-Age", PREFLIGHT_MAX_AGE)
        return b""


class Router(Resource):
    """``/metrics`` to the metrics resource (when it is served here), everything else to the app."""

    isLeaf = True

    def __init__(self, app: IResource, metrics: IResource | None = None) -> None:
        super().__init__()
        self.app = app
        self.metrics = metrics

    def render(self, request: IRequest) -> Any:
        if self.metrics is not None and request.path == b"/metrics":
            return self.metrics.render(request)
        return self.app.render(request)


class ModelCallFront(Resource):
    """The root: a model call (``POST /{version}/models/{model}:{action}``, nearly every request) goes
    straight to ``calls``; everything else walks ``tree``.

    A model call passes the very checks the tree's layers would make, in their order, on the same
    objects (so a SIGHUP reload of keys and mode applies here too): the guard's (only ``Host`` can
    be wrong on such a path; a bad one walks the tree to be refused there), CORS's headers
    (``cors``; a POST is never a preflight) and the key (``auth``, with its 401). The tree's other
    layers (OpenAI/Anthropic paths, the admin pages, ``/metrics``) never take these paths.
    """

    isLeaf = True

    def __init__(self, tree: IResource, cors: CORSResource, auth: Any, calls: Any) -> None:
        super().__init__()
        self.tree = tree
        self.cors = cors
        self.auth = auth
        self.calls = calls

    def render(self, request: IRequest) -> Any:
        if request.method == b"POST":
            match = MODEL_CALL.match(request.path)
            if match is not None:
                host = request.getHeader(b"host")
                if host is None or host_valid(host):
                    if self.cors.origins:
                        origin = request.getHeader(b"origin")
                        if origin is not None:
                            self.cors.decorate(request, origin)
                    refused = self.auth.refusal(request)
                    if refused is not None:
                        return refused
                    return self.calls.start(request, match)
        return self.tree.render(request)
