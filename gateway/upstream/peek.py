"""Look at the start of a streamed upstream answer before handing it on: is it an empty stream?

Cloud Code sometimes answers 200 with a stream that ends with no candidates
and no error (PROTOCOL.md 2b); the forwarder retries those. Peeking holds the
bytes until the first event with ``candidates`` or ``error`` (or the end),
then replays them to whoever reads the body, with the same transport, so the
relay's backpressure works as before. Every wait has a deadline.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.iweb import IResponse
from zope.interface import implementer

#: Past this much without a decision the stream is handed on as it is.
PEEK_LIMIT = 64 * 1024
_MARKERS = (b'"candidates"', b'"error"')


def has_content(data: bytes) -> bool:
    """Whether streamed bytes carry an answer or an error (the opposite of an empty stream)."""
    return any(marker in data for marker in _MARKERS)


class _Peek(Protocol):
    def __init__(self, reactor: Any, timeout: float) -> None:
        self.held: list[bytes] = []
        self.size = 0
        self.ended: Failure | None = None
        self.sink: Protocol | None = None
        #: Fires with True (content or undecided) or False (the stream ended empty).
        self.decided: Deferred[bool] = Deferred(self._cancel)
        self._timer = reactor.callLater(timeout, self._decide, True)

    def _cancel(self, d: Deferred[bool]) -> None:
        """The client left while we peeked: stop the timer and the upstream body."""
        if self._timer.active():
            self._timer.cancel()
        if self.transport is not None:
            self.transport.stopProducing()

    def _decide(self, content: bool) -> None:
        if self._timer.active():
            self._timer.cancel()
        if not self.decided.called:
            self.decided.callback(content)

    def dataReceived(self, data: bytes) -> None:
        if self.sink is not None:
            self.sink.dataReceived(data)
            return
        self.held.append(data)
        self.size += len(data)
        if not self.decided.called and (has_content(data) or has_content(b"".join(self.held[-2:])) or self.size > PEEK_LIMIT):
            self._decide(True)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self.sink is not None:
            self.sink.connectionLost(reason)
            return
        self.ended = reason
        self._decide(False if not self.decided.called else True)

    def attach(self, sink: Protocol) -> None:
        """Replay what was held to ``sink``, then pass everything on."""
        sink.makeConnection(self.transport)
        held, self.held = self.held, []
        for chunk in held:
            sink.dataReceived(chunk)
        if self.ended is not None:
            sink.connectionLost(self.ended)
        else:
            self.sink = sink


@implementer(IResponse)
class PeekedResponse:
    """The upstream response with its first bytes already read; ``deliverBody`` replays them."""

    def __init__(self, response: IResponse, peek: _Peek) -> None:
        self._response = response
        self._peek = peek
        self.version = response.version
        self.code = response.code
        self.phrase = response.phrase
        self.headers = response.headers
        self.length = response.length
        self.request = getattr(response, "request", None)
        self.previousResponse = getattr(response, "previousResponse", None)

    def deliverBody(self, protocol: Protocol) -> None:
        self._peek.attach(protocol)

    def setPreviousResponse(self, response: IResponse) -> None:
        self.previousResponse = response


async def peek_stream(response: IResponse, reactor: Any, timeout: float) -> tuple[bool, IResponse]:
    """(empty, a response that replays the body): empty means it ended with no candidates and no error."""
    peek = _Peek(reactor, timeout)
    response.deliverBody(peek)
    content = await peek.decided
    return (not content and not has_content(b"".join(peek.held))), PeekedResponse(response, peek)
