"""The one model-resolution entry point every door calls, over the live catalogue.

Thin: fetches (or reuses) the pool's catalogue snapshot and hands it, with the
operator's mapper, to the pure ``gateway.protocol.resolve``. Doors ``await
resolver.resolve(name)``; code that cannot wait calls ``resolve_now`` (the last
snapshot, no I/O). A name that is not served raises the 404 ``GatewayError``
each door shapes for itself.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, TypeVar

from gateway.protocol.catalogue import Catalogue
from gateway.protocol.errors import GatewayError
from gateway.protocol.resolve import Resolved, resolve

T = TypeVar("T")


#: Names remembered per snapshot (a bound: the names are the clients' to choose).
_MAX_REMEMBERED = 1024
_STALE = object()


class ModelResolver:
    def __init__(self, catalogue: Any, mapper: Any) -> None:
        #: A ``gateway.upstream.quota.PoolCatalogue`` (``snapshot()``, ``current()``, optionally ``fresh()``).
        self.catalogue = catalogue
        #: The operator's IModelMapper (swapped on SIGHUP behind a holder).
        self.mapper = mapper
        #: Names the snapshot ``_remembered_for`` serves as such (exact or deprecated id): the same
        #: answer until the snapshot changes, whatever the mapper says (it is only asked after).
        self._remembered: dict[str, str] = {}
        self._remembered_for: object = None

    def _fresh(self) -> Catalogue | None | object:
        """The snapshot when the catalogue says it is fresh (no waiting, no coroutine), else ``_STALE``."""
        fresh = getattr(self.catalogue, "fresh", None)
        return self.catalogue.current() if fresh is not None and fresh() else _STALE

    async def _snapshot(self) -> Catalogue | None:
        snapshot = self._fresh()
        return await self.catalogue.snapshot() if snapshot is _STALE else snapshot  # type: ignore[return-value]

    async def resolved(self, requested: str) -> Resolved:
        return resolve(requested, await self._snapshot(), self.mapper.map)

    async def resolve(self, requested: str) -> str:
        """The upstream id for ``requested``, or the 404 naming it and the ids served."""
        snapshot = self._fresh()
        if snapshot is _STALE:
            snapshot = await self.catalogue.snapshot()
        if snapshot is not self._remembered_for:
            self._remembered, self._remembered_for = {}, snapshot
        model = self._remembered.get(requested)
        if model is None:
            found = resolve(requested, snapshot, self.mapper.map)  # type: ignore[arg-type]
            model = found.model
            if found.how in ("exact", "deprecated") and len(self._remembered) < _MAX_REMEMBERED:
                self._remembered[requested] = model
        return model

    def resolve_now(self, requested: str) -> str:
        """Like ``resolve`` against the last snapshot (never waits; before any: mapping only)."""
        return resolve(requested, self.catalogue.current(), self.mapper.map).model

    def current(self) -> Catalogue | None:
        return self.catalogue.current()

    def map(self, requested: str) -> str:
        """IModelMapper-compatible: what ``resolve_now`` gives (doors written against a mapper)."""
        return self.resolve_now(requested)

    async def with_model(self, requested: str, call: Callable[[str], Awaitable[T]]) -> T:
        """``call(upstream id)``; when upstream answers 404 (the model left the catalogue since the
        last snapshot), refresh the catalogue, resolve again and, if the name now means another
        model, call once more with it — so a model vanishing mid-run costs no failed request."""
        model = await self.resolve(requested)
        try:
            return await call(model)
        except GatewayError as e:
            if e.code != 404:
                raise
            self.catalogue.invalidate()
            again = await self.resolve(requested)
            if again == model:
                raise
            return await call(again)
