"""Upstream HTTP through an HTTP proxy: CONNECT tunnels, TLS on top, one client per route.

Twisted's ``ProxyAgent`` only forwards plain HTTP; HTTPS needs ``CONNECT``
(TWISTED.md): ``TunnelEndpoint`` connects to the proxy, sends ``CONNECT
host:port``, waits for a 2xx, then hands the raw tunnel to the real protocol;
``wrapClientTLS`` puts TLS on top for ``https://``. ``UpstreamHTTP`` keeps one
``Agent`` (and connection pool) per route — direct, ``[upstream] proxy``, or
an account's own proxy — with one endpoint per destination built once, not per
request; the generation hot path (``gateway.upstream.client``) calls that Agent
directly, the rest goes through a treq client on it. ``RoutingHTTPClient``
picks the route from the credential a call carries (an access or refresh token
names its account).
Proxy credentials are secrets: never in errors or logs.
"""

from __future__ import annotations

import base64
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, unquote, urlsplit

from treq.client import HTTPClient
from twisted.internet.defer import Deferred, DeferredList, fail, succeed
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.error import ConnectError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from twisted.web.client import URI, Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool
from twisted.web.error import SchemeNotSupported
from twisted.web.iweb import IAgentEndpointFactory, IPolicyForHTTPS, IBodyProducer, IResponse
from twisted.web.http_headers import Headers
from twisted.web._newclient import _ensureValidURI
from zope.interface import implementer

MAX_PROXY_HEAD = 16384
# Idle upstream connections kept per host. It caps the idle ones only, so it
# must exceed the peak of concurrent calls: a burst above it closes the
# surplus when the answers end and pays a new connection at the next burst.
MAX_IDLE_PER_HOST = 256
# Below the idle timeouts of common front ends (60-75 s), so the gateway
# closes an idle connection before the server does; a POST on a connection
# the server closed first fails and is retried once (gateway.upstream.client).
IDLE_CONNECTION_SECONDS = 50



class QuietConnectionPool(HTTPConnectionPool):
    """An ``HTTPConnectionPool`` whose connections do not log "Starting factory …" / "Stopping
    factory …" each: with one line per upstream connection a person's log is mostly noise."""

    class _factory(HTTPConnectionPool._factory):  # type: ignore[name-defined,misc]
        noisy = False

class ProxyError(ConnectError):
    """The proxy refused or broke the tunnel; a connection error for host fallback and retries."""


class ProxyURL:
    """``http://[user:password@]host:port``; ``describe()`` omits the credentials."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError("a proxy must be http://[user:password@]host:port")
        self.host = parts.hostname
        self.port = parts.port
        self.authorization: bytes | None = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self.authorization = b"Basic " + base64.b64encode(pair)

    def describe(self) -> str:
        return f"{self.host}:{self.port}"


class _Tunnel(Protocol):
    """Speaks CONNECT to the proxy; after a 2xx, becomes a pipe to the wrapped protocol."""

    def __init__(self, target: bytes, authorization: bytes | None, factory: Factory, proxy: str, ready: Deferred[Any]) -> None:
        self._target = target
        self._authorization = authorization
        self._factory = factory
        self._proxy = proxy
        self._ready = ready
        self._buffer = b""
        self._inner: Protocol | None = None

    def connectionMade(self) -> None:
        head = b"CONNECT " + self._target + b" HTTP/1.1\r\nHost: " + self._target + b"\r\n"
        if self._authorization:
            head += b"Proxy-Authorization: " + self._authorization + b"\r\n"
        self.transport.write(head + b"\r\n")

    def dataReceived(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.dataReceived(data)
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_PROXY_HEAD:
                self._refused("an over-long answer to CONNECT")
            return
        status_line = self._buffer.split(b"\r\n", 1)[0]
        rest = self._buffer[end + 4:]
        self._buffer = b""
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1][:1] == b"2":
            code = parts[1].decode("latin-1", "replace") if len(parts) > 1 else "?"
            self._refused(f"HTTP {code} to CONNECT")
            return
        inner = self._factory.buildProtocol(self.transport.getPeer())
        if inner is None:
            self.transport.loseConnection()
            self._fail(ProxyError(string="the tunnel's protocol factory declined the connection"))
            return
        self._inner = inner
        inner.makeConnection(self.transport)
        ready, self._ready = self._ready, None
        if ready is not None:
            ready.callback(inner)
        if rest:
            inner.dataReceived(rest)

    def connectionLost(self, reason: Failure) -> None:
        if self._inner is not None:
            self._inner.connectionLost(reason)
        else:
            self._fail(ProxyError(string=f"proxy {self._proxy} closed the connection before the tunnel was open"))

    def _refused(self, what: str) -> None:
        self.transport.loseConnection()
        self._fail(ProxyError(string=f"proxy {self._proxy} answered {what}"))

    def _fail(self, error: Exception) -> None:
        ready, self._ready = self._ready, None
        if ready is not None and not ready.called:
            ready.errback(Failure(error))


class _TunnelFactory(Factory):
    def __init__(self, make: Callable[[], _Tunnel]) -> None:
        self._make = make

    def buildProtocol(self, addr: Any) -> _Tunnel:
        protocol = self._make()
        protocol.factory = self
        return protocol


@implementer(IStreamClientEndpoint)
class TunnelEndpoint:
    """Connects to ``host:port`` through an HTTP proxy's CONNECT (plain bytes; wrap for TLS)."""

    def __init__(self, proxy_endpoint: IStreamClientEndpoint, host: str, port: int, authorization: bytes | None, proxy: str) -> None:
        self._proxy_endpoint = proxy_endpoint
        self._target = f"[{host}]:{port}".encode() if ":" in host else f"{host}:{port}".encode()
        self._authorization = authorization
        self._proxy = proxy

    def connect(self, factory: Factory) -> Deferred[Any]:
        tunnels: list[_Tunnel] = []

        def cancel(d: Deferred[Any]) -> None:
            connecting.cancel()
            for tunnel in tunnels:
                if tunnel.transport is not None:
                    tunnel.transport.abortConnection()

        ready: Deferred[Any] = Deferred(cancel)

        def make() -> _Tunnel:
            tunnel = _Tunnel(self._target, self._authorization, factory, self._proxy, ready)
            tunnels.append(tunnel)
            return tunnel

        connecting = self._proxy_endpoint.connect(_TunnelFactory(make))

        def failed(failure: Failure) -> None:
            if not ready.called:
                ready.errback(failure)

        connecting.addErrback(failed)
        return ready


@implementer(IAgentEndpointFactory)
class ProxyEndpointFactory:
    """For ``Agent.usingEndpointFactory``: every URI through one proxy, TLS inside the tunnel for https."""

    def __init__(self, reactor: Any, proxy: ProxyURL, connect_timeout: float, tls_policy: IPolicyForHTTPS | None = None) -> None:
        self._reactor = reactor
        self._proxy = proxy
        self._timeout = connect_timeout
        self._policy = tls_policy or BrowserLikePolicyForHTTPS()

    def endpointForURI(self, uri: Any) -> IStreamClientEndpoint:
        proxy = HostnameEndpoint(self._reactor, self._proxy.host, self._proxy.port, timeout=self._timeout)
        host = uri.host.decode("ascii") if isinstance(uri.host, bytes) else uri.host
        tunnel = TunnelEndpoint(proxy, host, uri.port, self._proxy.authorization, self._proxy.describe())
        if uri.scheme == b"https":
            return wrapClientTLS(self._policy.creatorForNetloc(uri.host, uri.port), tunnel)
        return tunnel


@implementer(IAgentEndpointFactory)
class DirectEndpointFactory:
    """TCP for http, TCP+TLS for https: what a plain ``Agent`` connects with."""

    def __init__(self, reactor: Any, connect_timeout: float, tls_policy: IPolicyForHTTPS | None = None) -> None:
        self._reactor = reactor
        self._timeout = connect_timeout
        self._policy = tls_policy or BrowserLikePolicyForHTTPS()

    def endpointForURI(self, uri: Any) -> IStreamClientEndpoint:
        endpoint = HostnameEndpoint(self._reactor, uri.host, uri.port, timeout=self._timeout)
        if uri.scheme == b"https":
            return wrapClientTLS(self._policy.creatorForNetloc(uri.host, uri.port), endpoint)
        return endpoint


@implementer(IAgentEndpointFactory)
class CachedEndpoints:
    """One endpoint per (scheme, host, port), reused for every request.

    ``Agent`` otherwise builds a ``HostnameEndpoint`` (with IDNA encoding)
    for each request, even when the pool then hands out a cached connection;
    endpoints hold no per-connection state, so one per destination serves all.
    """

    def __init__(self, inner: IAgentEndpointFactory) -> None:
        self._inner = inner
        self._endpoints: dict[tuple[bytes, bytes, int], IStreamClientEndpoint] = {}

    def endpointForURI(self, uri: Any) -> IStreamClientEndpoint:
        key = (uri.scheme, uri.host, uri.port)
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            endpoint = self._endpoints[key] = self._inner.endpointForURI(uri)
        return endpoint


class RouteAgent(Agent):
    """An ``Agent`` that parses each URL once, not once per request.

    ``Agent.request`` validates and parses the URL (``urlparse``), asks the
    endpoint factory and builds the request path on every call: about 9 µs,
    for the handful of URLs the gateway calls over and over (a host times a
    v1internal method). What it derives from a URL depends on nothing else,
    so it is kept per URL; ``_requestWithEndpoint`` is what ``Agent.request``
    itself ends with (and what Twisted's ``ProxyAgent`` calls too).
    Bounded: other callers on the same Agent (image fetches) may pass many
    distinct URLs, so past ``MAX_TARGETS`` the memo starts over.
    """

    MAX_TARGETS = 256

    def _init(self, reactor: Any, endpointFactory: Any, pool: Any) -> None:
        super()._init(reactor, endpointFactory, pool)
        self._targets: dict[bytes, tuple[tuple[bytes, bytes, int], IStreamClientEndpoint, URI, bytes]] = {}

    def request(self, method: bytes, uri: bytes, headers: Headers | None = None,
                bodyProducer: IBodyProducer | None = None) -> Deferred[IResponse]:
        target = self._targets.get(uri)
        if target is None:
            parsed = URI.fromBytes(_ensureValidURI(uri.strip()))
            try:
                endpoint = self._getEndpoint(parsed)
            except SchemeNotSupported:
                return fail(Failure())
            target = ((parsed.scheme, parsed.host, parsed.port), endpoint, parsed, parsed.originForm)
            if len(self._targets) >= self.MAX_TARGETS:
                self._targets.clear()
            self._targets[uri] = target
        key, endpoint, parsed, path = target
        return self._requestWithEndpoint(key, endpoint, method, parsed, headers, bodyProducer, path)


def proxy_agent(reactor: Any, proxy: str, pool: HTTPConnectionPool, connect_timeout: float, tls_policy: IPolicyForHTTPS | None = None) -> Agent:
    factory = ProxyEndpointFactory(reactor, ProxyURL(proxy), connect_timeout, tls_policy)
    return RouteAgent.usingEndpointFactory(reactor, CachedEndpoints(factory), pool=pool)


def direct_agent(reactor: Any, pool: HTTPConnectionPool, connect_timeout: float) -> Agent:
    return RouteAgent.usingEndpointFactory(reactor, CachedEndpoints(DirectEndpointFactory(reactor, connect_timeout)), pool=pool)


class UpstreamHTTP:
    """One Agent, treq client and connection pool per route: direct (``""``) or a proxy URL."""

    def __init__(
        self,
        reactor: Any,
        *,
        connect_timeout: float,
        proxy: str = "",
        account_proxies: Iterable[tuple[str, str]] = (),
        accounts: Callable[[], Iterable[Any]] = lambda: (),
        tls_policy: IPolicyForHTTPS | None = None,
    ) -> None:
        self._reactor = reactor
        self._connect_timeout = connect_timeout
        self.proxy = proxy
        self.account_proxies = dict(account_proxies)
        self._accounts = accounts
        self._tls_policy = tls_policy
        self._agents: dict[str, Agent] = {}
        self._clients: dict[str, HTTPClient] = {}
        self.pools: dict[str, HTTPConnectionPool] = {}

    def agent(self, proxy: str) -> Agent:
        """The route's Agent: what the generation hot path calls without treq's layers."""
        agent = self._agents.get(proxy)
        if agent is None:
            pool = QuietConnectionPool(self._reactor, persistent=True)
            pool.maxPersistentPerHost = MAX_IDLE_PER_HOST
            pool.cachedConnectionTimeout = IDLE_CONNECTION_SECONDS
            if proxy:
                agent = proxy_agent(self._reactor, proxy, pool, self._connect_timeout, self._tls_policy)
            else:
                agent = direct_agent(self._reactor, pool, self._connect_timeout)
            self.pools[proxy] = pool
            self._agents[proxy] = agent
        return agent

    def client(self, proxy: str) -> HTTPClient:
        """The route's treq client (token endpoint, image fetches, and the like), on the same Agent."""
        client = self._clients.get(proxy)
        if client is None:
            client = self._clients[proxy] = HTTPClient(self.agent(proxy))
        return client

    def proxy_for_account(self, email: str | None) -> str:
        if email is not None and email in self.account_proxies:
            return self.account_proxies[email]
        return self.proxy

    def route_for(self, credential: str | None) -> str:
        """The route (proxy URL, or ``""``) of the account an access or refresh token belongs to."""
        if not self.account_proxies or not credential:
            return self.proxy
        for account in self._accounts():
            if credential in (getattr(account, "access_token", None), getattr(account, "refresh_token", None)):
                return self.proxy_for_account(account.email)
        return self.proxy

    def for_credential(self, credential: str | None) -> HTTPClient:
        """The treq client for the account an access or refresh token belongs to."""
        return self.client(self.route_for(credential))

    def agent_for(self, credential: str | None) -> Agent:
        """The Agent for the account an access or refresh token belongs to."""
        return self.agent(self.route_for(credential))

    def close(self) -> Deferred[Any]:
        """Close every idle pooled connection (the last step of a shutdown)."""
        if not self.pools:
            return succeed(None)
        return DeferredList([pool.closeCachedConnections() for pool in self.pools.values()])


class RoutingHTTPClient:
    """Looks like treq's ``HTTPClient`` (``request``, ``get``, ``post``); each call goes through the
    route of the account whose credential it carries (``Authorization: Bearer``, or the
    ``refresh_token`` of a token-endpoint form)."""

    def __init__(self, routes: UpstreamHTTP) -> None:
        self.routes = routes

    def request(self, method: str, url: str, **kwargs: Any) -> Deferred[Any]:
        return self.routes.for_credential(_credential(kwargs)).request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> Deferred[Any]:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, data: Any = None, **kwargs: Any) -> Deferred[Any]:
        return self.request("POST", url, data=data, **kwargs)


def _credential(kwargs: dict[str, Any]) -> str | None:
    headers = kwargs.get("headers") or {}
    for name, values in headers.items():
        key = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        if key.lower() == "authorization":
            value = values[-1] if isinstance(values, list) else values
            value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            if value.lower().startswith("bearer "):
                return value[7:].strip()
    data = kwargs.get("data")
    if isinstance(data, bytes) and b"refresh_token=" in data:
        values = parse_qs(data.decode("latin-1")).get("refresh_token")
        if values:
            return values[-1]
    return None
