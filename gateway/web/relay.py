"""Relaying an upstream SSE body to the client, event by event, with backpressure.

The upstream transport is registered as the client request's push producer,
so a slow client pauses the upstream read and memory stays bounded; a client
that hangs up stops the upstream; an upstream silent for longer than the idle
timeout (no whole event) ends the stream with an error event. Framing is pure (``StreamFormat``).
"""

from __future__ import annotations

import json
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import IRequest

from gateway.observe import NULL_OBSERVER, failed_in_stream
from gateway.protocol.envelope import unwrap_event
from gateway.protocol.errors import error_dict
from gateway.protocol.framing import JSONArrayWriter, SSEParser, dumps, sse_event_raw


class StreamFormat:
    """Turns upstream event payloads into client bytes: SSE, or one JSON array."""

    def __init__(self, sse: bool) -> None:
        self.sse = sse
        self._array = None if sse else JSONArrayWriter()
        self.content_type = b"text/event-stream" if sse else b"application/json; charset=UTF-8"

    def event(self, payload: bytes) -> bytes:
        body = unwrap_event(payload)
        return sse_event_raw(body) if self._array is None else self._array.element(body)

    def error(self, code: int, message: str) -> bytes:
        body = dumps(error_dict(code, message))
        return sse_event_raw(body) if self._array is None else self._array.element(body)

    def end(self) -> bytes:
        return b"" if self._array is None else self._array.end()


class StreamRelay(Protocol):
    """Receives the upstream body (``IResponse.deliverBody``) and writes it to ``request``."""

    def __init__(
        self,
        request: IRequest,
        fmt: StreamFormat,
        reactor: IReactorTime,
        idle_timeout: float,
        on_event: Callable[[bytes], None] | None = None,
        refusal: Callable[[bytes], Any] | None = None,
    ) -> None:
        self.request = request
        self.fmt = fmt
        self.reactor = reactor
        self.idle_timeout = idle_timeout
        self.on_event = on_event
        #: Reads the first event: a GatewayError when upstream refused inside a 200 stream (an old client version).
        self.refusal = refusal
        self.parser = SSEParser()
        self.done: Deferred[None] = Deferred(self._cancel)
        self.events = 0
        self._client_gone = False
        self._timer: IDelayedCall | None = None
        self._failed = False
        self._observer = getattr(request, "observer", NULL_OBSERVER)
        self._started = 0.0
        if hasattr(request, "stream_relay"):
            request.stream_relay = self  # the drain ends a stream still running after its grace period

    # -- upstream side --

    def connectionMade(self) -> None:
        self._started = self._observer.now()
        self._observer.stream_started(getattr(self.request, "observation", None))
        self.request.registerProducer(self.transport, True)
        self._arm()

    def dataReceived(self, data: bytes) -> None:
        try:
            payloads = self.parser.feed(data)
        except ValueError:
            self._fail(503, "Cloud Code sent an event larger than the gateway accepts; the stream was stopped.")
            return
        if payloads:
            self._arm()  # the idle timer counts events, not bytes: a trickle of bytes is still silence
        for payload in payloads:
            self._emit(payload)

    def connectionLost(self, reason: Failure = Failure(ResponseDone())) -> None:
        self._disarm()
        self._observer.stream_finished(getattr(self.request, "observation", None), self._observer.now() - self._started)
        if not self._client_gone and not self._failed:
            for payload in self.parser.close():
                self._emit(payload)
            if not reason.check(ResponseDone, PotentialDataLoss):
                failed_in_stream(getattr(self.request, "observation", None), 503)
                self._write(self.fmt.error(503, "Cloud Code ended the stream unexpectedly; retry the request."))
            self._write(self.fmt.end())
        if not self._client_gone:
            self.request.unregisterProducer()
        if not self.done.called:
            self.done.callback(None)

    # -- helpers --

    def _emit(self, payload: bytes) -> None:
        if self._failed or self._client_gone:
            return
        if self.events == 0 and self.refusal is not None:
            error = self.refusal(payload)
            if error is not None:
                if not getattr(self.request, "startedWriting", True):
                    self.request.setResponseCode(error.code)
                self._fail(error.code, error.message)
                return
        try:
            out = self.fmt.event(payload)
        except ValueError:
            self._fail(503, "Cloud Code sent an event that is not JSON; the stream was stopped.")
            return
        self.events += 1
        if payload[:24].lstrip().startswith(b'{"error"'):  # upstream's in-stream error, passed on as an event
            failed_in_stream(getattr(self.request, "observation", None), _error_code(payload))
        if self.on_event is not None:
            self.on_event(payload)
        self._write(out)

    def _write(self, data: bytes) -> None:
        if data and not self._client_gone:
            self.request.write(data)

    def _fail(self, code: int, message: str) -> None:
        """End the client's stream with an error event and drop the upstream."""
        if self._failed:
            return
        self._failed = True
        failed_in_stream(getattr(self.request, "observation", None), code)
        if not self._client_gone:
            self._write(self.fmt.error(code, message))
            self._write(self.fmt.end())
        self.transport.stopProducing()

    def shutdown(self) -> None:
        """The gateway is stopping and the drain's grace period is over."""
        if self.transport is None:
            return
        self._fail(503, "The gateway is restarting and could not finish this stream in time; retry the request.")

    def _stalled(self) -> None:
        self._timer = None
        self._fail(504, f"Cloud Code sent nothing for {self.idle_timeout:g} s; the stream was stopped. Retry the request.")

    def _arm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.reset(self.idle_timeout)
        else:
            self._timer = self.reactor.callLater(self.idle_timeout, self._stalled)

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _cancel(self, d: Deferred[Any]) -> None:
        """The client went away: stop reading upstream (closes that connection)."""
        self._client_gone = True
        self._disarm()
        if self.transport is not None:
            self.transport.stopProducing()


def _error_code(payload: bytes) -> int:
    """The status of an upstream ``{"error": {"code": …}}`` event (502 when it names none)."""
    try:
        code = json.loads(payload)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return 502
    return code if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599 else 502
