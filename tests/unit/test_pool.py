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


# -- cooldowns, busy accounts, stickiness, reloads --------------------------------

from gateway.pool.account import ModelQuota  # noqa: E402
from gateway.pool.selection import QuotaAware  # noqa: E402


def clock_pool(n: int = 2, policy: object | None = None, **kwargs: object) -> tuple[AccountPool, MemoryBackend, list[float]]:
    backend = MemoryBackend([Account(f"u{i}@x.com", f"rt{i}") for i in range(n)])
    now = [100.0]
    return AccountPool(backend, policy or LeastRecentlyUsed(), lambda: now[0], **kwargs), backend, now  # type: ignore[arg-type]


def test_a_cooling_account_is_skipped_until_its_cooldown_ends_and_it_is_stored() -> None:
    pool, backend, now = clock_pool(2)
    pool.cool_account("u0@x.com", 130.0, "rate limited")
    assert backend.accounts[0].cooldown_until == 130.0
    assert {pool.choose("m").email for _ in range(3)} == {"u1@x.com"}  # type: ignore[union-attr]
    now[0] = 131.0
    assert "u0@x.com" in {pool.choose("m").email for _ in range(2)}  # type: ignore[union-attr]


def test_a_model_cooldown_leaves_the_account_serving_other_models() -> None:
    pool, _, _ = clock_pool(1)
    pool.cool_model("u0@x.com", "pro", 500.0, "quota exhausted")
    assert pool.choose("pro") is None
    assert pool.choose("flash").email == "u0@x.com"  # type: ignore[union-attr]
    assert pool.choose(None).email == "u0@x.com"  # type: ignore[union-attr]


def test_availability_says_when_the_first_account_comes_back() -> None:
    pool, _, _ = clock_pool(3)
    pool.cool_model("u0@x.com", "pro", 500.0, "q")
    pool.cool_account("u1@x.com", 300.0, "r")
    pool.disable("u2@x.com", "dead")
    available = pool.availability("pro")
    assert (available.usable_now, available.disabled, available.earliest) == (0, 1, 300.0)
    pick = pool.acquire("pro")
    assert pick.account is None and not pick.busy and pick.earliest == 300.0


def test_max_in_flight_makes_accounts_busy_until_released_and_listeners_hear_it() -> None:
    pool, _, _ = clock_pool(1, max_in_flight=2)
    assert pool.acquire("m").account is not None
    assert pool.acquire("m").account is not None
    busy = pool.acquire("m")
    assert busy.account is None and busy.busy
    heard: list[int] = []
    pool.on_release(lambda: heard.append(1))
    pool.release("u0@x.com")
    assert heard == [1] and pool.acquire("m").account is not None


def test_a_session_keeps_its_account_until_it_cools_down() -> None:
    pool, _, now = clock_pool(3, session_ttl=600)
    first = pool.choose("m", session="conv")
    assert first is not None
    for _ in range(5):
        now[0] += 1
        assert pool.choose("m", session="conv").email == first.email  # type: ignore[union-attr]
    pool.cool_account(first.email, now[0] + 60, "rate limited")
    moved = pool.choose("m", session="conv")
    assert moved is not None and moved.email != first.email
    now[0] += 120  # the first account is back, but the conversation stays where it moved
    assert pool.choose("m", session="conv").email == moved.email  # type: ignore[union-attr]


def test_a_session_binding_expires_after_its_ttl() -> None:
    pool, _, now = clock_pool(2, session_ttl=10)
    first = pool.choose("m", session="conv")
    assert first is not None
    now[0] += 11  # expired: LRU picks the other (idler) account
    assert pool.choose("m", session="conv").email != first.email  # type: ignore[union-attr]


def test_an_excluded_bound_account_is_not_reused_within_the_request() -> None:
    pool, _, _ = clock_pool(2, session_ttl=600)
    first = pool.choose("m", session="conv")
    assert first is not None
    assert pool.choose("m", exclude=[first.email], session="conv").email != first.email  # type: ignore[union-attr]


def test_a_bound_account_busy_or_excluded_keeps_its_binding() -> None:
    pool, _, now = clock_pool(2, session_ttl=600, max_in_flight=1)
    first = pool.acquire("m", session="conv").account
    assert first is not None
    other = pool.acquire("m", session="conv").account  # the bound one is at its limit
    assert other is not None and other.email != first.email
    pool.release(first.email)
    pool.release(other.email)
    now[0] += 1
    assert pool.choose("m", exclude={first.email}, session="conv").email == other.email  # type: ignore[union-attr]
    now[0] += 1
    assert pool.acquire("m", session="conv").account == first  # still the conversation's account


def test_quota_snapshots_steer_quota_aware_selection() -> None:
    pool, _, _ = clock_pool(2, policy=QuotaAware())
    pool.record_quota("u0@x.com", {"m": ModelQuota(0.1, 1e12)})
    pool.record_quota("u1@x.com", {"m": ModelQuota(0.9, 1e12)})
    assert {pool.choose("m").email for _ in range(3)} == {"u1@x.com"}  # type: ignore[union-attr]


def test_maybe_reload_picks_up_store_changes(tmp_path: object) -> None:
    import json
    from pathlib import Path

    from gateway.pool.json_store import JSONAccountStore

    path = Path(str(tmp_path)) / "accounts.json"
    path.write_text(json.dumps({"accounts": [{"email": "a@x.com", "refresh_token": "r"}]}))
    store = JSONAccountStore(str(path))
    pool = AccountPool(store, LeastRecentlyUsed(), lambda: 100.0)
    assert pool.maybe_reload() is False
    pool.cool_account("a@x.com", 200.0, "own write")
    assert pool.maybe_reload() is False  # our own write is not news
    other = JSONAccountStore(str(path))
    other.put(Account("b@x.com", "r2"))
    assert pool.maybe_reload() is True
    assert {s.email for s in pool.states()} == {"a@x.com", "b@x.com"}
    assert pool.get("a@x.com").cooldown_until == 200.0  # type: ignore[union-attr]
    path.write_text("{broken")
    assert pool.maybe_reload() is False and "not valid JSON" in (pool.store_error or "")
    assert pool.choose("m") is not None  # keeps serving from memory


class ChangingBackend(MemoryBackend):
    """A backend another writer changes: ``changed`` says so once per outside edit."""

    def __init__(self, accounts: list[Account]) -> None:
        super().__init__(accounts)
        self.asked = 0
        self.edited = False

    def changed(self) -> bool:
        self.asked += 1
        edited, self.edited = self.edited, False
        return edited


def test_the_request_path_asks_the_store_at_most_once_per_check_interval() -> None:
    backend = ChangingBackend([Account("u0@x.com", "rt0")])
    now = [100.0]
    pool = AccountPool(backend, RoundRobin(), lambda: now[0], check_interval=1.0)
    assert pool.maybe_reload(throttled=True) is False and backend.asked == 1
    backend.accounts.append(Account("u1@x.com", "rt1"))
    backend.edited = True
    now[0] += 0.5
    assert pool.maybe_reload(throttled=True) is False and backend.asked == 1  # not asked again yet
    assert len(pool.states()) == 1
    now[0] += 0.5
    assert pool.maybe_reload(throttled=True) is True and len(pool.states()) == 2  # a second after the last look
    now[0] -= 30  # the clock was set back: the next request looks again
    pool.maybe_reload(throttled=True)
    assert backend.asked == 3


def test_unthrottled_checks_and_interval_zero_ask_every_time() -> None:
    backend = ChangingBackend([Account("u0@x.com", "rt0")])
    pool = AccountPool(backend, RoundRobin(), lambda: 100.0, check_interval=1.0)
    pool.maybe_reload(throttled=True)
    pool.maybe_reload()  # the admin view, the quota poller
    assert backend.asked == 2
    every = ChangingBackend([Account("u0@x.com", "rt0")])
    pool = AccountPool(every, RoundRobin(), lambda: 100.0)
    for _ in range(3):
        pool.maybe_reload(throttled=True)
    assert every.asked == 3
