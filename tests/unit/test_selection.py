"""Each selection policy, on the candidates the pool offers."""

from __future__ import annotations

from gateway.pool.account import Account, ModelQuota
from gateway.pool.pool import AccountState
from gateway.pool.selection import LeastRecentlyUsed, QuotaAware, RoundRobin

NOW = 1000.0


def state(email: str, last_used: float = 0.0, **quota: tuple[float, float | None]) -> AccountState:
    snapshot = {m.replace("_", "-"): ModelQuota(*q) for m, q in quota.items()}
    return AccountState(Account(email, "rt", quota=snapshot), last_used=last_used)


def test_round_robin_goes_in_email_order_and_skips_what_is_not_offered() -> None:
    policy = RoundRobin()
    a, b, c = state("a@x"), state("b@x"), state("c@x")
    assert [policy.choose([a, b, c], "m", NOW).email for _ in range(4)] == ["a@x", "b@x", "c@x", "a@x"]  # type: ignore[union-attr]
    assert policy.choose([a, c], "m", NOW).email == "c@x"  # type: ignore[union-attr]
    assert policy.choose([], "m", NOW) is None


def test_lru_prefers_the_idlest_then_the_earliest_email() -> None:
    policy = LeastRecentlyUsed()
    assert policy.choose([state("a@x", 5), state("b@x", 1)], "m", NOW).email == "b@x"  # type: ignore[union-attr]
    assert policy.choose([state("b@x", 1), state("a@x", 1)], "m", NOW).email == "a@x"  # type: ignore[union-attr]


def test_quota_aware_prefers_the_most_remaining_quota_for_the_requested_model() -> None:
    policy = QuotaAware()
    a = state("a@x", 0, gemini_pro=(0.2, NOW + 100), gemini_flash=(0.9, NOW + 100))
    b = state("b@x", 50, gemini_pro=(0.8, NOW + 100), gemini_flash=(0.1, NOW + 100))
    assert policy.choose([a, b], "gemini-pro", NOW).email == "b@x"  # type: ignore[union-attr]
    assert policy.choose([a, b], "gemini-flash", NOW).email == "a@x"  # type: ignore[union-attr]


def test_quota_aware_breaks_ties_by_least_recently_used() -> None:
    policy = QuotaAware()
    a = state("a@x", 10, m=(0.5, NOW + 100))
    b = state("b@x", 5, m=(0.5, NOW + 100))
    assert policy.choose([a, b], "m", NOW).email == "b@x"  # type: ignore[union-attr]


def test_quota_aware_counts_unknown_and_reset_quota_as_full() -> None:
    policy = QuotaAware()
    polled = state("a@x", 0, m=(0.7, NOW + 100))
    unknown = state("b@x", 5)
    assert policy.choose([polled, unknown], "m", NOW).email == "b@x"  # type: ignore[union-attr]
    reset_passed = state("c@x", 9, m=(0.0, NOW - 1))
    assert policy.choose([polled, reset_passed], "m", NOW).email == "c@x"  # type: ignore[union-attr]


def test_the_default_selection_is_quota_aware_and_all_three_are_plugins() -> None:
    from gateway.config import Settings
    from gateway.interfaces import ISelectionPolicyFactory
    from gateway.plugin_loading import available, build

    assert Settings().accounts.selection == "quota-aware"
    assert {"round-robin", "least-recently-used", "quota-aware"} <= set(available(ISelectionPolicyFactory))
    assert isinstance(build(ISelectionPolicyFactory, "quota-aware", "accounts.selection", Settings()), QuotaAware)
