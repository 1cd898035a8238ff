"""The first resource every request meets: refuse what no route can read, in the door's shape.

Klein decodes the path and ``Host`` as UTF-8 and answers HTML (with a
logged traceback) when it cannot; ``*`` request targets reach no route.
``problem`` (pure) says what is wrong with a request head; ``RequestGuard``
answers it as JSON before anything else runs.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_to_bytes

from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

from gateway.web.doors import path_error_bytes

JSON = b"application/json; charset=UTF-8"
ALLOW = "GET, POST, OPTIONS"


def problem(method: bytes, path: bytes, host: bytes | None) -> tuple[int, str] | None:
    """``(status, message)`` for a request head no route can serve, or None."""
    if path == b"*":
        return (405, "The request target * is only meaningful with OPTIONS; name a route instead.")
    try:
        unquote_to_bytes(path.split(b"?", 1)[0]).decode("utf-8")
    except UnicodeDecodeError:
        return (400, "The request path is not valid UTF-8 after percent-decoding; send a valid URL.")
    if host is not None and not host_valid(host):
        return (400, "The Host header is not a valid host name; send the gateway's host (and port).")
    return None


@lru_cache(maxsize=256)  # a client sends the same few Host values on every request; IDNA is slow
def host_valid(host: bytes) -> bool:
    """Whether routing can use ``host``: UTF-8, and a name IDNA can encode (Werkzeug's own test,
    which otherwise raises ``BadHost`` deep in Klein)."""
    try:
        text = host.decode("utf-8")
    except UnicodeDecodeError:
        return False
    name = text.rsplit(":", 1)[0] if not text.endswith("]") else text
    if name.startswith("["):
        return name.endswith("]") or ":" in name
    try:
        name.lower().encode("idna")
    except UnicodeError:
        return False
    return True


class RequestGuard(Resource):
    """Answers ``OPTIONS *``, and refuses undecodable paths and hosts, before delegating."""

    isLeaf = True

    def __init__(self, wrapped: IResource) -> None:
        super().__init__()
        self.wrapped = wrapped

    def render(self, request: IRequest) -> Any:
        if request.path == b"*":
            return star_answer(request)
        found = problem(request.method, request.path, request.getHeader(b"host"))
        if found is None:
            return self.wrapped.render(request)
        return refusal(request, *found)


def refusal(request: IRequest, code: int, message: str) -> bytes:
    """Set ``request``'s status and headers for a refusal in its door's shape; the body."""
    if code == 405:
        request.setHeader(b"Allow", b"OPTIONS")
    status, body = path_error_bytes(request.path, code, message)
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", JSON)
    return body


def star_answer(request: IRequest) -> bytes:
    """``OPTIONS *``: the methods this server takes, as JSON; any other method on ``*``: a JSON 405."""
    if request.method == b"OPTIONS":
        request.setHeader(b"Allow", ALLOW.encode())
        request.setHeader(b"Content-Type", JSON)
        return json.dumps({"allow": ALLOW.split(", ")}).encode()
    return refusal(request, *(problem(request.method, b"*", None) or (405, "Use OPTIONS with *.")))
