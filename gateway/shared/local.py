"""The default: nothing is shared, each instance decides from its own memory (as before)."""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from zope.interface import implementer

from gateway.shared.interfaces import ISharedState


@implementer(ISharedState)
class LocalState:
    name = "local"

    def start(self) -> None:
        return None

    def stop(self) -> None:
        pass

    def acquire(self, pool: Any, model: str | None, exclude: set[str], session: str | None) -> Deferred[Any]:
        return succeed(pool.acquire(model, exclude, session))

    def learned(self, email: str, model: str | None, until: float, reason: str) -> None:
        pass

    def refresh(self, pool: Any, email: str, refresh_here: Callable[[], Any]) -> Deferred[str]:
        return ensureDeferred(refresh_here())

    def discover(self, pool: Any, email: str, discover_here: Callable[[], Any]) -> Deferred[str]:
        return ensureDeferred(discover_here())

    def quota(self, email: str, poll_here: Callable[[], Any], absorb: Callable[[Any], None]) -> Deferred[Any]:
        return ensureDeferred(poll_here())

    def admit(self, name: str, rpm: int, tokens_per_day: int, now: float) -> Deferred[Any]:
        return succeed(None)

    def spent(self, name: str, tokens: int, now: float) -> None:
        pass

    def status(self) -> dict[str, Any]:
        return {"backend": "local", "up": True, "error": None}
