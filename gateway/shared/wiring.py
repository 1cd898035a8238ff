"""Builds the shared-state backend from ``[shared]`` and hooks it into pool, tokens, limits, admin and metrics.

The only place that knows which parts consult the shared state; with the
default local backend nothing is hooked and the request path is unchanged.
"""

from __future__ import annotations

from typing import Any, Callable

from prometheus_client.core import GaugeMetricFamily

from gateway.shared.interfaces import ISharedState
from gateway.shared.local import LocalState
from gateway.team import limits


def build_shared(settings: Any, reactor: Any) -> ISharedState:
    shared = settings.shared
    if shared.backend != "redis":
        return LocalState()
    from gateway.shared.redis_state import RedisState
    from gateway.shared.resp import RedisClient, parse_url

    client = RedisClient(reactor, parse_url(shared.url), shared.deadline, shared.retry_seconds)
    return RedisState(client, shared.prefix, reactor.seconds, settings.accounts.selection, settings.accounts.session_ttl,
                      settings.upstream.response_timeout, settings.upstream.refresh_margin)


def shared_gate(team: Any, state: ISharedState) -> Callable[[str | None], Any]:
    """The team's gate, then the key's rate and token limits counted over every instance."""
    from gateway.team.service import KeyRefused, client_key

    def gate(model: str | None) -> Any:
        team.gate(model)  # expiry, models, and this instance's own counts: refuses without asking Redis
        name = client_key.get()
        record = team.by_name.get(name) if name else None
        if record is None or (record.rpm <= 0 and record.tokens_per_day <= 0):
            return None

        def check(refusal: limits.Refusal | None) -> None:
            if refusal is not None:
                if team.metrics is not None:
                    team.metrics.key_refusals.labels(record.name, refusal.reason).inc()
                raise KeyRefused(refusal)

        return state.admit(record.name, record.rpm, record.tokens_per_day, team.clock()).addCallback(check)

    return gate


class SharedCollector:
    """``antigravity_gateway_shared_backend_up`` (1/0) and ``…_shared_local_fallbacks`` for the scrape."""

    def __init__(self, state: ISharedState) -> None:
        self.state = state

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        status = self.state.status()
        up = GaugeMetricFamily("antigravity_gateway_shared_backend_up", "Whether the shared state backend answers (1) or "
                               "this instance serves from local state (0).", labels=["backend"])
        up.add_metric([status["backend"]], 1.0 if status["up"] else 0.0)
        falls = GaugeMetricFamily("antigravity_gateway_shared_local_fallbacks", "Decisions taken from local state because the "
                                  "shared backend did not answer.", labels=["backend"])
        falls.add_metric([status["backend"]], float(status.get("local_fallbacks", 0)))
        return [up, falls]


def hook(state: ISharedState, reactor: Any, pool: Any, tokens: Any, projects: Any, quota: Any, forwarder: Any, team: Any,
         ops: Any) -> None:
    """Wire a non-local backend into the running parts (local: nothing to do)."""
    ops.metrics.registry.register(SharedCollector(state))
    if state.name == "local":
        return
    state.attach(pool)
    pool.learned.append(state.learned)
    tokens.shared = state
    projects.shared = state
    if quota is not None:
        quota.shared = state
    forwarder.shared = state
    if team is not None:
        forwarder.gate = shared_gate(team, state)

        def spent(observation: Any, status: int) -> None:
            name = getattr(observation, "key", None)
            if name:
                state.spent(name, limits.usage_tokens(observation.usage), reactor.seconds())

        ops.observer.sinks.append(spent)
    reactor.callWhenRunning(state.start)
