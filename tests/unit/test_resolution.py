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


class Poller:
    """Every account's fetchAvailableModels answer: one per call, as the pool's poller gives them."""

    def __init__(self, *generations: list[str]) -> None:
        self.generations = list(generations)
        self.calls = 0

    async def answers(self, max_age: float) -> dict[str, Any]:
        ids = self.generations[min(self.calls, len(self.generations) - 1)]
        self.calls += 1
        return {"a@example.com": {"models": {i: {} for i in ids}}}


class CountingMapper:
    def __init__(self, table: dict[str, str]) -> None:
        self.table, self.asked = table, 0

    def map(self, requested: str) -> str:
        self.asked += 1
        return self.table.get(requested, requested)


@pytest_twisted.ensureDeferred
async def test_fresh_snapshots_resolve_without_a_fetch_and_names_follow_a_new_catalogue() -> None:
    now = [1000.0]
    poller = Poller(["gemini-3-flash", "gemini-3-pro-high"], ["gemini-3.5-flash"])
    catalogue = PoolCatalogue(poller=poller, forwarder=None, clock=lambda: now[0], ttl=300)
    assert not catalogue.fresh()
    mapper = CountingMapper({"my-flash": "gemini-3-pro-high"})
    resolver = ModelResolver(catalogue, mapper)
    assert await resolver.resolve("gemini-3-flash") == "gemini-3-flash"
    assert catalogue.fresh() and poller.calls == 1
    for _ in range(3):  # served ids: the same answer, without fetching or asking the mapper again
        assert await resolver.resolve("models/gemini-3-flash") == "gemini-3-flash"
        assert await resolver.resolve("gemini-3-flash") == "gemini-3-flash"
    assert poller.calls == 1 and mapper.asked == 0
    assert await resolver.resolve("my-flash") == "gemini-3-pro-high"  # mappings are asked every time
    assert await resolver.resolve("my-flash") == "gemini-3-pro-high" and mapper.asked == 2
    mapper.table["my-flash"] = "gemini-3-flash"  # a SIGHUP'd mapping applies at once
    assert await resolver.resolve("my-flash") == "gemini-3-flash"
    now[0] += 301  # the cache expires: the next name is resolved in the new catalogue
    assert not catalogue.fresh()
    assert await resolver.resolve("gemini-3-flash") == "gemini-3.5-flash"  # an alias now
    assert poller.calls == 2
    with pytest.raises(GatewayError):
        await resolver.resolve("llama-3-70b")  # no alias: the 404, never remembered
