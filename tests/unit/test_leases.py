"""An account stays in flight exactly as long as its answer's body: released once, on delivery's end."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone

from gateway.upstream.leases import ReleasingResponse, once, wait_for_release


class FakeResponse:
    code = 200
    length = 10

    def __init__(self) -> None:
        self.protocol: Any = None

    def deliverBody(self, protocol: Any) -> None:
        self.protocol = protocol
        protocol.makeConnection(object())


class Collector(Protocol):
    def __init__(self) -> None:
        self.data = b""
        self.ended = False

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Any = None) -> None:
        self.ended = True


class Pool:
    def __init__(self) -> None:
        self.listeners: list[Any] = []

    def on_release(self, listener: Any) -> Any:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener) if listener in self.listeners else None

    def release(self) -> None:
        listeners, self.listeners = self.listeners, []
        for listener in listeners:
            listener()


def test_the_lease_ends_when_the_body_ends_and_only_once() -> None:
    released: list[int] = []
    inner = FakeResponse()
    response = ReleasingResponse(inner, once(lambda: released.append(1)))
    assert response.code == 200 and response.length == 10
    collector = Collector()
    response.deliverBody(collector)
    inner.protocol.dataReceived(b"hello")
    assert released == [] and collector.transport is not None
    inner.protocol.connectionLost(Failure(ResponseDone()))
    inner.protocol.connectionLost(Failure(ResponseDone()))
    assert collector.data == b"hello" and collector.ended and released == [1]


def test_waiting_ends_at_a_release_or_the_timeout_and_cancelling_leaves_nothing() -> None:
    clock, pool = MemoryReactorClock(), Pool()
    fired: list[str] = []
    wait_for_release(pool, clock, 5).addCallback(lambda _: fired.append("released"))
    pool.release()
    assert fired == ["released"] and not clock.getDelayedCalls()
    wait_for_release(pool, clock, 5).addCallback(lambda _: fired.append("timeout"))
    clock.advance(5)
    assert fired[-1] == "timeout" and not pool.listeners
    waiting = wait_for_release(pool, clock, 5)
    waiting.addErrback(lambda f: fired.append("cancelled") if f.check(CancelledError) else f)
    waiting.cancel()
    assert fired[-1] == "cancelled" and not pool.listeners and not clock.getDelayedCalls()
