"""The running gateway's team state: the key table, limits, the usage feed and live rates.

One ``Team`` per store file (``team_for``), shared by the ``keys`` auth
strategy (which key is this?), the forwarder's gate (may it go upstream
now?) and the observer (what did it cost?). Reads on the reactor thread
touch memory only; the store is read and written on other threads and the
key table is re-read when the store's ``keys_version`` moves, so keys added
or revoked from the command line apply without a restart.
"""

from __future__ import annotations

import os
import time
from collections import deque
from contextvars import ContextVar
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from gateway import observe
from gateway.protocol.credentials import keys_match
from gateway.protocol.errors import GatewayError, retry_info
from gateway.team import limits
from gateway.team.keys import KeyRecord, hash_secret
from gateway.team.sqlite_store import SQLiteStore
from gateway.team.usage import row_from
from gateway.team.writer import UsageWriter

log = Logger(namespace="antigravity_gateway.team")

#: The key name of the request being processed (set by the ``keys`` strategy).
client_key: ContextVar[str | None] = ContextVar("antigravity_gateway_client_key", default=None)
STATIC_KEY_NAME = "static"  # a key from [auth] keys, accepted beside the stored ones
LIVE_WINDOW = 60.0


class KeyRefused(GatewayError):
    """A key limit refused the request before it reached upstream (answered as is by every door)."""

    def __init__(self, refusal: limits.Refusal) -> None:
        headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else {}
        details = [retry_info(refusal.retry_after)] if refusal.retry_after else []
        status = "RESOURCE_EXHAUSTED" if refusal.code == 429 else "PERMISSION_DENIED"
        super().__init__(refusal.code, refusal.message, status, details, headers)
        self.reason = refusal.reason


def store_path(settings: Any) -> str:
    """``[team] store``, else ``team.sqlite3`` beside the account store."""
    path = settings.team.store
    if path:
        return path
    return os.path.join(os.path.dirname(os.path.abspath(settings.accounts.path)), "team.sqlite3")


def open_store(settings: Any) -> Any:
    """``[store] url`` (PostgreSQL, shared by several hosts), else the SQLite file."""
    url = getattr(getattr(settings, "store", None), "url", "")
    if url:
        from gateway.team.postgres_store import PostgresStore

        return PostgresStore(url)
    return SQLiteStore(store_path(settings))


class Team:
    def __init__(self, store: Any, clock: Callable[[], float] = time.time, static_keys: tuple[str, ...] = ()) -> None:
        self.store = store
        self.clock = clock
        self.static_keys = tuple(static_keys)
        self.by_hash: dict[str, KeyRecord] = {}
        self.by_name: dict[str, KeyRecord] = {}
        self.version = -1
        self.windows = limits.RequestWindows()
        self.tokens = limits.DailyTokens()
        self.live: deque[tuple[float, bool]] = deque()
        self.writer: UsageWriter | None = None
        self.metrics: Any = None
        self._loops: list[LoopingCall] = []
        self._reading = False
        self.load_keys()

    # -- keys --

    def load_keys(self) -> None:
        """Read the key table now (blocking: start-up, tests, the command line)."""
        self._install(self.store.keys_version(), self.store.keys())

    def _install(self, version: int, records: list[KeyRecord]) -> None:
        self.version = version
        self.by_hash = {r.hash: r for r in records}
        self.by_name = {r.name: r for r in records}

    def replace(self, record: KeyRecord) -> None:
        """A change made through this gateway (admin API): in effect at once."""
        old = self.by_name.get(record.name)
        if old is not None:
            self.by_hash.pop(old.hash, None)
        self.by_name[record.name] = record
        self.by_hash[record.hash] = record

    def poll_keys(self) -> Deferred[None] | None:
        """Re-read the key table off the reactor thread when its version moved."""
        if self._reading:
            return None
        self._reading = True
        known = self.version

        def read() -> tuple[int, list[KeyRecord]] | None:
            version = self.store.keys_version()
            return None if version == known else (version, self.store.keys())

        def got(result: Any) -> None:
            self._reading = False
            if result is not None:
                self._install(*result)

        def failed(failure: Any) -> None:
            self._reading = False
            log.warn("could not re-read the keys: {why}", why=failure.getErrorMessage())

        d = deferToThread(read)
        d.addCallbacks(got, failed)
        return d

    def identify(self, credential: str | None) -> str | None:
        """The name of the key ``credential`` is (revoked keys are no key), or None."""
        if not credential:
            return None
        record = self.by_hash.get(hash_secret(credential))
        if record is not None and record.revoked is None:
            return record.name
        if self.static_keys and keys_match(credential, self.static_keys):
            return STATIC_KEY_NAME
        return None

    def authenticate(self, credential: str | None) -> bool:
        name = self.identify(credential)
        if name is None:
            return False
        client_key.set(name)
        obs = observe.current()
        if obs is not None:
            obs.key = name
        return True

    # -- the gate (forwarder, before any account is taken) --

    def gate(self, model: str | None) -> None:
        name = client_key.get()
        obs = observe.current()
        if obs is not None and model and not obs.mapped_model:
            obs.mapped_model = model
        record = self.by_name.get(name) if name else None
        if record is None:
            return
        now = self.clock()
        refusal = limits.decide(record, model, now, self.windows.recent(record.name, now), self.tokens.get(record.name, now))
        if refusal is not None:
            if self.metrics is not None:
                self.metrics.key_refusals.labels(record.name, refusal.reason).inc()
            raise KeyRefused(refusal)
        self.windows.add(record.name, now)

    # -- the usage feed (observer, reactor thread) --

    def finished(self, observation: Any, status: int) -> None:
        now = self.clock()
        row = row_from(observation, status, now)
        if row is None:  # lists, health, metrics, the dashboard's own polling: not traffic
            return
        self.live.append((now, status >= 400))
        while self.live and self.live[0][0] <= now - LIVE_WINDOW:
            self.live.popleft()
        name = getattr(observation, "key", None)
        if name:
            self.tokens.add(name, limits.usage_tokens(observation.usage), now)
        if self.writer is not None:
            self.writer.add(row)

    def live_rates(self) -> dict[str, Any]:
        now = self.clock()
        recent = [(t, bad) for t, bad in self.live if t > now - LIVE_WINDOW]
        errors = sum(1 for _, bad in recent if bad)
        return {"window_seconds": LIVE_WINDOW, "requests": len(recent), "errors": errors,
                "requests_per_minute": len(recent) * 60.0 / LIVE_WINDOW, "errors_per_minute": errors * 60.0 / LIVE_WINDOW}

    # -- lifecycle --

    def start(self, reactor: Any, settings: Any) -> None:
        """Seed today's budgets, start the writer, the key poll, the batch timer and retention."""
        team = settings.team
        for loop in self._loops:  # a second gateway on the same store in this process (tests)
            if loop.running:
                loop.stop()
        self._loops = []
        now = self.clock()
        try:
            self.tokens.seed(self.store.tokens_since(limits.utc_day(now) * limits.DAY), now)
        except Exception as e:
            log.warn("could not read today's usage: {why}", why=str(e))
        if team.record_usage and self.writer is None:
            self.writer = UsageWriter(open_store(settings), team.batch_size, reactor.callFromThread)
        self._loop(reactor, self.poll_keys, team.keys_poll_seconds)
        if self.writer is not None:
            self._loop(reactor, self.writer.tick, team.flush_seconds)
            self.prune(team.retention_days)
            self._loop(reactor, lambda: self.prune(team.retention_days), 3600.0)

    def _loop(self, reactor: Any, work: Callable[[], Any], interval: float) -> None:
        loop = LoopingCall(work)
        loop.clock = reactor
        loop.start(interval, now=False)
        self._loops.append(loop)

    def prune(self, retention_days: float) -> None:
        if self.writer is not None and retention_days > 0:
            cutoff = self.clock() - retention_days * 86400.0
            self.writer.run_in_thread(lambda: self.writer.store.prune(cutoff))  # type: ignore[union-attr]

    def flush(self) -> Deferred[None]:
        """Fires when every usage row recorded so far is in the store."""
        d: Deferred[None] = Deferred()
        if self.writer is None:
            d.callback(None)
        else:
            self.writer.flush(d.callback)
        return d

    def close(self) -> Deferred[None]:
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops = []
        _registry.pop(getattr(self.store, "path", None), None)
        writer, self.writer = self.writer, None
        if writer is None:
            return Deferred.fromCoroutine(_nothing())
        return deferToThread(writer.stop)


async def _nothing() -> None:
    return None


_registry: dict[str, Team] = {}


def team_for(settings: Any) -> Team:
    """The one ``Team`` of this store file in this process (the strategy and assembly share it)."""
    path = getattr(getattr(settings, "store", None), "url", "") or store_path(settings)
    team = _registry.get(path)
    if team is None:
        team = _registry[path] = Team(open_store(settings), static_keys=settings.auth.keys)
    else:
        team.static_keys = tuple(settings.auth.keys)
    return team
