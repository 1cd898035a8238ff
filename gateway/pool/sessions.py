"""Sticky sessions: which account a conversation (per model) last used, for a while.

Pure bookkeeping with the time passed in. A binding lives ``ttl`` seconds
after its last use; bindings of an account that cools down or is disabled
are dropped by the pool. Bounded: past ``max_entries`` the least recently
used binding goes.
"""

from __future__ import annotations

from collections import OrderedDict

import attrs


@attrs.define
class Binding:
    email: str
    model: str
    expires: float  # pushed back in place on each use (a use per request: no new record for it)


class StickyBindings:
    def __init__(self, ttl: float, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._bindings: OrderedDict[tuple[str, str], Binding] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def __len__(self) -> int:
        return len(self._bindings)

    def get(self, session: str, model: str, now: float) -> str | None:
        """The bound account's email, or None (never bound, or expired)."""
        key = (session, model)
        binding = self._bindings.get(key)
        if binding is None:
            return None
        if binding.expires <= now:
            del self._bindings[key]
            return None
        return binding.email

    def bind(self, session: str, model: str, email: str, now: float) -> None:
        """Bind (or re-bind) and restart the TTL; a use of a binding is a bind too."""
        if not self.enabled:
            return
        key = (session, model)
        binding = self._bindings.get(key)
        if binding is not None and binding.email == email:
            binding.expires = now + self.ttl
        else:
            self._bindings[key] = Binding(email, model, now + self.ttl)
        self._bindings.move_to_end(key)
        while len(self._bindings) > self.max_entries:
            self._bindings.popitem(last=False)

    def drop_account(self, email: str, model: str | None = None) -> int:
        """Forget every binding to ``email`` (only those for ``model`` when given)."""
        gone = [k for k, b in self._bindings.items() if b.email == email and (model is None or b.model == model)]
        for key in gone:
            del self._bindings[key]
        return len(gone)

    def expire(self, now: float) -> int:
        gone = [k for k, b in self._bindings.items() if b.expires <= now]
        for key in gone:
            del self._bindings[key]
        return len(gone)

    def count_for(self, email: str, now: float) -> int:
        return sum(1 for b in self._bindings.values() if b.email == email and b.expires > now)
