"""One deadline over a piece of async work: cancel it when time runs out, and say why.

Cancellation reaches whatever the work awaits (an upstream request, a body
read, a wait for a free account), so nothing keeps running after the client
has been answered; the work's ``finally`` blocks release what they hold.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Callable, Coroutine

from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure


def within(work: Coroutine[Any, Any, Any] | Deferred[Any], seconds: float, reactor: Any,
           error: Callable[[], Exception]) -> Deferred[Any]:
    """``work``'s result, or ``error()`` raised when it takes longer than ``seconds``."""
    d = work if isinstance(work, Deferred) else Deferred.fromCoroutine(work)
    expired: list[bool] = []

    def expire() -> None:
        expired.append(True)
        d.cancel()

    timer = reactor.callLater(seconds, expire)

    def settled(result: Any) -> Any:
        if timer.active():
            timer.cancel()
        if expired and isinstance(result, Failure) and result.check(CancelledError):
            return Failure(error())
        return result

    return d.addBoth(settled)


class Handler:
    """A request's handler: its coroutine, the Deferred running it (``deferred``, set once it has
    started), and the timer of the deadline now running inside it, if any."""

    __slots__ = ("coroutine", "deferred", "timer")

    def __init__(self) -> None:
        self.coroutine: Coroutine[Any, Any, Any] | None = None
        self.deferred: Deferred[Any] | None = None
        self.timer: Any = None


#: The handler of the request the current code serves. Set by the resource that starts the
#: handler (the handler's context keeps it). Work the handler starts on a Deferred of its own
#: inherits the value although the handler does not await it directly: :func:`inline_within`
#: therefore uses it only while the handler's own coroutine is running (it awaits the caller).
HANDLER: ContextVar[Handler | None] = ContextVar("gateway_handler", default=None)


async def inline_within(work: Coroutine[Any, Any, Any], seconds: float, reactor: Any,
                        error: Callable[[], Exception]) -> Any:
    """:func:`within`, awaited; inside a request handler (:data:`HANDLER`) without a second Deferred.

    ``work`` is awaited in the handler's own coroutine chain, and the timer cancels the handler's
    Deferred, which cancels what the chain is waiting on, i.e. ``work``'s current wait: the same
    cancellation as :func:`within`'s, without running ``work`` on a Deferred of its own and
    resuming the caller through it. Anywhere else (no handler; work the handler started on a
    Deferred of its own, resumed later; a deadline inside another) it is :func:`within`.
    """
    handler = HANDLER.get()
    if handler is None or handler.timer is not None or not getattr(handler.coroutine, "cr_running", False):
        return await within(work, seconds, reactor, error)
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        assert handler.deferred is not None
        handler.deferred.cancel()

    handler.timer = timer = reactor.callLater(seconds, expire)
    try:
        return await work
    except CancelledError:
        if expired:
            raise error() from None
        raise
    finally:
        handler.timer = None
        if timer.active():
            timer.cancel()
