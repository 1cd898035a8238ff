"""GatewayRequest.process: Twisted's, less per-request work (Date once per second, postpath when read)."""

from __future__ import annotations

from typing import Any

from twisted.web.http import datetimeToString
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyChannel

from gateway.web.site import GatewayRequest, GatewaySite, http_date


class _Seen(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[list[bytes], list[bytes]]] = []

    def render(self, request: Any) -> Any:
        self.seen.append((list(request.prepath), list(request.postpath)))
        return NOT_DONE_YET


def _process(root: Any, path: bytes) -> GatewayRequest:
    channel = DummyChannel()
    channel.site = GatewaySite(root, 1024)
    request = GatewayRequest(channel)
    request.gotLength(0)
    request.requestReceived(b"GET", path, b"HTTP/1.1")
    return request


def test_a_leaf_root_gets_twisteds_postpath_when_it_reads_it() -> None:
    root = _Seen()
    request = _process(root, b"/v1beta/models/a%3Ab:generateContent?x=1")
    assert root.seen == [([], [b"v1beta", b"models", b"a:b:generateContent"])]
    assert request.sitepath == [] and request.site is request.channel.site
    assert request.responseHeaders.getRawHeaders(b"date") == [http_date()]
    assert request.responseHeaders.getRawHeaders(b"server")[0].startswith(b"TwistedWeb/")


def test_a_tree_root_is_walked_as_twisted_walks_it() -> None:
    leaf = _Seen()
    root = Resource()
    root.putChild(b"v1", leaf)
    _process(root, b"/v1/x/y")
    assert leaf.seen == [([b"v1"], [b"x", b"y"])]


def test_the_date_is_twisteds() -> None:
    import time

    before = datetimeToString(int(time.time()))
    value = http_date()
    assert value == before or value == datetimeToString(int(time.time()))


def _idle_channel(timeout: float) -> tuple[Any, Any, Any]:
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import MemoryReactorClock, StringTransport

    clock = MemoryReactorClock()
    root = _Seen()
    site = GatewaySite(root, 1024, reactor=clock, timeout=timeout)
    channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    transport = StringTransport()
    channel.makeConnection(transport)
    return channel, transport, clock


def test_the_idle_timeout_closes_an_idle_connection_and_never_one_with_a_request_in_hand() -> None:
    channel, transport, clock = _idle_channel(10)
    clock.advance(9)
    channel.dataReceived(b"GET /a HTTP/1.1\r\nHost: gw\r\n\r\n")  # handled (the resource never answers)
    clock.advance(25)
    assert not transport.disconnecting  # no idle timeout while a request is handled
    request = channel.requests[0]
    request.write(b"done")
    request.finish()
    clock.advance(9)
    assert not transport.disconnecting  # the countdown restarted when the request was done
    clock.advance(1.5)
    assert transport.disconnecting
    channel.connectionLost(None)
    assert not [c for c in clock.getDelayedCalls() if c.active() and c.func != channel.forceAbortClient]


def test_bytes_restart_the_idle_countdown_and_a_lost_connection_leaves_no_timer() -> None:
    channel, transport, clock = _idle_channel(10)
    clock.advance(8)
    channel.dataReceived(b"GET /a HTTP/1.1\r\n")  # part of a head
    clock.advance(8)
    assert not transport.disconnecting
    channel.connectionLost(None)
    assert not [c for c in clock.getDelayedCalls() if c.active()]
