"""send_now / send_pending: a finished message leaves at once, and closing transports are left to the reactor."""

from __future__ import annotations

import socket

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol

from gateway.sending import send_now, send_pending


class FakeSocketTransport:
    def __init__(self, connected: bool = True, disconnecting: bool = False) -> None:
        self.connected = connected
        self.disconnecting = disconnecting
        self.writes = 0

    def doWrite(self) -> None:
        self.writes += 1


class Wrapper:
    """A transport over another (TLS over TCP): no doWrite of its own."""

    def __init__(self, transport: object) -> None:
        self.transport = transport


def test_a_connected_transport_is_written_and_a_closing_or_lost_one_is_not() -> None:
    open_, closing, lost = FakeSocketTransport(), FakeSocketTransport(disconnecting=True), FakeSocketTransport(connected=False)
    for t in (open_, closing, lost):
        send_now(t)
    assert (open_.writes, closing.writes, lost.writes) == (1, 0, 0)


def test_a_wrapping_transport_is_written_through_and_one_without_a_socket_is_ignored() -> None:
    under = FakeSocketTransport()
    send_now(Wrapper(under))
    assert under.writes == 1
    send_now(Wrapper(None))  # nothing under it: no error
    send_now(object())


def test_send_pending_writes_every_writer_and_tolerates_a_clock_without_descriptors() -> None:
    writers = [FakeSocketTransport(), FakeSocketTransport(disconnecting=True)]

    class Reactor:
        def getWriters(self) -> list[FakeSocketTransport]:
            return writers

    send_pending(Reactor())
    assert [w.writes for w in writers] == [1, 0]
    send_pending(object())


@pytest_twisted.inlineCallbacks
def test_written_bytes_reach_the_peer_before_the_reactor_polls_again() -> None:
    """Over real loopback TCP: without send_now the bytes wait in the transport until the next poll."""
    made: Deferred[Protocol] = Deferred()

    class Server(Protocol):
        def connectionMade(self) -> None:
            made.callback(self)

    port = reactor.listenTCP(0, Factory.forProtocol(Server), interface="127.0.0.1")
    client = socket.create_connection(("127.0.0.1", port.getHost().port))
    server = None
    try:
        server = yield made
        client.setblocking(False)
        server.transport.write(b"held")
        try:
            early = client.recv(16)
        except BlockingIOError:
            early = b""
        assert early == b""  # Twisted buffers until the reactor's next pass
        send_now(server.transport)
        client.settimeout(2.0)
        assert client.recv(16) == b"held"  # sent at once, the reactor has not run in between
    finally:
        client.close()
        yield port.stopListening()
        if server is not None:
            server.transport.loseConnection()
