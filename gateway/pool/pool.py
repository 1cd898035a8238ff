"""The account pool: which accounts may serve a request, and what happened to them.

Pure bookkeeping over a backend and a clock: no Twisted, no network. The
request path asks ``choose`` once per attempt (never an account that already
failed this request) and reports back; every change to a record is saved
through the backend at once.
"""

from __future__ import annotations

from typing import Callable, Iterable

import attrs

from gateway.interfaces import IAccountBackend, ISelectionPolicy
from gateway.pool.account import Account


@attrs.define
class AccountState:
    """An account plus what the pool learned about it while running."""

    account: Account
    last_used: float = 0.0
    served: int = 0
    failures: int = 0
    last_error: str | None = None

    @property
    def email(self) -> str:
        return self.account.email


class AccountPool:
    def __init__(self, backend: IAccountBackend, policy: ISelectionPolicy, clock: Callable[[], float]) -> None:
        self.backend = backend
        self.policy = policy
        self.clock = clock
        self._states: dict[str, AccountState] = {}
        self.reload()

    # -- reading --

    def reload(self) -> None:
        """Re-read the backend, keeping runtime state of accounts that remain."""
        fresh = self.backend.load()
        states = {}
        for account in fresh:
            state = self._states.get(account.email) or AccountState(account)
            state.account = account
            states[account.email] = state
        self._states = states

    def states(self) -> list[AccountState]:
        return list(self._states.values())

    def get(self, email: str) -> Account | None:
        state = self._states.get(email)
        return state.account if state else None

    def usable(self) -> list[AccountState]:
        return [s for s in self._states.values() if not s.account.disabled]

    # -- choosing --

    def choose(self, model: str, exclude: Iterable[str] = ()) -> Account | None:
        """An account for one attempt at ``model``, never one in ``exclude``."""
        excluded = set(exclude)
        candidates = [s for s in self.usable() if s.email not in excluded]
        if not candidates:
            return None
        picked = self.policy.choose(candidates, model, self.clock())
        if picked is None:
            return None
        picked.last_used = self.clock()
        return picked.account

    # -- reporting --

    def update(self, account: Account) -> None:
        """Store a changed record (token, project, state) and use it from now on."""
        self.backend.put(account)
        state = self._states.get(account.email)
        if state is None:
            self._states[account.email] = AccountState(account)
        else:
            state.account = account

    def disable(self, email: str, reason: str) -> None:
        account = self.get(email)
        if account is not None and not account.disabled:
            self.update(attrs.evolve(account, disabled=True, disabled_reason=reason))

    def succeeded(self, email: str) -> None:
        state = self._states.get(email)
        if state is not None:
            state.served += 1

    def failed(self, email: str, reason: str) -> None:
        state = self._states.get(email)
        if state is not None:
            state.failures += 1
            state.last_error = reason
