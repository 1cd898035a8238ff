"""The pool: no account that failed a request is chosen again for it; disabled ones never are."""

from __future__ import annotations

from gateway.pool.account import Account
from gateway.pool.pool import AccountPool, AccountState
from gateway.pool.selection import LeastRecentlyUsed, RoundRobin


class MemoryBackend:
    def __init__(self, accounts: list[Account]) -> None:
        self.accounts = list(accounts)
        self.puts = 0

    def load(self) -> list[Account]:
        return list(self.accounts)

    def save(self, accounts: list[Account]) -> None:
        self.accounts = list(accounts)

    def put(self, account: Account) -> None:
        self.puts += 1
        self.accounts = [account if a.email == account.email else a for a in self.accounts]

    def remove(self, email: str) -> bool:
        return False

    def describe(self) -> str:
        return "memory"


def make_pool(n: int = 3, policy: object | None = None) -> tuple[AccountPool, MemoryBackend]:
    backend = MemoryBackend([Account(f"u{i}@x.com", f"rt{i}") for i in range(n)])
    now = [100.0]
    return AccountPool(backend, policy or RoundRobin(), lambda: now[0]), backend


def test_round_robin_cycles_in_order() -> None:
    pool, _ = make_pool(3)
    picks = [pool.choose("m").email for _ in range(4)]  # type: ignore[union-attr]
    assert picks == ["u0@x.com", "u1@x.com", "u2@x.com", "u0@x.com"]


def test_excluded_accounts_are_never_chosen() -> None:
    pool, _ = make_pool(3)
    tried: list[str] = []
    for _ in range(3):
        account = pool.choose("m", exclude=tried)
        assert account is not None and account.email not in tried
        tried.append(account.email)
    assert pool.choose("m", exclude=tried) is None


def test_disabled_accounts_are_skipped_and_the_reason_is_stored() -> None:
    pool, backend = make_pool(2)
    pool.disable("u0@x.com", "invalid_grant")
    assert backend.accounts[0].disabled and backend.accounts[0].disabled_reason == "invalid_grant"
    assert {pool.choose("m").email for _ in range(3)} == {"u1@x.com"}  # type: ignore[union-attr]


def test_reload_keeps_runtime_state() -> None:
    pool, backend = make_pool(2)
    pool.succeeded("u0@x.com")
    backend.accounts.append(Account("new@x.com", "rt"))
    pool.reload()
    served = {s.email: s.served for s in pool.states()}
    assert served == {"u0@x.com": 1, "u1@x.com": 0, "new@x.com": 0}


def test_lru_prefers_the_idlest() -> None:
    states = [AccountState(Account("a@x.com", "r"), last_used=5), AccountState(Account("b@x.com", "r"), last_used=1)]
    assert LeastRecentlyUsed().choose(states, "m", 10).email == "b@x.com"  # type: ignore[union-attr]
