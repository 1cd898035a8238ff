"""What instances must agree on, as one zope interface: the local default and Redis implement it.

Every method answers without blocking a request longer than the backend's
deadline: a shared backend that cannot answer falls back to this instance's
local state and says so in ``status()``.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class ISharedState(Interface):
    name = Attribute("'local' or 'redis'")

    def start() -> object:
        """Connect (returns a Deferred or None); never fails the start-up when the backend is down."""

    def stop() -> None:
        """Close connections and timers."""

    def acquire(pool: object, model: object, exclude: object, session: object) -> object:
        """A Deferred ``Pick``: the pool's own choice, agreed with the other instances."""

    def learned(email: str, model: object, until: float, reason: str) -> None:
        """The pool learned a cooldown (model None: the whole account); tell the others."""

    def refresh(pool: object, email: str, refresh_here: object) -> object:
        """A Deferred access token: one refresh per account across instances (``refresh_here`` does it)."""

    def discover(pool: object, email: str, discover_here: object) -> object:
        """A Deferred project id: one discovery per account across instances."""

    def quota(email: str, poll_here: object, absorb: object) -> object:
        """A Deferred fetchAvailableModels answer: one fetch per account across instances at a time."""

    def admit(name: str, rpm: int, tokens_per_day: int, now: float) -> object:
        """A Deferred ``Refusal`` or None: the key's limits counted over every instance."""

    def spent(name: str, tokens: int, now: float) -> None:
        """Count tokens a key spent (shared daily budget and usage counters)."""

    def status() -> dict:
        """For /admin and metrics: backend, up, error, where."""
