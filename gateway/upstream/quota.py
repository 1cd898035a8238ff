"""Quota per account and model: ``fetchAvailableModels`` polled on a timer and after quota errors.

Each account's remaining fraction and reset time per model are stored in its
record (selection reads them); the latest full answers are kept in memory so
``GET /v1beta/models`` lists what the pool's accounts can serve, with the
limits upstream reports. Sequencing only: parsing is ``pool.health``'s.
"""

from __future__ import annotations

import json

import attrs
from typing import Any, Callable, Iterable

from twisted.internet.defer import CancelledError, Deferred, DeferredList
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from gateway.pool import health
from gateway.pool.pool import AccountPool
from gateway.protocol import models
from gateway.protocol.catalogue import Catalogue, catalogue_from_answer
from gateway.protocol.errors import GatewayError
from gateway.upstream import quota_windows
from gateway.upstream.client import UpstreamClient, UpstreamUnreachable, read_body
from gateway.upstream.singleflight import SingleFlight

log = Logger()

#: The timer never sleeps longer than this, so accounts whose snapshot is
#: stale after a restart are polled soon after start.
MAX_TICK = 60.0
#: ``poll_soon`` (after a quota error) polls an account at most this often.
SOON_SPACING = 10.0
#: ``PoolCatalogue.invalidate`` (after a 404 for a listed model) refetches at most this often.
FORCED_REFRESH_SPACING = 10.0


class QuotaPollFailed(Exception):
    """``fetchAvailableModels`` did not answer usefully for one account."""


class QuotaPoller:
    def __init__(
        self,
        pool: AccountPool,
        tokens: Any,
        projects: Any,
        client: UpstreamClient,
        reactor: Any,
        interval: float,
    ) -> None:
        self._pool = pool
        self._tokens = tokens
        self._projects = projects
        self._client = client
        self._reactor = reactor
        self.interval = interval
        #: email -> (when, the whole fetchAvailableModels answer)
        self.latest: dict[str, tuple[float, dict[str, Any]]] = {}
        self._polling: SingleFlight[dict[str, Any]] = SingleFlight()
        self._background: set[Deferred[Any]] = set()
        self._last_soon: dict[str, float] = {}
        self._loop: LoopingCall | None = None
        #: How logs name an account (``[logging] account_label``; assembly sets the observer's).
        self.label: Callable[[str], Any] = lambda email: email
        #: Each poll also re-reads loadCodeAssist (tier, credits, UNSUPPORTED_CLIENT) ...
        self.account_info = True
        #: ... and retrieveUserQuotaSummary (the 5-hour and weekly windows).
        self.windows = True
        #: Shares snapshots with other instances (gateway.shared); None: poll here.
        self.shared: Any = None

    def _now(self) -> float:
        return float(self._reactor.seconds())

    # -- polling one account --

    def poll(self, email: str) -> Deferred[dict[str, Any]]:
        """Fetch ``email``'s models and quota now (one fetch in flight per account, shared)."""
        if self.shared is not None:
            return self._polling.run(email, lambda: self._poll_shared(email))
        return self._polling.run(email, lambda: self._poll(email))

    async def _poll_shared(self, email: str) -> dict[str, Any]:
        """One fetch per account for all instances at a time; the others take its answer."""
        return await self.shared.quota(email, lambda: self._poll(email), lambda document: self._absorb(email, document))

    def _absorb(self, email: str, document: dict[str, Any]) -> None:
        self.latest[email] = (self._now(), document)
        self._pool.record_quota(email, health.quota_from_upstream(document))

    async def _poll(self, email: str) -> dict[str, Any]:
        token = await self._tokens.token_for(email)
        # loadCodeAssist again, not only the stored project: tier, credits and a retired
        # OAuth client (UNSUPPORTED_CLIENT) change while the project stays.
        project = await self._projects.project_for(email, token, force=self.account_info)
        answer = await self._fetch(project, token)
        if answer.code == 401:
            await read_body(answer.response)
            token = await self._tokens.token_for(email, rejected=token)
            answer = await self._fetch(project, token)
        body = await read_body(answer.response, limit=16 * 1024 * 1024)
        if answer.code != 200:
            raise QuotaPollFailed(f"fetchAvailableModels answered HTTP {answer.code}")
        try:
            document = json.loads(body)
        except ValueError:
            raise QuotaPollFailed("fetchAvailableModels answered non-JSON") from None
        if not isinstance(document, dict):
            raise QuotaPollFailed("fetchAvailableModels answered something other than an object")
        self._absorb(email, document)
        if self.windows:
            await self._windows(email, project, token)
        return document

    async def _windows(self, email: str, project: str, token: str) -> None:
        """``retrieveUserQuotaSummary`` (5-hour and weekly windows); a failure keeps the last ones."""
        try:
            answer = await self._client.call("retrieveUserQuotaSummary", json.dumps({"project": project}).encode(), token)
            body = await read_body(answer.response)
            document = json.loads(body) if answer.code == 200 else None
        except (UpstreamUnreachable, ValueError) as e:
            log.debug("quota summary for {email} failed: {why}", email=self.label(email), why=str(e))
            return
        if not isinstance(document, dict):
            log.debug("quota summary for {email} answered HTTP {code}", email=self.label(email), code=answer.code)
            return
        windows = quota_windows.read(document)
        self._pool.modify(email, lambda a: attrs.evolve(a, quota_windows=windows))

    def _fetch(self, project: str, token: str) -> Any:
        return Deferred.fromCoroutine(self._client.call("fetchAvailableModels", json.dumps({"project": project}).encode(), token))

    # -- in the background --

    def start(self) -> None:
        """Poll due accounts every ``min(interval, 60)`` seconds (``interval`` 0: never)."""
        if self.interval <= 0 or self._loop is not None:
            return
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self._reactor
        self._loop.start(min(self.interval, MAX_TICK), now=False).addErrback(
            lambda f: log.failure("quota timer stopped", failure=f)
        )

    def stop(self) -> None:
        """Stop the timer and abandon polls in flight (nothing is left on the reactor)."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        for d in list(self._background):
            d.cancel()
        self._polling.stop()

    def _tick(self) -> None:
        self._pool.maybe_reload()
        now = self._now()
        for state in self._pool.usable():
            if now - state.account.quota_updated >= self.interval:
                self._in_background(state.email)

    def poll_soon(self, email: str) -> None:
        """After a quota error: refresh that account's snapshot (at most every few seconds)."""
        now = self._now()
        if now - self._last_soon.get(email, -SOON_SPACING) < SOON_SPACING:
            return
        self._last_soon[email] = now
        self._in_background(email)

    def _in_background(self, email: str) -> None:
        d = self.poll(email)
        self._background.add(d)

        def finished(result: Any) -> None:
            self._background.discard(d)
            if isinstance(result, Failure) and not result.check(CancelledError):
                self._pool.failed(email, f"quota poll: {result.getErrorMessage()}")
                log.info("quota poll for {email} failed: {why}", email=self.label(email), why=result.getErrorMessage())

        d.addBoth(finished)

    # -- for the models list --

    async def answers(self, max_age: float) -> dict[str, dict[str, Any]]:
        """Every usable account's latest answer, polling those older than ``max_age`` first."""
        self._pool.maybe_reload()
        now = self._now()
        usable = [s.email for s in self._pool.usable()]
        stale = [e for e in usable if e not in self.latest or now - self.latest[e][0] >= max_age]
        if stale:
            await DeferredList([self.poll(e) for e in stale], consumeErrors=True)
        return {e: self.latest[e][1] for e in usable if e in self.latest}


def merge_answers(answers: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One ``fetchAvailableModels``-shaped answer: the union of every account's models."""
    merged: dict[str, Any] = {}
    deprecated: dict[str, Any] = {}
    for answer in answers:
        entries = answer.get("models")
        if isinstance(entries, dict):
            for model_id, info in entries.items():
                merged.setdefault(model_id, info)
        old = answer.get("deprecatedModelIds")
        if isinstance(old, dict):
            for model_id, info in old.items():
                deprecated.setdefault(model_id, info)
    return {"models": merged, "deprecatedModelIds": deprecated}


class PoolCatalogue:
    """``GET /v1beta/models``: the models the pool's usable accounts report, cached ``ttl`` seconds."""

    def __init__(self, poller: QuotaPoller, forwarder: Any, clock: Callable[[], float], ttl: float) -> None:
        self._poller = poller
        self._forwarder = forwarder
        self._clock = clock
        self._ttl = ttl
        self._models: list[dict[str, Any]] | None = None
        self._snapshot: Catalogue | None = None
        self._fetched = 0.0
        self._force = False
        self._forced_at = float("-inf")

    def current(self) -> Catalogue | None:
        """The last snapshot, without waiting (None before the first fetch)."""
        return self._snapshot

    def invalidate(self) -> None:
        """Forget the cache (every account's answer too): upstream just said a model it listed is gone.

        At most once every ``FORCED_REFRESH_SPACING`` seconds, so 404s for another
        reason cannot make every request poll every account.
        """
        now = self._clock()
        if now - self._forced_at < FORCED_REFRESH_SPACING:
            return
        self._forced_at = now
        self._fetched = float("-inf")
        self._force = True

    def fresh(self) -> bool:
        """Whether :meth:`snapshot` would answer :meth:`current` at once (the cache is within ``ttl``)."""
        return self._models is not None and self._clock() - self._fetched < self._ttl

    async def snapshot(self) -> Catalogue | None:
        """The live catalogue for resolution (cached ``ttl``); None when no account can list models."""
        try:
            await self.models()
        except GatewayError:
            return self._snapshot
        return self._snapshot

    async def models(self) -> list[dict[str, Any]]:
        if self._models is not None and self._clock() - self._fetched < self._ttl:
            return self._models
        max_age, self._force = (0.0 if self._force else self._ttl), False
        answers = list((await self._poller.answers(max_age)).values())
        if not answers:
            # No account answered: go through the forwarder, whose error says why.
            forwarded = await self._forwarder.available_models()
            body = await read_body(forwarded.upstream.response, limit=16 * 1024 * 1024)
            try:
                document = json.loads(body)
            except ValueError:
                raise GatewayError(503, "Cloud Code answered fetchAvailableModels with non-JSON; retry shortly.") from None
            answers = [document] if isinstance(document, dict) else []
        merged = merge_answers(answers)
        self._models = models.catalogue_from_upstream(merged)
        self._snapshot = catalogue_from_answer(merged)
        self._fetched = self._clock()
        return self._models
