"""The Site, channel and Request subclasses: limits before buffering, request ids, drain.

twisted.web buffers a whole body before ``render`` and has no body size
limit, and answers oversized heads with a bare 400; so the limits live here
and are checked as bytes arrive: a body over the limit (413), a URL (414) or
head (431) too long, a client too slow to send its head or body (408) is
answered with a google.rpc.Status at once and the connection closed, without
reading the rest. The site also knows every open connection, so a shutdown
can stop, let in-flight requests finish, and close each connection cleanly.
"""

from __future__ import annotations

import contextvars
import io
import ipaddress
import os
import re
import time
from binascii import hexlify
from typing import Any, Callable, Iterable
from urllib.parse import unquote_to_bytes as unquote

import attrs
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred
from twisted.web.http import HTTPChannel, datetimeToString
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import _IEncodingResource
from twisted.web.server import Request, Site, version

from gateway import observe
from gateway.sending import send_now
from gateway.observe import NULL_OBSERVER, RequestObserver
from gateway.web.doors import path_error_bytes
from gateway.web.failures import log_unhandled
from gateway.web.guard import star_answer

_log = Logger(namespace="antigravity_gateway")
REQUEST_ID = b"x-request-id"
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
MAX_HEADER_COUNT = 200
REASONS = {400: b"Bad Request", 408: b"Request Timeout", 413: b"Request Entity Too Large",
           414: b"URI Too Long", 431: b"Request Header Fields Too Large"}


@attrs.frozen
class Limits:
    """What a client may send (``[server]`` settings); 0 for ``min_body_rate`` turns the rate check off."""

    max_body_bytes: int = 32 * 1024 * 1024
    max_header_bytes: int = 16384
    max_url_bytes: int = 8192
    client_timeout: float = 30.0
    min_body_rate: int = 1024


_date: list[Any] = [0, b""]


def http_date() -> bytes:
    """The ``Date`` header's value, formatted once per second (Twisted formats it per request)."""
    now = int(time.time())
    if now != _date[0]:
        _date[0], _date[1] = now, datetimeToString(now)
    return _date[1]


def new_request_id() -> bytes:
    """32 random hex digits (as ``uuid4().hex``, without building a UUID: ~3 µs less per request)."""
    return hexlify(os.urandom(16))


class _Discard(io.RawIOBase):
    def write(self, data: Any) -> int:
        return len(data)


class TrustedProxies:
    """Peers whose ``X-Forwarded-For`` is believed: IP networks, and ``unix`` for Unix-socket peers."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.unix = False
        self.networks = []
        for entry in entries:
            if entry == "unix":
                self.unix = True
            else:
                self.networks.append(ipaddress.ip_network(entry, strict=False))

    def __bool__(self) -> bool:
        return self.unix or bool(self.networks)

    def trusts(self, address: Any) -> bool:
        if isinstance(address, UNIXAddress):
            return self.unix
        return _ip_in(getattr(address, "host", None), self.networks)

    def trusts_ip(self, host: str) -> bool:
        return _ip_in(host, self.networks)


def _ip_in(host: str | None, networks: list[Any]) -> bool:
    if not host or not networks:
        return False
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == n.version and ip in n for n in networks)


def forwarded_client(peer: Any, header_values: list[bytes] | None, trusted: TrustedProxies) -> Any:
    """The client address: the peer, or, when the peer is a trusted proxy, the right-most
    ``X-Forwarded-For`` entry that is not itself a trusted proxy."""
    if not header_values or not trusted.trusts(peer):
        return peer
    hops = [h.strip() for value in header_values for h in value.decode("latin-1").split(",") if h.strip()]
    for hop in reversed(hops):
        host = hop[1:].split("]", 1)[0] if hop.startswith("[") else (hop.rsplit(":", 1)[0] if hop.count(":") == 1 else hop)
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return peer  # a malformed hop: believe nothing further to the left
        if trusted.trusts_ip(str(ip)):
            continue
        return IPv6Address("TCP", str(ip), 0) if ip.version == 6 else IPv4Address("TCP", str(ip), 0)
    return peer


def describe_address(address: Any) -> str:
    if isinstance(address, UNIXAddress):
        return "unix"
    return str(getattr(address, "host", "") or "-")


class _HeadOnly:
    """A resource wrapper for HEAD: the body a resource returns becomes its Content-Length."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def render(self, request: Any) -> Any:
        body = self.wrapped.render(request)
        if isinstance(body, bytes) and body:
            request.setHeader(b"Content-Length", b"%d" % len(body))
            return b""
        return body


class GatewayRequest(Request):
    max_body_bytes: int = 32 * 1024 * 1024
    _received = 0
    _rejected = False
    _client: Any = None
    request_id = ""
    observation: observe.Observation | None = None
    stream_relay: Any = None
    _ended: Callable[[Failure | None], Any] | None = None
    _postpath: list[bytes] | None = None
    _postpath_due = False

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        # The gateway takes JSON only. Twisted would otherwise sniff every POST's
        # Content-Type with the ``email`` package (~40 µs) and merge form bodies
        # into ``args``, where a form field could pose as a ``?key=`` credential.
        kwargs.setdefault("parsePOSTFormSubmission", False)
        super().__init__(channel, *args, **kwargs)
        # Kept here: Twisted drops ``self.channel`` once the request is done or its client gone.
        self._site = getattr(channel, "site", None)
        self.observer: RequestObserver = getattr(self._site, "observer", NULL_OBSERVER)

    def gotLength(self, length: int | None) -> None:
        limit = self.max_body_bytes = getattr(self._site, "max_body_bytes", self.max_body_bytes)
        if length is not None and length > limit:
            self._reject_too_large()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._rejected:
            return
        self._received += len(data)
        if self._received > self.max_body_bytes:
            self._reject_too_large()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._rejected:
            return
        super().requestReceived(command, path, version)

    def __repr__(self) -> str:
        """Without the query string: a ``?key=`` credential must never reach a log line."""
        path = (self.path or b"").split(b"?", 1)[0].decode("latin-1", "replace")[:200]
        return f"<{type(self).__name__} method={self.method.decode('latin-1', 'replace')} path={path}>"

    def render(self, resrc: Any) -> None:
        """As Twisted's, but a HEAD answer drops its body here (with the body's length),
        instead of Twisted logging a warning that names the URL."""
        if self.method == b"HEAD":
            resrc = _HeadOnly(resrc)
        super().render(resrc)

    def processingFailed(self, reason: Any) -> Any:
        """A resource raised out of ``render``: a scrubbed log entry and a JSON 500 in the door's
        shape (Twisted's own logs the raw failure and answers HTML)."""
        log_unhandled(_log, reason, self.path)
        if self.finished or getattr(self, "channel", None) is None:
            return reason
        if self.startedWriting:
            self.channel.loseConnection()  # too late for a status: end the answer
            return reason
        code, body = path_error_bytes(self.path or b"", 500, "Internal gateway error; it has been logged. Retry the request.")
        self.setResponseCode(code)
        self.setHeader(b"Content-Type", b"application/json; charset=UTF-8")
        self.setHeader(b"Content-Length", b"%d" % len(body))
        self.write(b"" if self.method == b"HEAD" else body)
        self.finish()
        return reason

    def on_end(self, callback: Callable[[Failure | None], Any]) -> None:
        """``notifyFinish`` without a Deferred, for one listener (the model calls ask on every
        request): ``callback(None)`` once the response is done, or ``callback(failure)`` when the
        client went away first."""
        self._ended = callback

    def _cleanup(self) -> None:
        if self.producer is not None:
            # Twisted would log a RuntimeError naming the full URI, ?key= and all.
            _log.warn("a producer was still registered when {path} finished", path=(self.path or b"").decode("latin-1", "replace")[:200])
            self.unregisterProducer()
        super()._cleanup()
        ended, self._ended = self._ended, None
        if ended is not None:
            ended(None)

    def _handleStar(self) -> None:
        """``OPTIONS *`` / ``GET *`` (Twisted answers them itself, empty): JSON like every other answer."""
        body = star_answer(self)
        self.setHeader(b"Content-Length", b"%d" % len(body))
        self.write(body)
        self.finish()

    def getClientAddress(self) -> Any:
        """The client, after ``X-Forwarded-For`` from a trusted proxy (``[server] trusted_proxies``)."""
        if self._client is None:
            peer = super().getClientAddress()
            trusted = getattr(self._site, "trusted_proxies", None)
            if trusted:
                peer = forwarded_client(peer, self.requestHeaders.getRawHeaders(b"x-forwarded-for"), trusted)
            self._client = peer
        return self._client

    def getClientIP(self) -> str | None:
        address = self.getClientAddress()
        return getattr(address, "host", None) if isinstance(address, (IPv4Address, IPv6Address)) else None

    def process(self) -> None:
        incoming = self.requestHeaders.getRawHeaders(REQUEST_ID)
        rid = incoming[-1] if incoming and _SAFE_ID.match(incoming[-1]) else new_request_id()
        self.request_id = rid.decode()
        self.responseHeaders.setRawHeaders(REQUEST_ID, [rid])
        self.observation = self.observer.request_started(
            self.request_id, self.method, self.path, describe_address(self.getClientAddress())
        )
        # Everything the request starts (Klein's coroutine and what it awaits)
        # runs in a copy of the context holding this request's observation.
        contextvars.copy_context().run(self._process_observed)

    def _process_observed(self) -> None:
        observe.bind(self.observation)
        self._serve()

    def _serve(self) -> None:
        """Twisted's ``server.Request.process``, less per-request work the model calls never use:
        the ``Date`` header is formatted once per second, ``postpath`` when first read, and a
        leaf root resource (the gateway's) is used without walking the path to it."""
        site = self.site = self.channel.site
        self.setHeader(b"Server", version)
        self.setHeader(b"Date", http_date())
        self.prepath = []
        self._postpath_due = True
        if self.path == b"*":
            self._handleStar()
            return
        try:
            root = site.resource
            if getattr(root, "isLeaf", False):
                self.sitepath = []
                resrc = root
            else:
                resrc = site.getResourceFor(self)
            if _IEncodingResource.providedBy(resrc):
                encoder = resrc.getEncoder(self)
                if encoder is not None:
                    self._encoder = encoder
            self.render(resrc)
        except BaseException:
            self.processingFailed(Failure())

    @property  # type: ignore[override]
    def postpath(self) -> list[bytes] | None:
        """Twisted's ``postpath`` (the path's segments, percent-decoded), made when first read."""
        if self._postpath is None and self._postpath_due:
            self._postpath = [unquote(segment) for segment in self.path[1:].split(b"/")]
        return self._postpath

    @postpath.setter
    def postpath(self, value: list[bytes] | None) -> None:
        self._postpath = value

    def write(self, data: bytes) -> None:
        channel = getattr(self, "channel", None)  # None once the client is gone; Twisted then drops the write
        if channel is not None and not self.startedWriting and getattr(self._site, "draining", False):
            self.responseHeaders.setRawHeaders(b"Connection", [b"close"])
            channel.persistent = False
        if data and self.observation is not None and self.code == 200:
            self.observer.response_data(self.observation, data)
        super().write(data)

    def finish(self) -> None:
        try:
            super().finish()
            send_now(self.transport)  # the answer leaves now, not after every other socket of this pass
        finally:
            if self.finished:
                self.observer.request_finished(self.observation, self.code)

    def connectionLost(self, reason: Any) -> None:
        super().connectionLost(reason)
        ended, self._ended = self._ended, None
        if ended is not None:
            ended(reason)
        if not self.finished:
            self.observer.request_finished(self.observation, 499)

    def shutdown(self) -> None:
        """The drain's grace period is over: end a relayed stream with an error event."""
        relay = self.stream_relay
        if relay is not None and hasattr(relay, "shutdown"):
            relay.shutdown()

    def _reject_too_large(self) -> None:
        """Answer 413 straight on the transport; the body is never read."""
        self._rejected = True
        self.content = _Discard()
        self.channel.refuse(
            413,
            f"Request body is larger than the gateway's limit of {self.max_body_bytes} bytes "
            "([server] max_body_bytes). Send a smaller request.",
        )


class _Unarmed:
    """A channel timer started inside ``dataReceived``: armed when that returns, unless cancelled first.
    Two constant instances (the head's and the body's), so a request that arrives whole allocates none."""

    __slots__ = ("method",)

    def __init__(self, method: str) -> None:
        self.method = method  # the GatewayChannel method the timer calls


_HEAD_TIMER = _Unarmed("_head_too_slow")
_BODY_TIMER = _Unarmed("_check_body_rate")


class GatewayChannel(HTTPChannel):
    """HTTP/1.1 with the gateway's limits on the request line, the head and the client's pace."""

    _phase: str | None = None  # None (between requests), "head", "body"
    _head_bytes = 0
    _header_count = 0
    _header_limit = 0
    _window_bytes = 0
    _timer: Any = None
    _receiving = 0  # nesting depth of dataReceived (timers started inside are armed when it returns)
    _refused = False
    _closing = False
    _lost = False
    _line_path: bytes = b""  # the target (and method) of the request line in progress, for refusals
    _line_method: bytes = b""

    _peer: Any = None
    _host: Any = None

    @property
    def limits(self) -> Limits:
        return getattr(self.site, "limits", None) or Limits()

    def getPeer(self) -> Any:
        """The client's address, built once per connection (Twisted's builds one on every call,
        and every Request asks)."""
        if self._peer is None:
            self._peer = self.transport.getPeer()
        return self._peer

    def getHost(self) -> Any:
        if self._host is None:
            self._host = self.transport.getHost()
        return self._host

    def connectionMade(self) -> None:
        limits = self.limits
        # Twisted's own checks answer a bare 400; ours answer 414/431 first.
        self.totalHeadersSize = limits.max_url_bytes + limits.max_header_bytes + 4096
        self.maxHeaders = MAX_HEADER_COUNT + 1
        self.MAX_LENGTH = max(limits.max_url_bytes, limits.max_header_bytes) + 64
        super().connectionMade()

    # -- the head --

    def dataReceived(self, data: bytes) -> None:
        # The head's deadline runs from its first byte (not its first complete
        # line, and not reset by each byte as Twisted's idle timer is): a request
        # line dribbled a byte at a time, or never ended, still gets its 408.
        # A whole request usually arrives in one read: its head and body timers would be set and
        # cancelled within this call. They are armed only if still wanted when it returns.
        self._receiving += 1
        try:
            if (data and self._phase is None and self._timer is None and not self._refused
                    and not getattr(self, "_handlingRequest", False)):
                self._start_timer(_HEAD_TIMER)
            super().dataReceived(data)
        finally:
            self._receiving -= 1
            timer = self._timer
            if self._receiving == 0 and timer.__class__ is _Unarmed:
                self._timer = self.callLater(self.limits.client_timeout, getattr(self, timer.method))

    def lineReceived(self, line: bytes) -> None:
        if self._refused:
            return
        if self._phase is None:
            if not line:
                super().lineReceived(line)
                return
            limits = self.limits
            self._phase = "head"
            self._head_bytes = 0
            self._header_count = 0
            self._header_limit = limits.max_header_bytes  # read once per request, not per header line
            parts = line.split(b" ")
            self._line_method = parts[0]
            self._line_path = parts[1] if len(parts) >= 2 else b""
            if len(parts) >= 2 and len(parts[1]) > limits.max_url_bytes:
                self.refuse(414, f"The request URL is longer than the gateway's limit of {limits.max_url_bytes} bytes "
                                 "([server] max_url_bytes). Send parameters in the body.")
                return
        elif line:
            self._head_bytes += len(line) + 2
            if line[:1] not in (b" ", b"\t"):
                self._header_count += 1
            if self._head_bytes > self._header_limit or self._header_count > MAX_HEADER_COUNT:
                self.refuse(431, f"The request headers are larger than the gateway's limit of {self._header_limit} "
                                 f"bytes or {MAX_HEADER_COUNT} fields ([server] max_header_bytes).")
                return
        super().lineReceived(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        limits = self.limits
        if self._phase is None:
            parts = line.split(b" ", 2)
            self._line_method = parts[0][:16]
            self._line_path = parts[1][:4096] if len(parts) >= 2 else b""
            self.refuse(414, f"The request URL is longer than the gateway's limit of {limits.max_url_bytes} bytes "
                             "([server] max_url_bytes). Send parameters in the body.")
        else:
            self.refuse(431, f"A request header is longer than the gateway's limit of {limits.max_header_bytes} bytes "
                             "([server] max_header_bytes).")

    def allHeadersReceived(self) -> None:
        super().allHeadersReceived()
        if getattr(self.site, "draining", False):
            self.persistent = False
        if self._refused or self._lost:
            return
        self._cancel_timer()
        if self.length != 0:
            self._phase = "body"
            self._window_bytes = 0
            if self.limits.min_body_rate > 0:
                self._start_timer(_BODY_TIMER)

    # -- the body --

    def rawDataReceived(self, data: bytes) -> None:
        if self._refused:
            return
        if self._phase == "body":
            self._window_bytes += len(data)
        super().rawDataReceived(data)

    def allContentReceived(self) -> None:
        self._cancel_timer()
        self._phase = None
        super().allContentReceived()
        self._line_path = self._line_method = b""

    # -- slow clients --

    def _head_too_slow(self) -> None:
        self._timer = None
        if self._phase != "body":
            self.refuse(408, f"The request line and headers did not arrive within {self.limits.client_timeout:g} s "
                             "([server] client_timeout). Send the request at once.")

    def _check_body_rate(self) -> None:
        self._timer = None
        if self._phase != "body":
            return
        limits = self.limits
        needed = limits.min_body_rate * limits.client_timeout
        if self._window_bytes < needed:
            self.refuse(408, f"The request body arrived slower than the gateway's minimum of {limits.min_body_rate} "
                             f"bytes/s over {limits.client_timeout:g} s ([server] min_body_rate). Send the body at once.")
            return
        self._window_bytes = 0
        self._start_timer(_BODY_TIMER)

    def _start_timer(self, timer: _Unarmed) -> None:
        """Start the head's or the body's timer (``[server] client_timeout``), replacing any other."""
        self._cancel_timer()
        self._timer = timer if self._receiving else self.callLater(self.limits.client_timeout, getattr(self, timer.method))

    def _cancel_timer(self) -> None:
        timer = self._timer
        if timer is not None:
            self._timer = None
            if timer.__class__ is not _Unarmed and timer.active():
                timer.cancel()

    # -- Twisted's idle timeout (``Site(timeout=…)``, 12 h by default) --

    _idle_call: Any = None

    def setTimeout(self, period: float | None) -> float | None:
        """TimeoutMixin's ``setTimeout``, with one timer per connection that is moved, not replaced:
        Twisted turns the idle timeout off for each request and on again after it, which cost a
        cancelled and a new ``callLater`` per request. Off (``None``) while a request is handled,
        the timer stays scheduled and is ignored if it fires (``_idle_over``); off for good once
        the connection is lost."""
        previous, self.timeOut = self.timeOut, period
        call = self._idle_call
        if period is None:
            if self._lost and call is not None:
                if call.active():
                    call.cancel()
                self._idle_call = None
        elif call is not None and call.active():
            call.reset(period)
        else:
            self._idle_call = self.callLater(period, self._idle_over)
        return previous

    def resetTimeout(self) -> None:
        call = self._idle_call
        if call is not None and self.timeOut is not None and call.active():
            call.reset(self.timeOut)

    def _idle_over(self) -> None:
        self._idle_call = None
        if self.timeOut is not None:  # None: a request is being handled; requestDone turns it on again
            self.timeoutConnection()

    # -- answers without a Request --

    def refuse(self, code: int, message: str) -> None:
        """Answer ``code`` with a google.rpc.Status now, read nothing more, and close."""
        if self._refused:
            return
        self._refused = True
        self._cancel_timer()
        for request in self.requests:
            request._rejected = True
            request.content = _Discard()
        self.dataReceived = lambda data: None  # type: ignore[method-assign]
        rid = new_request_id().decode()
        code, body = path_error_bytes(self._refused_path(), code, message)
        head = (
            b"HTTP/1.1 %d %s\r\n" % (code, REASONS.get(code, b"Error"))
            + b"Content-Type: application/json; charset=UTF-8\r\n"
            + b"Content-Length: %d\r\n" % len(body)
            + REQUEST_ID + b": " + rid.encode() + b"\r\n"
            + b"Connection: close\r\n\r\n"
        )
        # A HEAD answer has no body (the client would read it as the next response).
        self.transport.write(head if self._refused_method() == b"HEAD" else head + body)
        self.loseConnection()
        observer = getattr(self.site, "observer", NULL_OBSERVER)
        observer.rejected(code, REASONS.get(code, b"").decode(), rid, describe_address(self.transport.getPeer()))

    def _refused_method(self) -> bytes:
        """The method of the request being refused, as far as it arrived."""
        if self._line_method:
            return self._line_method
        return bytes(getattr(self, "_buffer", b"") or b"")[:16].split(b" ", 1)[0]

    def _refused_path(self) -> bytes:
        """The path of the request line being refused (its door picks the error shape), or b""."""
        path = self._line_path
        if not path and self._phase is None:
            # The request line is still arriving (a slow client): its target so far names the door.
            parts = bytes(getattr(self, "_buffer", b"") or b"")[:8192].split(b"\n", 1)[0].split(b" ")
            path = parts[1] if len(parts) >= 2 else b""
        return path.split(b"?", 1)[0] if isinstance(path, bytes) else b""

    def _respondToBadRequestAndDisconnect(self) -> None:
        """Twisted's malformed-request path, answered as JSON like every other error."""
        self.refuse(400, "The request is not valid HTTP/1.1 (malformed request line, header or chunk).")

    # -- shutdown --

    @property
    def idle(self) -> bool:
        return not self.requests and self._phase is None

    def requestDone(self, request: Any) -> None:
        super().requestDone(request)
        if getattr(self.site, "draining", False) and not self._lost:
            self.close()

    def close(self) -> None:
        """Flush what is written, then close (``loseConnection``; ``connectionLost`` follows)."""
        if self._closing or self._lost:
            return
        self._closing = True
        self.loseConnection()

    def connectionLost(self, reason: Any) -> None:
        self._lost = True
        self._cancel_timer()
        try:
            super().connectionLost(reason)
        finally:
            lost = getattr(self.site, "channel_lost", None)
            if lost is not None:
                lost(self)


class GatewaySite(Site):
    requestFactory = GatewayRequest
    protocol = GatewayChannel
    noisy = False  # no "Starting factory <…object at 0x…>" lines: the start-up summary says what listens

    def __init__(
        self,
        resource: Any,
        max_body_bytes: int,
        *,
        limits: Limits | None = None,
        observer: RequestObserver = NULL_OBSERVER,
        trusted_proxies: Iterable[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(resource, **kwargs)
        self.limits = attrs.evolve(limits or Limits(), max_body_bytes=max_body_bytes)
        self.max_body_bytes = max_body_bytes
        self.observer = observer
        self.trusted_proxies = TrustedProxies(trusted_proxies)
        self.displayTracebacks = False
        self.draining = False
        self.channels: set[GatewayChannel] = set()
        self._all_closed: list[Deferred[None]] = []

    def buildProtocol(self, addr: Any) -> Any:
        channel = super().buildProtocol(addr)
        if self.draining:
            # Accepted by the kernel before the port closed: serve nothing new.
            channel.persistent = False
        self.channels.add(channel)
        return channel

    def channel_lost(self, channel: Any) -> None:
        self.channels.discard(channel)
        if not self.channels:
            waiters, self._all_closed = self._all_closed, []
            for d in waiters:
                d.callback(None)

    def log(self, request: Any) -> None:
        """No combined-log lines: their URLs can carry ``?key=`` secrets (see gateway.observe)."""

    # -- drain --

    def drain(self, grace: float) -> Deferred[None]:
        """Stop serving new requests: close idle connections now, let in-flight requests
        finish (each connection closes after its response), and after ``grace`` seconds
        end streams with an error event and close what is left. Fires when every
        connection is gone. Listening ports must already be closed."""
        self.draining = True
        for channel in list(self.channels):
            if channel.idle:
                channel.close()
            else:
                channel.persistent = False
        done = self.closed()
        if done.called:
            return done
        grace_call = self.reactor.callLater(grace, self._grace_over)
        done.addBoth(lambda result: (grace_call.active() and grace_call.cancel(), result)[1])
        return done

    def closed(self) -> Deferred[None]:
        """Fires once no connection is open."""
        d: Deferred[None] = Deferred()
        if not self.channels:
            d.callback(None)
        else:
            self._all_closed.append(d)
        return d

    def _grace_over(self) -> None:
        for channel in list(self.channels):
            for request in list(channel.requests):
                request.shutdown()
        for channel in list(self.channels):
            channel.close()
        # A peer that does not read what is flushed must not hold the exit.
        abort = self.reactor.callLater(5, self._abort_all)
        self.closed().addBoth(lambda _: abort.active() and abort.cancel())

    def _abort_all(self) -> None:
        for channel in list(self.channels):
            if channel.transport is not None:
                channel.transport.abortConnection()
