"""Selection policies: given the accounts that may serve, which one goes next."""

from __future__ import annotations

from typing import Sequence

from zope.interface import implementer

from gateway.interfaces import ISelectionPolicy
from gateway.pool.pool import AccountState


@implementer(ISelectionPolicy)
class RoundRobin:
    """Each account in turn, in store order, skipping those not offered."""

    def __init__(self) -> None:
        self._last: str | None = None

    def choose(self, candidates: Sequence[AccountState], model: str, now: float) -> AccountState | None:
        if not candidates:
            return None
        ordered = sorted(candidates, key=lambda s: s.email)
        if self._last is not None:
            for state in ordered:
                if state.email > self._last:
                    self._last = state.email
                    return state
        self._last = ordered[0].email
        return ordered[0]


@implementer(ISelectionPolicy)
class LeastRecentlyUsed:
    """The account idle the longest; ties go to the earliest email."""

    def choose(self, candidates: Sequence[AccountState], model: str, now: float) -> AccountState | None:
        if not candidates:
            return None
        return min(candidates, key=lambda s: (s.last_used, s.email))
