"""Shared fixtures. pytest-twisted, unlike trial, does not fail a test that
leaves timers behind: ``clean_reactor`` does (TWISTED.md, Testing)."""

from __future__ import annotations

from typing import Iterator

import pytest


@pytest.fixture(autouse=True)
def clean_reactor(request: pytest.FixtureRequest) -> Iterator[None]:
    from twisted.internet import reactor

    before = set(reactor.getDelayedCalls())
    yield
    left = [c for c in reactor.getDelayedCalls() if c not in before and c.active()]
    for call in left:
        call.cancel()
    if left and request.node.get_closest_marker("allow_timers") is None:
        pytest.fail(f"test left {len(left)} delayed call(s) behind: {[str(c) for c in left][:3]}")
