"""Calls to ``{host}/v1internal:{method}`` with host fallback and timeouts.

Owns the HTTP edge only: which host, which headers, when to move on. What a
failure means for the account is decided by ``gateway.protocol.classify``.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Coroutine, Protocol as TypingProtocol

import attrs
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.error import ConnectError, ConnectionLost, DNSLookupError, TimeoutError as TxTimeoutError
from twisted.internet.abstract import isIPv6Address
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import URI, ResponseDone, ResponseFailed, ResponseNeverReceived
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer, IResponse
from zope.interface import implementer

from gateway import observe
from gateway.sending import send_pending
from gateway.observe import NULL_OBSERVER, RequestObserver
from gateway.protocol.errors import GatewayError

# Connection-level failures: the request never got an answer from that host.
CONNECTION_ERRORS = (ConnectError, DNSLookupError, TxTimeoutError, ResponseNeverReceived, ResponseFailed, ConnectionLost)
#: 403 too: Cloud Code's hosts can refuse independently (PROTOCOL.md 2b), so another host may serve.
NEXT_HOST_STATUSES = frozenset({403, 408, 404}) | frozenset(range(500, 600))
MAX_ERROR_BODY = 256 * 1024
#: (host, token) header sets kept by ``UpstreamClient._headers`` before the memo starts over.
MAX_HEADER_SETS = 1024
#: Seconds a body may go without a byte before the read fails ([upstream] body_timeout).
DEFAULT_BODY_TIMEOUT = 60.0


class UpstreamBodyError(Exception):
    """A body did not arrive whole: ``kind`` is ``cut`` (the connection ended early),
    ``stalled`` (no byte within the body timeout) or ``too_large`` (over the limit)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class UpstreamUnreachable(Exception):
    """No configured host answered; ``str()`` names the hosts, never a token."""


@attrs.frozen
class UpstreamResponse:
    code: int
    response: IResponse
    host: str

    @property
    def headers(self) -> dict[str, str]:
        """The response headers, lower-cased names (read for failures only, so not built per call)."""
        return lower_headers(self.response)


def lower_headers(response: IResponse) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v[-1].decode("latin-1") for k, v in response.headers.getAllRawHeaders()}


class _Discard(Protocol):
    def dataReceived(self, data: bytes) -> None:
        pass


def discard(response: IResponse) -> None:
    """Throw away a body we will not use, letting the connection return to the pool."""
    response.deliverBody(_Discard())


@implementer(IBodyProducer)
class BytesProducer:
    """A request body already in memory, written whole in ``startProducing``.

    ``FileBodyProducer`` would send it from a Cooperator task a reactor turn
    later, in 64 kB ticks; written at once, the body leaves with the headers
    (the transport buffers what the socket does not take).
    """

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.length = len(body)

    def startProducing(self, consumer: Any) -> Deferred[None]:
        consumer.write(self.body)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class AgentRoutes(TypingProtocol):
    """Where an account's calls go (``gateway.upstream.proxy.UpstreamHTTP``): an Agent per route."""

    def agent_for(self, credential: str | None) -> IAgent: ...


class UpstreamClient:
    """POSTs to Cloud Code through the route's ``Agent`` itself.

    Not through treq: its per-request URL parsing (hyperlink, IDNA), wrapper
    agents and cookie jar cost about as much as the rest of the upstream
    call. What treq gave that matters is kept here: the response-headers
    timeout (a timer that cancels the request) and unbuffered bodies (the
    relay reads a stream with ``deliverBody`` as it arrives).
    """

    observer: RequestObserver = NULL_OBSERVER  # metrics hooks (gateway.observe); set by assembly

    def __init__(self, routes: AgentRoutes, hosts: tuple[str, ...], user_agent: str | Callable[[], str], response_timeout: float,
                 reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self._routes = routes
        self._reactor = reactor
        self.hosts = hosts  # may be replaced at run time (tests do): per-host state is keyed by the host
        #: A string, or a callable read per call (the live client version: ``ClientVersion.user_agent``).
        self.user_agent = user_agent
        self.response_timeout = response_timeout
        self._prepared: dict[tuple[str, str], tuple[str, Headers]] = {}

    def _headers(self, host: str, token: str) -> Headers:
        """The request headers for ``host`` and ``token``, built once per (host, token, user agent).

        With ``Host`` among them the Agent uses them as they are, and nothing
        after it writes to them, so one object serves every call with that
        token (an account's token lives about an hour). Bounded: past
        ``MAX_HEADER_SETS`` (a pool of many accounts) the memo starts over.
        """
        agent = self.user_agent() if callable(self.user_agent) else self.user_agent
        key = (host, token)
        cached = self._prepared.get(key)
        if cached is not None and cached[0] == agent:
            return cached[1]
        headers = Headers({
            b"Host": [_host_value(host)],
            b"Content-Type": [b"application/json"],
            b"User-Agent": [agent.encode()],
            b"Accept-Encoding": [b"identity"],
            b"Authorization": [b"Bearer " + token.encode()],
        })
        if len(self._prepared) >= MAX_HEADER_SETS:
            self._prepared.clear()
        self._prepared[key] = (agent, headers)
        return headers

    def call(self, method: str, payload: bytes, token: str, *, stream: bool = False) -> Coroutine[Any, Any, UpstreamResponse]:
        """POST one v1internal method, moving to the next host where PROTOCOL says to (await it)."""
        suffix = f"/v1internal:{method}" + ("?alt=sse" if stream else "")
        return self._each_host(b"POST", suffix, method, payload, token)

    def get(self, path: str, token: str) -> Coroutine[Any, Any, UpstreamResponse]:
        """GET ``{host}/v1internal/{path}`` (long-running operations; await it)."""
        return self._each_host(b"GET", "/v1internal/" + path.lstrip("/"), "operation", None, token)

    async def _each_host(self, verb: bytes, suffix: str, method: str, payload: bytes | None, token: str) -> UpstreamResponse:
        last_error: Failure | None = None
        agent = self._routes.agent_for(token)
        observer = self.observer
        last = len(self.hosts) - 1
        for index, host in enumerate(self.hosts):
            url = (host + suffix).encode("ascii")
            headers = self._headers(host, token)
            started = observer.now()
            try:
                try:
                    response = await self._send(agent, verb, url, headers, payload)
                except ResponseNeverReceived:
                    # A pooled connection the server had closed: the request never
                    # reached it, so sending it once more is safe (TWISTED.md). A
                    # cancelled request never gets here: _send turns it into a
                    # timeout (ours) or CancelledError (the caller's).
                    response = await self._send(agent, verb, url, headers, payload)
            except CONNECTION_ERRORS as e:
                last_error = Failure(e)
                observer.upstream_body(observer.now() - started)
                if index != last:
                    observer.host_fallback(host, type(e).__name__)
                continue
            observer.upstream_first_byte(method, host, observer.now() - started)
            if response.code in NEXT_HOST_STATUSES and index != last:
                observer.host_fallback(host, str(response.code))
                discard(response)
                continue
            return UpstreamResponse(response.code, response, host)
        raise UpstreamUnreachable(
            f"no upstream host answered ({', '.join(self.hosts)}): {_describe(last_error)}"
        )

    def _send(self, agent: IAgent, verb: bytes, url: bytes, headers: Headers, payload: bytes | None) -> Deferred[IResponse]:
        """One request; cancelled (connection aborted) if no response headers come within the timeout."""
        body = None if payload is None else BytesProducer(payload)
        d = agent.request(verb, url, headers, body)
        send_pending(self._reactor)  # on a pooled connection the request is written: it leaves now
        timed_out: list[bool] = []

        def expire() -> None:
            timed_out.append(True)
            d.cancel()

        timer = self._reactor.callLater(self.response_timeout, expire)

        def settled(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            if isinstance(result, Failure) and _cancelled(result):
                # Our own response timeout: a timeout (next host), never a stale
                # connection to retry. Anyone else's cancel: stop right here.
                return Failure(TxTimeoutError("no response headers in time")) if timed_out else Failure(CancelledError())
            return result

        return d.addBoth(settled)


def _cancelled(failure: Failure) -> bool:
    """Whether a request failed because it was cancelled (the Agent wraps that in ResponseNeverReceived)."""
    if failure.check(CancelledError):
        return True
    if failure.check(ResponseNeverReceived, ResponseFailed):
        return any(isinstance(r, Failure) and r.check(CancelledError) for r in failure.value.reasons)
    return False


def _host_value(base_url: str) -> bytes:
    """The ``Host`` header for a base URL, as ``Agent`` computes it."""
    uri = URI.fromBytes(base_url.encode("ascii"))
    host = b"[" + uri.host + b"]" if isIPv6Address(uri.host.decode("ascii")) else uri.host
    if (uri.scheme, uri.port) in ((b"http", 80), (b"https", 443)):
        return host
    return b"%b:%d" % (host, uri.port)


def _describe(failure: Failure | None) -> str:
    if failure is None:
        return "no hosts configured"
    return failure.type.__name__ if failure.type else "connection failed"


def unreachable_error(e: UpstreamUnreachable) -> GatewayError:
    return GatewayError(503, f"Cloud Code is unreachable: {e}. Check [upstream] hosts and the network, then retry.")


class _Collect(Protocol):
    """Collects a body for one ``join``, failing it when it stalls (``idle`` seconds without a byte),
    is cut short, or (``strict``) grows past ``limit``; otherwise bytes past ``limit`` are dropped.

    Cancelling ``done`` (the client hung up) closes the upstream connection.
    """

    def __init__(self, limit: int, strict: bool, idle: float, reactor: Any) -> None:
        self._chunks: list[bytes] = []
        self._room = limit
        self._limit = limit
        self._strict = strict
        self._idle = idle
        self._reactor = reactor
        self._timer: Any = reactor.callLater(idle, self._stalled)
        self.done: Deferred[bytes] = Deferred(self._cancel)

    def dataReceived(self, data: bytes) -> None:
        if self.done.called:
            return
        if self._timer is not None and self._timer.active():
            self._timer.reset(self._idle)
        if self._room > 0:
            self._chunks.append(data[:self._room])
        self._room -= len(data)
        if self._room < 0 and self._strict:
            self._fail(UpstreamBodyError("too_large", f"the answer is larger than {self._limit} bytes"))

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._disarm()
        if self.done.called:
            return
        if reason is None or reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self._chunks))
        else:
            self.done.errback(UpstreamBodyError("cut", f"the connection ended before the body was complete ({reason.type.__name__})"))

    def _stalled(self) -> None:
        self._timer = None
        self._fail(UpstreamBodyError("stalled", f"no part of the body arrived for {self._idle:g} s"))

    def _fail(self, error: UpstreamBodyError) -> None:
        self._disarm()
        self._chunks = []
        if not self.done.called:
            self.done.errback(error)
        if self.transport is not None:
            self.transport.stopProducing()

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _cancel(self, d: Deferred[bytes]) -> None:
        self._disarm()
        if self.transport is not None:
            self.transport.stopProducing()


async def read_body(response: IResponse, limit: int = MAX_ERROR_BODY, *, strict: bool = False,
                    timeout: float = DEFAULT_BODY_TIMEOUT, reactor: Any = None) -> bytes:
    """The whole body of a non-streamed answer; raises ``UpstreamBodyError`` when it stalls for
    ``timeout`` seconds, is cut short, or (``strict``) exceeds ``limit`` bytes — else it is cut at ``limit``."""
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    started = time.monotonic()
    collect = _Collect(limit, strict, timeout, reactor)
    response.deliverBody(collect)
    body = await collect.done
    observe.upstream_time(time.monotonic() - started)
    return body
