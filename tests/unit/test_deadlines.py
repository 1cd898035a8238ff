"""Deadlines on async work and on upstream body reads, on a fake clock."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone, ResponseFailed

from gateway.upstream.client import UpstreamBodyError, read_body
from gateway.upstream.deadline import within


class _Transport:
    stopped = False

    def stopProducing(self) -> None:
        self.stopped = True


class _Response:
    """An IResponse stand-in: the test feeds the protocol ``deliverBody`` got."""

    def __init__(self) -> None:
        self.protocol: Any = None
        self.transport = _Transport()

    def deliverBody(self, protocol: Any) -> None:
        self.protocol = protocol
        protocol.makeConnection(self.transport)


def _result(d: Deferred[Any]) -> Any:
    box: list[Any] = []
    d.addBoth(box.append)
    assert box, "not settled"
    return box[0]


def test_within_cancels_the_work_and_raises_the_given_error() -> None:
    clock = MemoryReactorClock()
    cancelled: list[bool] = []
    work: Deferred[str] = Deferred(lambda d: cancelled.append(True))
    d = within(work, 5, clock, lambda: RuntimeError("too slow"))
    clock.advance(4.9)
    assert not d.called
    clock.advance(0.2)
    result = _result(d)
    assert cancelled == [True] and isinstance(result, Failure) and result.check(RuntimeError)


def test_within_passes_results_and_leaves_no_timer() -> None:
    clock = MemoryReactorClock()
    work: Deferred[str] = Deferred()
    d = within(work, 5, clock, lambda: RuntimeError("x"))
    work.callback("ok")
    assert _result(d) == "ok" and not clock.getDelayedCalls()


def _read(limit: int = 100, strict: bool = True) -> tuple[_Response, Deferred[bytes], MemoryReactorClock]:
    clock = MemoryReactorClock()
    response = _Response()
    d = Deferred.fromCoroutine(read_body(response, limit, strict=strict, timeout=2, reactor=clock))  # type: ignore[arg-type]
    return response, d, clock


def test_a_body_that_stalls_fails_and_stops_the_upstream() -> None:
    response, d, clock = _read()
    response.protocol.dataReceived(b"{")
    clock.advance(1.5)
    response.protocol.dataReceived(b"\"a\"")  # each chunk restarts the idle timer
    clock.advance(1.5)
    assert not d.called
    clock.advance(1)
    failure = _result(d)
    assert failure.check(UpstreamBodyError) and failure.value.kind == "stalled" and response.transport.stopped


def test_a_cut_body_and_an_oversized_one_are_upstream_failures() -> None:
    response, d, clock = _read()
    response.protocol.dataReceived(b"{")
    response.protocol.connectionLost(Failure(ResponseFailed([Failure(ConnectionError())])))
    assert _result(d).value.kind == "cut" and not clock.getDelayedCalls()
    response, d, clock = _read(limit=10)
    response.protocol.dataReceived(b"x" * 11)
    assert _result(d).value.kind == "too_large" and response.transport.stopped and not clock.getDelayedCalls()


@pytest.mark.parametrize("strict,expected", [(False, b"x" * 10)])
def test_a_lenient_read_cuts_at_the_limit(strict: bool, expected: bytes) -> None:
    response, d, clock = _read(limit=10, strict=strict)
    response.protocol.dataReceived(b"x" * 25)
    response.protocol.connectionLost(Failure(ResponseDone()))
    assert _result(d) == expected and not clock.getDelayedCalls()


def _handler_running(coroutine_function: Any) -> tuple[Any, Deferred[Any]]:
    """Run ``coroutine_function()`` as a request handler does (``HANDLER`` names its Deferred)."""
    from gateway.upstream.deadline import HANDLER, Handler

    handler = Handler()
    token = HANDLER.set(handler)
    try:
        handler.coroutine = coroutine_function()
        handler.deferred = Deferred.fromCoroutine(handler.coroutine)
    finally:
        HANDLER.reset(token)
    return handler, handler.deferred


def test_inline_within_cancels_the_handlers_wait_and_raises_the_given_error() -> None:
    from gateway.upstream.deadline import inline_within

    clock = MemoryReactorClock()
    cancelled: list[bool] = []
    wait: Deferred[str] = Deferred(lambda d: cancelled.append(True))

    async def work() -> str:
        return await wait

    async def handler() -> str:
        try:
            return await inline_within(work(), 5, clock, lambda: RuntimeError("too slow"))
        except RuntimeError as e:
            return f"answered: {e}"

    running, d = _handler_running(handler)
    assert running.timer is not None  # one timer, and no Deferred of the deadline's own
    clock.advance(4.9)
    assert not d.called
    clock.advance(0.2)
    assert cancelled == [True] and _result(d) == "answered: too slow" and not clock.getDelayedCalls()
    assert running.timer is None


def test_inline_within_passes_results_and_client_cancels_and_leaves_no_timer() -> None:
    from twisted.internet.defer import CancelledError

    from gateway.upstream.deadline import inline_within

    clock = MemoryReactorClock()
    wait: Deferred[str] = Deferred()

    async def handler() -> str:
        return await inline_within(_awaiting(wait), 5, clock, lambda: RuntimeError("x"))

    _, d = _handler_running(handler)
    wait.callback("ok")
    assert _result(d) == "ok" and not clock.getDelayedCalls()

    _, d = _handler_running(lambda: inline_within(_awaiting(Deferred()), 5, clock, lambda: RuntimeError("x")))
    d.cancel()  # the client went away: not the deadline's error
    assert _result(d).check(CancelledError) and not clock.getDelayedCalls()


def test_inline_within_nested_or_outside_a_handler_uses_within() -> None:
    from gateway.upstream.deadline import inline_within

    clock = MemoryReactorClock()
    inner_wait: Deferred[str] = Deferred()

    async def handler() -> str:
        inner = inline_within(_awaiting(inner_wait), 1, clock, lambda: RuntimeError("inner"))
        return await inline_within(inner, 5, clock, lambda: RuntimeError("outer"))

    _, d = _handler_running(handler)
    clock.advance(1.5)
    assert _result(d).value.args == ("inner",) and not clock.getDelayedCalls()

    alone = Deferred.fromCoroutine(inline_within(_awaiting(Deferred()), 2, clock, lambda: RuntimeError("alone")))
    clock.advance(2.5)
    assert _result(alone).value.args == ("alone",) and not clock.getDelayedCalls()


async def _awaiting(d: Deferred[Any]) -> Any:
    return await d


def test_work_the_handler_runs_on_a_deferred_of_its_own_uses_within() -> None:
    """A task the handler started (e.g. a shared refresh), resumed later: its deadline must not cancel the handler."""
    from gateway.upstream.deadline import inline_within

    clock = MemoryReactorClock()
    started: Deferred[None] = Deferred()
    tasks: list[Deferred[Any]] = []

    async def task() -> str:
        await started  # resumed from the reactor later, not from the handler's coroutine
        return await inline_within(_awaiting(Deferred()), 2, clock, lambda: RuntimeError("task too slow"))

    async def handler() -> str:
        tasks.append(Deferred.fromCoroutine(task()))  # inherits the handler's context
        return await _awaiting(Deferred())

    running, d = _handler_running(handler)
    started.callback(None)
    assert running.timer is None  # the task's deadline is its own
    clock.advance(2.5)
    assert _result(tasks[0]).value.args == ("task too slow",) and not d.called
