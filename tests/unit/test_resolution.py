"""The resolver service over a catalogue source: a vanished model is re-resolved once, refetches are spaced."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from gateway.plugins.builtin import TableMapper
from gateway.protocol.catalogue import catalogue_from_answer
from gateway.protocol.errors import GatewayError
from gateway.resolution import ModelResolver
from gateway.upstream.quota import FORCED_REFRESH_SPACING, PoolCatalogue


class Source:
    """A catalogue that changes when invalidated (as upstream did)."""

    def __init__(self, *generations: list[str]) -> None:
        self.generations = [catalogue_from_answer({"models": {i: {} for i in ids}}) for ids in generations]
        self.invalidated = 0

    async def snapshot(self) -> Any:
        return self.generations[min(self.invalidated, len(self.generations) - 1)]

    def current(self) -> Any:
        return self.generations[0]

    def invalidate(self) -> None:
        self.invalidated += 1


@pytest_twisted.ensureDeferred
async def test_a_404_for_a_vanished_model_refreshes_and_retries_with_its_replacement() -> None:
    source = Source(["gemini-3.7-flash-high", "gemini-3.6-flash-high"], ["gemini-3.6-flash-high"])
    resolver = ModelResolver(source, TableMapper({}))
    tried: list[str] = []

    async def call(model: str) -> str:
        tried.append(model)
        if model == "gemini-3.7-flash-high":
            raise GatewayError(404, "Requested entity was not found.")
        return model

    assert await resolver.with_model("gemini-2.5-flash", call) == "gemini-3.6-flash-high"
    assert tried == ["gemini-3.7-flash-high", "gemini-3.6-flash-high"] and source.invalidated == 1
    assert resolver.resolve_now("gpt-4o") == "gemini-3.7-flash-high"  # the last snapshot, no waiting


@pytest_twisted.ensureDeferred
async def test_a_404_that_resolves_to_the_same_model_is_the_answer() -> None:
    source = Source(["gemini-3-flash"])
    resolver = ModelResolver(source, TableMapper({}))

    async def call(model: str) -> str:
        raise GatewayError(404, "gone")

    with pytest.raises(GatewayError) as caught:
        await resolver.with_model("gemini-3-flash", call)
    assert caught.value.message == "gone"


def test_forced_refreshes_are_spaced() -> None:
    now = [1000.0]
    catalogue = PoolCatalogue(poller=None, forwarder=None, clock=lambda: now[0], ttl=300)
    catalogue.invalidate()
    assert catalogue._force
    catalogue._force = False
    catalogue.invalidate()
    assert not catalogue._force  # too soon
    now[0] += FORCED_REFRESH_SPACING
    catalogue.invalidate()
    assert catalogue._force
