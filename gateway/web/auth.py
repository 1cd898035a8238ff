"""The auth wrapper: a leaf resource that checks the credential, then delegates.

Which paths need a credential is the mode's job (``needs_auth``, pure); whether
a credential is good is the IAuthStrategy's. A 401 never echoes the key.
"""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

from gateway.interfaces import IAuthStrategy
from gateway.protocol.credentials import QUERY_KEY, extract_credential
from gateway.web.doors import path_error_bytes

OPEN_PATHS = frozenset({b"/healthz"})


def needs_auth(mode: str, path: bytes) -> bool:
    """``mode`` is already resolved (never ``auto``)."""
    if mode == "off":
        return False
    if mode == "all_except_health":
        return path not in OPEN_PATHS
    return True


CREDENTIAL_HEADERS = tuple((name, name.encode()) for name in ("x-goog-api-key", "authorization", "x-api-key"))
_QUERY_KEY = QUERY_KEY.encode()


def request_credential(request: IRequest) -> str | None:
    """The client's key from the places ``extract_credential`` reads, copying only those."""
    headers = {}
    for name, raw in CREDENTIAL_HEADERS:
        value = request.getHeader(raw)
        if value is not None:
            headers[name] = value.decode("latin-1")
    values = (request.args or {}).get(_QUERY_KEY)
    query = {QUERY_KEY: [v.decode("utf-8", "replace") for v in values]} if values else {}
    return extract_credential(headers, query)


class AuthWrapper(Resource):
    isLeaf = True

    def __init__(self, wrapped: IResource, strategy: IAuthStrategy, mode: str, public_paths: frozenset[bytes] = frozenset()) -> None:
        super().__init__()
        self.wrapped = wrapped
        # Read on every request: a SIGHUP reload replaces them (gateway.reload).
        self.strategy = strategy
        self.mode = mode
        self.public_paths = public_paths  # never behind a key, whatever the mode (e.g. /metrics for scrapers)

    def render(self, request: IRequest) -> Any:
        refused = self.refusal(request)
        return self.wrapped.render(request) if refused is None else refused

    def refusal(self, request: IRequest) -> bytes | None:
        """None when ``request`` may pass; else its 401 (status and headers set), the body."""
        if request.path not in self.public_paths and needs_auth(self.mode, request.path):
            credential = request_credential(request)
            if not self.strategy.authenticate(credential):
                request.setHeader(b"Content-Type", b"application/json; charset=UTF-8")
                if credential is None:
                    message = "API key required: send it as x-goog-api-key, ?key=, Authorization: Bearer or x-api-key."
                else:
                    message = "API key not valid. Please pass a valid API key configured in [auth] keys."
                code, body = path_error_bytes(request.path, 401, message, "UNAUTHENTICATED")
                request.setResponseCode(code)
                return body
        return None
