"""Fetching a client-named URL (an image in a chat request) without becoming an SSRF proxy.

Anyone with an API key can name a URL; the gateway fetches it from inside
the operator's network. So the address is checked *after* DNS resolution,
on the address actually connected to (no rebinding window), on every
redirect hop: loopback, private, link-local, multicast, reserved and other
non-global ranges are refused unless the operator allows them
(``[image_fetch] allow_networks``). Redirects, size and time are capped and
the answer must be an image (or PDF) by its Content-Type.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any, Callable, Iterable
from urllib.parse import urljoin, urlsplit

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.protocol import Protocol
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory, IResponse
from zope.interface import implementer

from gateway.upstream.proxy import QuietConnectionPool

from gateway.upstream.deadline import within

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: What a fetched answer may be (``Content-Type``); anything else is refused.
ACCEPTED_TYPES = ("image/", "application/pdf")


class FetchRefused(Exception):
    """The URL may not or could not be fetched; ``str()`` is safe to show the client."""


@attrs.frozen
class FetchPolicy:
    """``[image_fetch]``: extra networks allowed, and the caps."""

    allow_networks: tuple[str, ...] = ()
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 3
    timeout: float = 15.0

    def networks(self) -> list[Any]:
        return [ipaddress.ip_network(n, strict=False) for n in self.allow_networks]


def address_allowed(address: str | Address, allowed: Iterable[Any] = ()) -> bool:
    """Whether the gateway may connect to ``address``: a public unicast address, or one in ``allowed``."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip.version == n.version and ip in n for n in allowed):
        return True
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local
                                 or ip.is_private or ip.is_unspecified)


def check_url(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an http(s) URL, or ``FetchRefused``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchRefused("is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchRefused("is not an http(s) URL")
    if not parts.hostname:
        raise FetchRefused("has no host")
    if parts.username or parts.password:
        raise FetchRefused("carries credentials; the gateway does not send them")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def media_type(content_type: str) -> str | None:
    """The accepted media type of a ``Content-Type`` header, or None."""
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime if mime.startswith(ACCEPTED_TYPES) else None


Resolver = Callable[[str, int], "Deferred[list[str]]"]


def system_resolver(reactor: Any) -> Resolver:
    """``getaddrinfo`` in the reactor's thread pool: every address a name has (IPv4 and IPv6)."""

    def resolve(host: str, port: int) -> Deferred[list[str]]:
        def lookup() -> list[str]:
            return [info[4][0] for info in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)]

        return deferToThreadPool(reactor, reactor.getThreadPool(), lookup)

    return resolve


@implementer(IAgentEndpointFactory)
class GuardedEndpoints:
    """Endpoints that resolve the host, refuse it unless every address is allowed, and connect to that address."""

    def __init__(self, reactor: Any, allowed: list[Any], resolve: Resolver, timeout: float) -> None:
        self.reactor = reactor
        self.allowed = allowed
        self.resolve = resolve
        self.timeout = timeout
        self.tls = BrowserLikePolicyForHTTPS()

    def endpointForURI(self, uri: Any) -> Any:
        return _GuardedEndpoint(self, uri)


class _GuardedEndpoint:
    def __init__(self, factory: GuardedEndpoints, uri: Any) -> None:
        self.owner = factory
        self.uri = uri

    def connect(self, protocol_factory: Any) -> Deferred[Any]:
        return Deferred.fromCoroutine(self._connect(protocol_factory))

    async def _connect(self, protocol_factory: Any) -> Any:
        owner = self.owner
        host = self.uri.host.decode("ascii").strip("[]")
        port = self.uri.port
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                addresses = await owner.resolve(host, port)
            except Exception:
                raise FetchRefused("names a host that could not be resolved") from None
        if not addresses:
            raise FetchRefused("names a host that could not be resolved")
        for address in addresses:
            if not address_allowed(address, owner.allowed):
                raise FetchRefused(
                    "points to a loopback, private or otherwise non-public address, which the gateway does not fetch "
                    "([image_fetch] allow_networks)"
                )
        address = addresses[0].split("%", 1)[0]
        cls = TCP6ClientEndpoint if ":" in address else TCP4ClientEndpoint
        endpoint: Any = cls(owner.reactor, address, port, timeout=owner.timeout)
        if self.uri.scheme == b"https":
            endpoint = wrapClientTLS(owner.tls.creatorForNetloc(self.uri.host, port), endpoint)
        return await endpoint.connect(protocol_factory)


class _Capped(Protocol):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        self.done: Deferred[bytes] = Deferred(lambda d: self._stop())

    def _stop(self) -> None:
        if self.transport is not None:
            self.transport.stopProducing()

    def dataReceived(self, data: bytes) -> None:
        if self.done.called:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.done.errback(FetchRefused(f"is larger than the gateway's limit of {self.limit} bytes ([image_fetch] max_bytes)"))
            self._stop()
            return
        self.chunks.append(data)

    def connectionLost(self, reason: Failure = Failure(ResponseDone())) -> None:
        if self.done.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.chunks))
        else:
            self.done.errback(FetchRefused("could not be read completely"))


class _Discard(Protocol):
    def dataReceived(self, data: bytes) -> None:
        pass


class SafeFetcher:
    """GET a client-named URL under :class:`FetchPolicy`; answers ``(media type, bytes)``."""

    def __init__(self, reactor: Any, policy: FetchPolicy = FetchPolicy(), resolve: Resolver | None = None) -> None:
        self.reactor = reactor
        self.policy = policy
        endpoints = GuardedEndpoints(reactor, policy.networks(), resolve or system_resolver(reactor), policy.timeout)
        self.agent = Agent.usingEndpointFactory(reactor, endpoints, pool=QuietConnectionPool(reactor, persistent=False))

    def fetch(self, url: str) -> Deferred[tuple[str, bytes]]:
        """The media type and body, or ``FetchRefused`` (also for a timeout: ``[image_fetch] timeout``)."""
        return within(self._fetch(url), self.policy.timeout, self.reactor,
                      lambda: FetchRefused(f"did not arrive within {self.policy.timeout:g} s ([image_fetch] timeout)"))

    async def _fetch(self, url: str) -> tuple[str, bytes]:
        policy = self.policy
        for _hop in range(policy.max_redirects + 1):
            check_url(url)
            try:
                response: IResponse = await self.agent.request(
                    b"GET", url.encode("ascii", "strict"), Headers({b"Accept": [b"image/*, application/pdf"]}))
            except FetchRefused:
                raise
            except UnicodeEncodeError:
                raise FetchRefused("is not a valid URL (use percent-encoding)") from None
            except Exception as e:
                inner = _refusal_inside(e)
                if inner is not None:
                    raise inner from None
                raise FetchRefused(f"could not be fetched ({type(e).__name__})") from None
            if response.code in REDIRECTS:
                location = response.headers.getRawHeaders(b"location", [b""])[0].decode("latin-1")
                response.deliverBody(_Discard())
                if not location:
                    raise FetchRefused(f"answered HTTP {response.code} without a Location")
                url = urljoin(url, location)
                continue
            if response.code != 200:
                response.deliverBody(_Discard())
                raise FetchRefused(f"answered HTTP {response.code}")
            mime = media_type(response.headers.getRawHeaders(b"content-type", [b""])[0].decode("latin-1"))
            if mime is None:
                response.deliverBody(_Discard())
                raise FetchRefused("is not an image (its Content-Type must be image/* or application/pdf)")
            if isinstance(response.length, int) and response.length > policy.max_bytes:
                response.deliverBody(_Discard())
                raise FetchRefused(f"is larger than the gateway's limit of {policy.max_bytes} bytes ([image_fetch] max_bytes)")
            reader = _Capped(policy.max_bytes)
            response.deliverBody(reader)
            return mime, await reader.done
        raise FetchRefused(f"redirected more than {policy.max_redirects} times ([image_fetch] max_redirects)")


def _refusal_inside(error: BaseException) -> FetchRefused | None:
    """The ``FetchRefused`` an Agent wrapped (connection attempts fail inside ``ConnectingCancelledError`` etc.)."""
    if isinstance(error, FetchRefused):
        return error
    for reason in getattr(error, "reasons", []) or []:
        value = getattr(reason, "value", None)
        if isinstance(value, FetchRefused):
            return value
    return None
