"""Pool state shared by several gateway instances through Redis.

What lives here can always be rebuilt (refresh tokens stay in the account
store): last use per account, cooldowns, sticky sessions, access tokens and
the refresh lock, per-key request windows and token counts. Every call has
the client's deadline; when Redis cannot answer, the instance goes on from
its own local state (the down policy) and re-tells Redis what it knows when
Redis answers again.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from typing import Any, Callable

import attrs
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from gateway.pool import health
from gateway.pool.pool import Pick
from gateway.shared import keys as K
from gateway.shared import scripts
from gateway.shared.interfaces import ISharedState
from gateway.shared.resp import RedisClient, RedisError, RedisUnavailable
from gateway.team import limits

log = Logger()

LOCK_SECONDS = 30.0  # a refresh holder that died frees the lock after this
POLL_SECONDS = 0.05  # how often a waiter looks for the holder's token
QUOTA_SECONDS = 10.0  # a quota snapshot one instance fetched serves the others this long
PROJECT_SECONDS = 86400.0  # a discovered project is re-checked by some instance once a day


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


@implementer(ISharedState)
class RedisState:
    name = "redis"

    def __init__(self, client: RedisClient, prefix: str, clock: Callable[[], float], policy: str | None = None,
                 session_ttl: float = 0.0, refresh_wait: float = 30.0, margin: float = 300.0) -> None:
        self.client = client
        self.keys = K.Keys(prefix)
        self.clock = clock
        self.policy = policy
        self.session_ttl = session_ttl
        self.refresh_wait = refresh_wait
        self.margin = margin
        self.pool: Any = None  # set by ``attach``: the pool whose knowledge is re-told after a restart
        self.fallbacks = 0  # decisions taken locally because Redis did not answer
        self._applying = False
        self._ids = itertools.count()
        self._instance = os.urandom(6).hex()
        client.on_up.append(self.rebuild)

    def attach(self, pool: Any) -> None:
        self.pool = pool

    def start(self) -> Deferred[bool]:
        return defer.ensureDeferred(self.client.connect())

    def stop(self) -> None:
        self.client.stop()

    def status(self) -> dict[str, Any]:
        return {"backend": "redis", "url": self.client.url.safe(), "up": self.client.up, "error": self.client.error,
                "local_fallbacks": self.fallbacks, "scripts_reloaded": self.client.scripts_reloaded}

    def _fell_back(self, what: str, error: Exception) -> None:
        self.fallbacks += 1
        log.info("Shared state: {what} decided locally ({error})", what=what, error=str(error))

    # -- selection --

    def acquire(self, pool: Any, model: str | None, exclude: set[str], session: str | None) -> Deferred[Pick]:
        return defer.ensureDeferred(self._acquire(pool, model, exclude, session))

    async def _acquire(self, pool: Any, model: str | None, exclude: set[str], session: str | None) -> Pick:
        now = self.clock()
        free = [s for s in pool.states()
                if health.blocked_until(s.account, model, now) == 0.0 and s.email not in exclude
                and (not pool.max_in_flight or s.in_flight < pool.max_in_flight)]
        if not free or not self.client.up:
            return pool.acquire(model, exclude, session)
        ttl_ms = int(self.session_ttl * 1000) if session is not None else 0
        args: list[Any] = [repr(now), ttl_ms, model or ""]
        for state in sorted(free, key=lambda s: s.email):
            args += [state.email, repr(K.rank(self.policy, state.account, model, now))]
        keys = [self.keys.last_used(), self.keys.cooldowns(), self.keys.session(session or "", model or "")]
        try:
            answer = await self.client.script(scripts.SELECT, keys, args)
        except (RedisUnavailable, RedisError) as e:
            self._fell_back("account selection", e)
            return pool.acquire(model, exclude, session)
        chosen = _text(answer[0]) if answer else ""
        self._apply_cooldowns(pool, answer[1:], now)
        state = pool.state(chosen) if chosen else None
        if state is None or health.blocked_until(state.account, model, self.clock()) != 0.0 or \
                (pool.max_in_flight and state.in_flight >= pool.max_in_flight):
            return pool.acquire(model, exclude, session)  # knows now what Redis knew (or the choice went stale)
        state.last_used = now
        state.in_flight += 1
        if session is not None and pool.sessions.enabled:
            pool.sessions.bind(session, model or "", chosen, now)
        return Pick(state.account)

    def _apply_cooldowns(self, pool: Any, flat: list[Any], now: float) -> None:
        """Cooldowns other instances learned, now in this pool too (admin, metrics, 503 Retry-After)."""
        self._applying = True
        try:
            for field, value in zip(flat[0::2], flat[1::2]):
                email, model = K.split_field(_text(field))
                parsed = K.parse_cooldown(value)
                if parsed is None or pool.get(email) is None:
                    continue
                until, reason = parsed
                if health.blocked_until(pool.get(email), model, now) >= until:
                    continue
                if model is None:
                    pool.cool_account(email, until, reason)
                else:
                    pool.cool_model(email, model, until, reason)
        finally:
            self._applying = False

    # -- cooldowns --

    def learned(self, email: str, model: str | None, until: float, reason: str) -> None:
        if self._applying or not self.client.up:
            return
        d = defer.ensureDeferred(self.client.script(
            scripts.COOL, [self.keys.cooldowns()], [K.cooldown_field(email, model), K.cooldown_value(until, reason)]))
        d.addErrback(lambda f: self._fell_back("cooldown", f.value))

    async def rebuild(self) -> None:
        """Redis (re)appeared, maybe empty: tell it the cooldowns and tokens this instance holds."""
        pool = self.pool
        if pool is None:
            return
        now = self.clock()
        for state in pool.states():
            for model, until, reason in K.known_cooldowns(state.account, now):
                await self.client.script(scripts.COOL, [self.keys.cooldowns()],
                                         [K.cooldown_field(state.email, model), K.cooldown_value(until, reason)])
            account = state.account
            if account.access_token and account.expiry - now > self.margin:
                await self.client.call("SET", self.keys.flight(state.email, "token"), K.token_record(account.access_token, account.expiry),
                                       "PX", int((account.expiry - now) * 1000), "NX")

    # -- single flight across instances: token refresh, project discovery --

    def refresh(self, pool: Any, email: str, refresh_here: Callable[[], Any]) -> Deferred[str]:
        account = pool.get(email)
        stale = account.access_token if account is not None else None

        def usable(raw: Any) -> str | None:
            record = K.parse_token_record(raw)
            if record is None or record[0] == stale or record[1] - self.margin <= self.clock():
                return None
            token, expiry = record
            pool.modify(email, lambda a: attrs.evolve(a, access_token=token, expiry=expiry))
            return token

        def publish(token: str) -> tuple[str, int]:
            current = pool.get(email)
            expiry = current.expiry if current is not None else 0.0
            return K.token_record(token, expiry), int(max(0.0, expiry - self.clock()) * 1000)

        return defer.ensureDeferred(self._once(email, "token", usable, refresh_here, publish))

    def discover(self, pool: Any, email: str, discover_here: Callable[[], Any]) -> Deferred[str]:
        """The account's Cloud Code project: found by one instance, read by the others."""

        def usable(raw: Any) -> str | None:
            found = K.parse_project_record(raw)
            if found is None:
                return None
            project, tier, ineligible = found
            pool.modify(email, lambda a: attrs.evolve(a, project_id=project, tier=tier, ineligible=ineligible))
            return project

        def publish(project: str) -> tuple[str, int]:
            current = pool.get(email)
            return (K.project_record(project, current.tier if current else None, current.ineligible if current else None),
                    int(PROJECT_SECONDS * 1000))

        return defer.ensureDeferred(self._once(email, "project", usable, discover_here, publish))

    def quota(self, email: str, poll_here: Callable[[], Any], absorb: Callable[[dict[str, Any]], None]) -> Deferred[Any]:
        """An account's ``fetchAvailableModels`` answer: fetched by one instance, shared for ``QUOTA_SECONDS``."""

        def usable(raw: Any) -> dict[str, Any] | None:
            if raw is None:
                return None
            try:
                document = json.loads(raw)
            except ValueError:
                return None
            if not isinstance(document, dict):
                return None
            absorb(document)
            return document

        def publish(document: dict[str, Any]) -> tuple[str, int]:
            return json.dumps(document, separators=(",", ":")), int(QUOTA_SECONDS * 1000)

        return defer.ensureDeferred(self._once(email, "quota", usable, poll_here, publish))

    async def _once(self, email: str, kind: str, usable: Callable[[Any], Any], here: Callable[[], Any],
                    publish: Callable[[Any], tuple[str, int]]) -> Any:
        """``here()`` runs on one instance per account at a time; the others wait and use what it wrote.

        The lock carries a fencing token: the writer must still hold the
        current fence, so one whose lock expired while it waited on Google
        cannot overwrite what a later holder wrote. Any Redis trouble: do it here.
        """
        value_key, lock_key = self.keys.flight(email, kind), self.keys.lock(email, kind)
        deadline = self.clock() + self.refresh_wait
        try:
            while True:
                raw = await self.client.call("GET", value_key)
                found = usable(raw)
                if found is not None:
                    return found
                fence = await self.client.script(scripts.LOCK, [self.keys.fence(email), lock_key, value_key],
                                                 [int(LOCK_SECONDS * 1000), raw or b""])
                if fence > 0:
                    break
                if fence < 0:
                    continue  # another instance wrote since we looked: read it
                if self.clock() >= deadline:
                    raise RedisUnavailable(f"the instance doing the {kind} for this account did not finish in time")
                await _sleep(self.client.reactor, POLL_SECONDS)
        except (RedisUnavailable, RedisError) as e:
            self._fell_back(kind, e)
            return await here()
        try:
            result = await here()
        except BaseException:
            await self._write(lock_key, value_key, fence, "", 0)  # free the lock for the next one to try
            raise
        value, ttl = publish(result)
        await self._write(lock_key, value_key, fence, value, ttl)
        return result

    async def _write(self, lock_key: str, value_key: str, fence: int, value: str, ttl: int) -> None:
        try:
            await self.client.script(scripts.WRITE_TOKEN, [lock_key, value_key], [fence, value, ttl])
        except (RedisUnavailable, RedisError) as e:
            self._fell_back("publish", e)

    # -- per-key limits --

    def admit(self, name: str, rpm: int, tokens_per_day: int, now: float) -> Deferred[limits.Refusal | None]:
        return defer.ensureDeferred(self._admit(name, rpm, tokens_per_day, now))

    async def _admit(self, name: str, rpm: int, tokens_per_day: int, now: float) -> limits.Refusal | None:
        try:
            if tokens_per_day > 0:
                spent = int(await self.client.call("GET", self.keys.tokens(name, limits.utc_day(now))) or 0)
                if spent >= tokens_per_day:
                    wait = max(1, math.ceil(limits.seconds_to_next_day(now)))
                    return limits.Refusal(
                        429, "tokens_per_day",
                        f"The key {name!r} has used its {tokens_per_day} tokens for today (UTC) across all gateway "
                        f"instances; the budget renews in {wait}s.", wait)
            if rpm > 0:
                member = f"{now!r}:{self._instance}:{next(self._ids)}"
                answer = await self.client.script(scripts.RATE, [self.keys.rpm(name)], [repr(now), limits.WINDOW, rpm, member])
                if int(answer[0]) == 0:
                    oldest = float(answer[1])
                    wait = max(1, math.ceil(oldest + limits.WINDOW - now))
                    return limits.Refusal(
                        429, "rpm", f"The key {name!r} is limited to {rpm} requests per minute across all gateway "
                        f"instances; retry in {wait}s.", wait)
        except (RedisUnavailable, RedisError) as e:
            self._fell_back("key limits", e)  # this instance's own count has already been applied
        return None

    def spent(self, name: str, tokens: int, now: float) -> None:
        if tokens <= 0 or not self.client.up:
            return
        day = limits.utc_day(now)

        async def count() -> None:
            await self.client.call("INCRBY", self.keys.tokens(name, day), tokens)
            await self.client.call("EXPIRE", self.keys.tokens(name, day), 2 * 86400)
            await self.client.call("HINCRBY", self.keys.usage(day), f"tokens:{name}", tokens)
            await self.client.call("EXPIRE", self.keys.usage(day), 40 * 86400)

        defer.ensureDeferred(count()).addErrback(lambda f: self._fell_back("usage counters", f.value))


def _sleep(reactor: Any, seconds: float) -> Deferred[None]:
    d: Deferred[None] = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d
