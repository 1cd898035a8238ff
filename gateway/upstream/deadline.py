"""One deadline over a piece of async work: cancel it when time runs out, and say why.

Cancellation reaches whatever the work awaits (an upstream request, a body
read, a wait for a free account), so nothing keeps running after the client
has been answered; the work's ``finally`` blocks release what they hold.
"""

from __future__ import annotations

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
