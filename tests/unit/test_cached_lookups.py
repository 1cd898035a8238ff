"""The request path's synchronous look-ups agree with the Deferred ones they stand in for."""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import MemoryReactorClock

from gateway.pool.account import Account
from gateway.pool.pool import AccountPool
from gateway.pool.selection import RoundRobin
from gateway.upstream.oauth import AccessTokens
from gateway.upstream.onboarding import ProjectResolver
from tests.unit.test_pool import MemoryBackend


def _pool(*accounts: Account) -> AccountPool:
    return AccountPool(MemoryBackend(list(accounts)), RoundRobin(), lambda: 1000.0)


def test_ready_token_only_when_token_for_would_not_refresh() -> None:
    pool = _pool(
        Account("fresh@x.com", "rt", access_token="at-1", expiry=5000.0),
        Account("expiring@x.com", "rt", access_token="at-2", expiry=1100.0),
        Account("none@x.com", "rt"),
    )
    tokens = AccessTokens(pool, endpoint=None, clock=lambda: 1000.0, margin=300.0)  # type: ignore[arg-type]
    assert tokens.ready("fresh@x.com") == "at-1"
    got: list[Any] = []
    tokens.token_for("fresh@x.com").addCallback(got.append)
    assert got == ["at-1"]
    assert tokens.ready("expiring@x.com") is None  # within the margin: token_for refreshes
    assert tokens.ready("none@x.com") is None
    assert tokens.ready("gone@x.com") is None


def test_ready_token_waits_for_a_refresh_in_flight() -> None:
    pool = _pool(Account("a@x.com", "rt", access_token="at-1", expiry=5000.0))
    tokens = AccessTokens(pool, endpoint=None, clock=lambda: 1000.0, margin=300.0)  # type: ignore[arg-type]
    tokens._refreshing._running["a@x.com"] = object()  # type: ignore[assignment]
    assert tokens.ready("a@x.com") is None


def test_known_project_is_the_stored_one() -> None:
    pool = _pool(Account("a@x.com", "rt", project_id="proj-a"), Account("b@x.com", "rt"))
    projects = ProjectResolver(pool, client=None, reactor=MemoryReactorClock())  # type: ignore[arg-type]
    assert projects.known("a@x.com") == "proj-a"
    got: list[Any] = []
    projects.project_for("a@x.com", "token").addCallback(got.append)
    assert got == ["proj-a"]
    assert not projects.known("b@x.com")  # project_for discovers it
    assert projects.known("gone@x.com") is None
