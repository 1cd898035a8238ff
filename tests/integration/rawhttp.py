"""Raw bytes over one loopback TCP connection, for tests of what a well-behaved client never sends.

``exchange`` writes the given pieces (a float between them pauses that many
seconds) and returns everything the server sent until it closed the
connection; ``blocking_exchange`` does the same with a plain socket, for
threads and for tests that run no reactor; ``parse`` splits that into status,
headers and body, and ``dechunk`` joins a chunked body.
"""

from __future__ import annotations

import socket
from typing import Any, Callable, Sequence

from twisted.internet import reactor
from twisted.internet.defer import Deferred, race
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater


class _Collect(Protocol):
    def __init__(self) -> None:
        self.data = b""
        self.closed: Deferred[bytes] = Deferred()
        self.watchers: list[Deferred[None]] = []

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Any) -> None:
        if not self.closed.called:
            self.closed.callback(self.data)
        for watcher in self.watchers:
            if not watcher.called:
                watcher.callback(None)


async def exchange(port: int, pieces: Sequence[Any], timeout: float = 10.0) -> bytes:
    """Send ``pieces`` and return what came back once the server closed (or ``timeout`` passed).

    A piece is bytes to send, a number of seconds to pause, or a no-argument
    coroutine function to await (e.g. until the server has done something)."""
    protocol = _Collect()
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), protocol)
    for piece in pieces:
        if protocol.closed.called:
            break
        if callable(piece):
            await piece()
        elif isinstance(piece, (int, float)):
            watcher: Deferred[None] = Deferred()
            protocol.watchers.append(watcher)
            await race([deferLater(reactor, piece, lambda: None), watcher])  # a pause ends when the server closes
        else:
            protocol.transport.write(piece)
    closed = protocol.closed
    timer = reactor.callLater(timeout, protocol.transport.abortConnection)
    try:
        return await closed
    finally:
        if timer.active():
            timer.cancel()


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def until(condition: Callable[[], Any], timeout: float = 10.0) -> Callable[[], Any]:
    """A piece for ``exchange``: wait (polling the reactor) until ``condition()`` is true."""

    async def wait() -> None:
        deadline = reactor.seconds() + timeout
        while not condition():
            if reactor.seconds() > deadline:
                raise AssertionError("condition never became true")
            await deferLater(reactor, 0.02, lambda: None)

    return wait


def blocking_exchange(port: int, raw: bytes, timeout: float = 30.0) -> bytes:
    """Send ``raw`` on a plain socket and read until the server closes (or resets) the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(raw)  # no half-close: Twisted takes a client's EOF as the client leaving
        except OSError:
            pass  # the gateway may refuse (and close) before reading everything
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def dechunk(body: bytes) -> bytes:
    """The payload of a ``Transfer-Encoding: chunked`` body."""
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        n = int(size.split(b";")[0], 16)
        if n == 0:
            break
        out, body = out + rest[:n], rest[n + 2:]
    return out
