"""One in-flight call per key, shared by every caller that asks meanwhile.

Token refreshes, project discovery and quota polls must not run twice for the
same account at once. Each caller gets its own Deferred, so one caller giving
up (its client hung up) never cancels the work the others wait for; ``stop``
cancels the shared work itself (at shutdown).
"""

from __future__ import annotations

from typing import Any, Callable, Coroutine, Generic, TypeVar

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._running: dict[str, Deferred[T]] = {}
        self._waiters: dict[str, list[Deferred[T]]] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._running

    def run(self, key: str, work: Callable[[], Coroutine[Any, Any, T]]) -> Deferred[T]:
        """The result of ``work()`` for ``key``, starting it only when none is in flight."""
        waiter: Deferred[T] = Deferred()
        self._waiters.setdefault(key, []).append(waiter)
        if key not in self._running:
            running = Deferred.fromCoroutine(work())
            if not running.called:
                self._running[key] = running
            running.addBoth(self._settle, key)
        return waiter

    def stop(self) -> None:
        """Cancel every call in flight; their waiters fail with CancelledError."""
        for running in list(self._running.values()):
            running.cancel()

    def _settle(self, result: T | Failure, key: str) -> None:
        self._running.pop(key, None)
        for waiter in self._waiters.pop(key, []):
            if waiter.called:
                continue
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)
        return None
