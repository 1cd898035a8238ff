"""Sticky sessions: a conversation keeps its account while the binding lives."""

from __future__ import annotations

from gateway.pool.sessions import StickyBindings


def test_a_binding_lives_ttl_seconds_after_its_last_use() -> None:
    sticky = StickyBindings(ttl=60)
    sticky.bind("conv", "m", "a@x.com", now=0)
    assert sticky.get("conv", "m", now=59.9) == "a@x.com"
    sticky.bind("conv", "m", "a@x.com", now=59.9)  # a use restarts the TTL
    assert sticky.get("conv", "m", now=119) == "a@x.com"
    assert sticky.get("conv", "m", now=120) is None
    assert len(sticky) == 0


def test_bindings_are_per_model() -> None:
    sticky = StickyBindings(ttl=60)
    sticky.bind("conv", "pro", "a@x.com", now=0)
    assert sticky.get("conv", "flash", now=1) is None


def test_dropping_an_account_forgets_its_bindings_or_only_one_models() -> None:
    sticky = StickyBindings(ttl=60)
    sticky.bind("c1", "pro", "a@x.com", 0)
    sticky.bind("c2", "flash", "a@x.com", 0)
    sticky.bind("c3", "pro", "b@x.com", 0)
    assert sticky.drop_account("a@x.com", "pro") == 1
    assert sticky.get("c2", "flash", 1) == "a@x.com"
    assert sticky.drop_account("a@x.com") == 1
    assert sticky.get("c3", "pro", 1) == "b@x.com" and sticky.count_for("b@x.com", 1) == 1


def test_ttl_zero_turns_stickiness_off() -> None:
    sticky = StickyBindings(ttl=0)
    sticky.bind("conv", "m", "a@x.com", 0)
    assert not sticky.enabled and sticky.get("conv", "m", 0) is None


def test_the_table_is_bounded_and_expire_sweeps() -> None:
    sticky = StickyBindings(ttl=10, max_entries=3)
    for i in range(5):
        sticky.bind(f"c{i}", "m", "a@x.com", now=i)
    assert len(sticky) == 3 and sticky.get("c0", "m", 5) is None and sticky.get("c4", "m", 5) == "a@x.com"
    assert sticky.expire(now=100) == 3
