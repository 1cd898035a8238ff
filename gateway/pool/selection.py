"""Selection policies: given the accounts that may serve, which one goes next.

Pure: the pool has already removed accounts that are disabled, cooling down
for the model, busy or already tried in this request; a policy only orders
what is left. ``model`` is None for calls that are not about one model.
"""

from __future__ import annotations

from typing import Sequence

from zope.interface import implementer

from gateway.interfaces import ISelectionPolicy
from gateway.pool.health import remaining
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


@implementer(ISelectionPolicy)
class QuotaAware:
    """The account with the most quota left for the model; ties go to the least recently used.

    Quota comes from the last ``fetchAvailableModels`` snapshot of each
    account; an account never polled counts as full (it has not been seen
    to run low), and a reset time that has passed means full again.
    """

    def choose(self, candidates: Sequence[AccountState], model: str, now: float) -> AccountState | None:
        if not candidates:
            return None

        def key(state: AccountState) -> tuple[float, float, str]:
            left = remaining(state.account, model, now)
            return (-(1.0 if left is None else left), state.last_used, state.email)

        return min(candidates, key=key)
