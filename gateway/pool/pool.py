"""The account pool: which accounts may serve a request, and what happened to them.

Pure bookkeeping over a backend and a clock: no Twisted, no network. The
request path asks ``acquire`` once per attempt (never an account that already
failed this request, never one cooling down for the model, never one at its
in-flight limit), releases the account when the answer is done, and reports
what it learned; every change to a record is saved through the backend at
once, re-read under the backend's lock so another process's update survives.
"""

from __future__ import annotations

import math
from typing import AbstractSet, Callable, Iterable

import attrs

from gateway.interfaces import IAccountBackend, ISelectionPolicy
from gateway.pool import health
from gateway.pool.account import Account, ModelQuota
from gateway.pool.json_store import StoreError
from gateway.pool.sessions import StickyBindings


@attrs.define
class AccountState:
    """An account plus what the pool learned about it while running (not stored)."""

    account: Account
    last_used: float = 0.0
    served: int = 0
    failures: int = 0
    last_error: str | None = None
    last_error_at: float = 0.0
    in_flight: int = 0

    @property
    def email(self) -> str:
        return self.account.email


@attrs.frozen
class Pick:
    """The outcome of ``acquire``: an account (now in flight), or why there is none.

    ``busy``: accounts could serve but all are at ``max_in_flight`` (wait and
    ask again). Otherwise none can serve ``model`` now; ``earliest`` is when
    the first cooling one comes back (None: none ever will without an operator).
    """

    account: Account | None
    busy: bool = False
    earliest: float | None = None


@attrs.frozen
class Availability:
    total: int
    disabled: int
    usable_now: int
    earliest: float | None

    @property
    def enabled(self) -> int:
        return self.total - self.disabled


class AccountPool:
    #: ``[upstream] use_credits = "when_quota_exhausted"``: an exhausted-quota snapshot does not
    #: keep an account with spendable AI credits from being chosen (set by assembly).
    spend_credits: bool = False

    def __init__(
        self,
        backend: IAccountBackend,
        policy: ISelectionPolicy,
        clock: Callable[[], float],
        *,
        session_ttl: float = 0.0,
        max_in_flight: int = 0,
        check_interval: float = 0.0,
    ) -> None:
        self.backend = backend
        self.policy = policy
        self.clock = clock
        self.max_in_flight = max_in_flight
        #: ``maybe_reload(throttled=True)`` asks the backend at most once per this many seconds
        #: (``[accounts] store_check_interval``); 0: every time.
        self.check_interval = check_interval
        self._checked = -math.inf
        self.sessions = StickyBindings(session_ttl)
        self._states: dict[str, AccountState] = {}
        self._release_listeners: list[Callable[[], None]] = []
        #: Told of each cooldown learned here (email, model or None, until, reason): the shared state's seam.
        self.learned: list[Callable[[str, str | None, float, str], None]] = []
        self.reloads = 0
        #: Why the store could not be read or written lately (the pool then runs from memory).
        self.store_error: str | None = None
        self.reload()

    # -- reading --

    def reload(self) -> None:
        """Re-read the backend, keeping runtime state of accounts that remain."""
        self._absorb(self.backend.load())
        self.reloads += 1

    def maybe_reload(self, throttled: bool = False) -> bool:
        """Reload when the backend says its data changed under us (another process, the CLI).

        ``throttled`` (the request path): the backend is asked at most once per
        ``check_interval`` seconds, so another writer's change is seen up to
        that much later; the admin view and the quota poller ask every time.
        """
        if throttled and self.check_interval > 0:
            now = self.clock()
            if self._checked <= now < self._checked + self.check_interval:  # a clock set back: ask again
                return False
            self._checked = now
        changed = getattr(self.backend, "changed", None)
        if changed is None or not changed():
            return False
        try:
            self.reload()
        except (StoreError, OSError) as e:  # a broken edit: keep serving what we know
            self.store_error = str(e)
            return False
        self.store_error = None
        return True

    def _absorb(self, fresh: Iterable[Account]) -> None:
        states = {}
        for account in fresh:
            state = self._states.get(account.email) or AccountState(account)
            state.account = account
            states[account.email] = state
            if account.disabled:
                self.sessions.drop_account(account.email)
        for email in set(self._states) - set(states):
            self.sessions.drop_account(email)
        self._states = states

    def states(self) -> list[AccountState]:
        return list(self._states.values())

    def state(self, email: str) -> AccountState | None:
        return self._states.get(email)

    def get(self, email: str) -> Account | None:
        state = self._states.get(email)
        return state.account if state else None

    def usable(self) -> list[AccountState]:
        """Accounts not disabled (cooling ones included)."""
        return [s for s in self._states.values() if not s.account.disabled]

    def availability(self, model: str | None) -> Availability:
        """How many accounts could serve ``model`` now, and when the first cooling one returns."""
        now = self.clock()
        disabled = usable_now = 0
        earliest = math.inf
        for state in self._states.values():
            until = health.blocked_until(state.account, model, now, self.spend_credits)
            if until == health.FOREVER:
                disabled += 1
            elif until == 0.0:
                usable_now += 1
            else:
                earliest = min(earliest, until)
        return Availability(len(self._states), disabled, usable_now, None if earliest == math.inf else earliest)

    # -- choosing --

    def choose(self, model: str | None, exclude: Iterable[str] = (), session: str | None = None) -> Account | None:
        """An account for one attempt at ``model``, never one in ``exclude`` (not marked in flight)."""
        return self._pick(model, _as_set(exclude), session, lease=False).account

    def acquire(self, model: str | None, exclude: Iterable[str] = (), session: str | None = None) -> Pick:
        """Like ``choose``, and the account is in flight until ``release``."""
        return self._pick(model, _as_set(exclude), session, lease=True)

    def _can_serve(self, state: AccountState, model: str | None, now: float, excluded: AbstractSet[str]) -> bool:
        """Whether ``state`` may take this attempt now: usable for ``model``, not excluded, below its limit."""
        return (
            health.blocked_until(state.account, model, now, self.spend_credits) == 0.0
            and state.account.email not in excluded
            and (not self.max_in_flight or state.in_flight < self.max_in_flight)
        )

    def _pick(self, model: str | None, excluded: AbstractSet[str], session: str | None, lease: bool) -> Pick:
        now = self.clock()
        sticky = session is not None and self.sessions.enabled
        bound = self.sessions.get(session, model or "", now) if sticky and session is not None else None
        if bound is not None:
            # A conversation's account that can serve: the same choice as below, without the scan.
            state = self._states.get(bound)
            if state is not None and self._can_serve(state, model, now, excluded):
                return self._take(state, session, model, now, lease)
        free: list[AccountState] = []
        busy = False
        earliest = math.inf
        for state in self._states.values():
            until = health.blocked_until(state.account, model, now, self.spend_credits)
            if until == 0.0:
                if state.account.email in excluded:
                    continue
                if self.max_in_flight and state.in_flight >= self.max_in_flight:
                    busy = True
                    continue
                free.append(state)
            elif until != health.FOREVER:
                earliest = min(earliest, until)
        if not free:
            if busy:
                return Pick(None, busy=True)
            return Pick(None, earliest=None if earliest == math.inf else earliest)
        picked = self.policy.choose(free, model, now)
        if picked is None:
            return Pick(None)
        # A binding to an account that is still healthy (only excluded or busy now) is kept.
        if bound is not None:
            state = self._states.get(bound)
            if state is not None and health.blocked_until(state.account, model, now, self.spend_credits) == 0.0:
                session = None
        return self._take(picked, session if sticky else None, model, now, lease)

    def _take(self, picked: AccountState, bind: str | None, model: str | None, now: float, lease: bool) -> Pick:
        """``picked`` serves this attempt; ``bind``: the session it now belongs to (TTL restarted)."""
        if bind is not None:
            self.sessions.bind(bind, model or "", picked.account.email, now)
        picked.last_used = now
        if lease:
            picked.in_flight += 1
        return Pick(picked.account)

    def release(self, email: str) -> None:
        """The account's answer is done (or abandoned): a waiting request may use it."""
        state = self._states.get(email)
        if state is not None and state.in_flight > 0:
            state.in_flight -= 1
        if self._release_listeners:
            listeners, self._release_listeners = self._release_listeners, []
            for listener in listeners:
                listener()

    def on_release(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` once, at the next release; returns a function that forgets it."""
        self._release_listeners.append(listener)

        def forget() -> None:
            if listener in self._release_listeners:
                self._release_listeners.remove(listener)

        return forget

    # -- changing records --

    def modify(self, email: str, change: Callable[[Account], Account]) -> Account | None:
        """Apply ``change`` to the stored record (re-read under the backend's lock) and use the result."""
        update = getattr(self.backend, "update", None)
        try:
            if update is not None:
                self._absorb(update(email, change))
                self.store_error = None
                return self.get(email)
            current = self.get(email)
            if current is None:
                return None
            changed = change(current)
            self.backend.put(changed)
        except (StoreError, OSError) as e:
            # The store cannot be written now: what was learned still holds in memory.
            self.store_error = str(e)
            current = self.get(email)
            if current is None:
                return None
            changed = change(current)
        self._states[email].account = changed
        return changed

    def update(self, account: Account) -> None:
        """Store a whole record as given (prefer ``modify``, which keeps others' updates)."""
        self.backend.put(account)
        self.reload()

    def disable(self, email: str, reason: str, validation_url: str | None = None) -> None:
        account = self.get(email)
        if account is None or account.disabled:
            return
        self.modify(email, lambda a: a if a.disabled else health.disable(a, reason, validation_url))
        self.sessions.drop_account(email)

    def enable(self, email: str) -> None:
        self.modify(email, health.enable)

    def cool_account(self, email: str, until: float, reason: str, validation_url: str | None = None) -> None:
        now = self.clock()
        self.modify(email, lambda a: health.cool_account(a, until, reason, now, validation_url))
        self.sessions.drop_account(email)
        for listener in self.learned:
            listener(email, None, until, reason)

    def cool_model(self, email: str, model: str, until: float, reason: str) -> None:
        now = self.clock()
        self.modify(email, lambda a: health.cool_model(a, model, until, reason, now))
        self.sessions.drop_account(email, model)
        for listener in self.learned:
            listener(email, model, until, reason)

    def record_quota(self, email: str, snapshot: dict[str, ModelQuota]) -> None:
        now = self.clock()
        self.modify(email, lambda a: health.with_quota(a, snapshot, now))

    # -- runtime counters --

    def succeeded(self, email: str) -> None:
        state = self._states.get(email)
        if state is not None:
            state.served += 1

    def failed(self, email: str, reason: str) -> None:
        state = self._states.get(email)
        if state is not None:
            state.failures += 1
            state.last_error = reason
            state.last_error_at = self.clock()


def _as_set(items: Iterable[str]) -> AbstractSet[str]:
    """``items`` for membership tests; a set the caller passed is read as it is (``_pick`` never changes it)."""
    return items if isinstance(items, (set, frozenset)) else set(items)
