"""Keeping an account "in flight" for exactly as long as its answer lasts.

The pool counts requests in flight per account (``[accounts] max_in_flight``).
An answer's body is read after the forwarder returns (a stream may last
minutes), so the account is released when the body has been delivered or
abandoned: ``ReleasingResponse`` wraps the upstream ``IResponse`` and calls
``release`` from its protocol's ``connectionLost``. ``wait_for_release`` lets
a request wait, bounded, for the next release.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure


def once(fn: Callable[[], None]) -> Callable[[], None]:
    """``fn`` made idempotent: only the first call runs it."""
    done = [False]

    def run() -> None:
        if not done[0]:
            done[0] = True
            fn()

    return run


class _ReleasingProtocol(Protocol):
    def __init__(self, inner: Any, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release = release

    def makeConnection(self, transport: Any) -> None:
        self.transport = transport
        self._inner.makeConnection(transport)

    def dataReceived(self, data: bytes) -> None:
        self._inner.dataReceived(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        try:
            self._inner.connectionLost(reason)
        finally:
            self._release()


class ReleasingResponse:
    """An ``IResponse`` whose body delivery ends by calling ``release`` (once)."""

    def __init__(self, response: Any, release: Callable[[], None]) -> None:
        self._response = response
        self._release = release

    def __getattr__(self, name: str) -> Any:
        return getattr(self._response, name)

    def deliverBody(self, protocol: Any) -> None:
        self._response.deliverBody(_ReleasingProtocol(protocol, self._release))


def wait_for_release(pool: Any, reactor: IReactorTime, timeout: float) -> Deferred[None]:
    """Fires at the pool's next release, or after ``timeout`` seconds, whichever is first.

    Cancelling it (the client hung up) forgets the listener and the timer.
    """
    timer: list[Any] = []

    def cancel(d: Deferred[None]) -> None:
        forget()
        if timer and timer[0].active():
            timer[0].cancel()

    d: Deferred[None] = Deferred(cancel)

    def fire() -> None:
        if timer and timer[0].active():
            timer[0].cancel()
        if not d.called:
            d.callback(None)

    def timed_out() -> None:
        forget()
        if not d.called:
            d.callback(None)

    forget = pool.on_release(fire)
    timer.append(reactor.callLater(max(0.0, timeout), timed_out))
    return d
