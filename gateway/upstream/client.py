"""Calls to ``{host}/v1internal:{method}`` with host fallback and timeouts.

Owns the HTTP edge only: which host, which headers, when to move on. What a
failure means for the account is decided by ``gateway.protocol.classify``.
"""

from __future__ import annotations

import time
from typing import Any

import attrs
from treq.client import HTTPClient
from twisted.internet.error import ConnectError, ConnectionLost, DNSLookupError, TimeoutError as TxTimeoutError
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseFailed, ResponseNeverReceived
from twisted.web.iweb import IResponse

from gateway import observe
from gateway.observe import NULL_OBSERVER, RequestObserver
from gateway.protocol.errors import GatewayError

# Connection-level failures: the request never got an answer from that host.
CONNECTION_ERRORS = (ConnectError, DNSLookupError, TxTimeoutError, ResponseNeverReceived, ResponseFailed, ConnectionLost)
NEXT_HOST_STATUSES = frozenset({408, 404}) | frozenset(range(500, 600))
MAX_ERROR_BODY = 256 * 1024


class UpstreamUnreachable(Exception):
    """No configured host answered; ``str()`` names the hosts, never a token."""


@attrs.frozen
class UpstreamResponse:
    code: int
    headers: dict[str, str]
    response: IResponse
    host: str


def lower_headers(response: IResponse) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v[-1].decode("latin-1") for k, v in response.headers.getAllRawHeaders()}


class _Discard(Protocol):
    def dataReceived(self, data: bytes) -> None:
        pass


def discard(response: IResponse) -> None:
    """Throw away a body we will not use, letting the connection return to the pool."""
    response.deliverBody(_Discard())


class UpstreamClient:
    observer: RequestObserver = NULL_OBSERVER  # metrics hooks (gateway.observe); set by assembly

    def __init__(self, http: HTTPClient, hosts: tuple[str, ...], user_agent: str, response_timeout: float) -> None:
        self._http = http
        self.hosts = hosts
        self.user_agent = user_agent
        self.response_timeout = response_timeout

    def _headers(self, token: str) -> dict[bytes, list[bytes]]:
        return {
            b"Authorization": [b"Bearer " + token.encode()],
            b"Content-Type": [b"application/json"],
            b"User-Agent": [self.user_agent.encode()],
            b"Accept-Encoding": [b"identity"],
        }

    async def call(self, method: str, payload: bytes, token: str, *, stream: bool = False) -> UpstreamResponse:
        """POST one v1internal method, moving to the next host where PROTOCOL says to."""
        suffix = f"/v1internal:{method}" + ("?alt=sse" if stream else "")
        return await self._each_host("POST", suffix, payload, token, stream)

    async def get(self, path: str, token: str) -> UpstreamResponse:
        """GET ``{host}/v1internal/{path}`` (long-running operations)."""
        return await self._each_host("GET", "/v1internal/" + path.lstrip("/"), None, token, False)

    async def _each_host(self, verb: str, suffix: str, payload: bytes | None, token: str, stream: bool) -> UpstreamResponse:
        last_error: Failure | None = None
        method = suffix.rsplit(":", 1)[-1].split("?", 1)[0] if verb == "POST" else "operation"
        for index, host in enumerate(self.hosts):
            is_last = index == len(self.hosts) - 1
            started = self.observer.now()
            try:
                response = await self._send(verb, host + suffix, payload, token, stream)
            except CONNECTION_ERRORS as e:
                last_error = Failure(e)
                self.observer.upstream_body(self.observer.now() - started)
                if not is_last:
                    self.observer.host_fallback(host, type(e).__name__)
                continue
            self.observer.upstream_first_byte(method, host, self.observer.now() - started)
            if response.code in NEXT_HOST_STATUSES and not is_last:
                self.observer.host_fallback(host, str(response.code))
                discard(response)
                continue
            return UpstreamResponse(response.code, lower_headers(response), response, host)
        raise UpstreamUnreachable(
            f"no upstream host answered ({', '.join(self.hosts)}): {_describe(last_error)}"
        )

    async def _send(self, verb: str, url: str, payload: bytes | None, token: str, stream: bool) -> IResponse:
        kwargs: dict[str, Any] = dict(headers=self._headers(token), timeout=self.response_timeout, unbuffered=stream)
        if payload is not None:
            kwargs["data"] = payload
        try:
            return await self._http.request(verb, url, **kwargs)
        except ResponseNeverReceived:
            # A pooled connection the server had closed: the request never
            # reached it, so sending it once more is safe (TWISTED.md).
            return await self._http.request(verb, url, **kwargs)


def _describe(failure: Failure | None) -> str:
    if failure is None:
        return "no hosts configured"
    return failure.type.__name__ if failure.type else "connection failed"


def unreachable_error(e: UpstreamUnreachable) -> GatewayError:
    return GatewayError(503, f"Cloud Code is unreachable: {e}. Check [upstream] hosts and the network, then retry.")


async def read_body(response: IResponse, limit: int = MAX_ERROR_BODY) -> bytes:
    """The whole body of a (small) non-streamed answer."""
    import treq

    started = time.monotonic()
    body = await treq.content(response)
    observe.upstream_time(time.monotonic() - started)
    return body[:limit]

