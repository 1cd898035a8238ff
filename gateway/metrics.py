"""Prometheus metrics of one gateway, in a registry of its own, and the /metrics resource.

Owns metric names, labels and buckets; values are recorded by
``gateway.observe`` only. A per-gateway ``CollectorRegistry`` (never the
global one) lets several gateways run in one process (tests).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any, Callable, Iterable, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from twisted.web.resource import Resource

PREFIX = "antigravity_gateway_"
# Whole requests: from tens of milliseconds (errors, countTokens) to long streams.
REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
# Upstream time to response headers.
UPSTREAM_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
# What the gateway itself adds: sub-millisecond when warm, more on a token refresh miss.
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
MAX_MODEL_LABELS = 200
ACCOUNT_STATES = ("active", "cooling", "disabled")
_T = TypeVar("_T")


class Metrics:
    """Every metric the gateway exports. ``accounts`` reads the pool at scrape time."""

    def __init__(self, accounts: Callable[[], dict[str, int]] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._tallies: list[Any] = []
        r.register(_Fold(self))  # first: the metrics below are read after it ran
        self.requests = Counter(
            PREFIX + "requests", "Client requests answered, by route, model (after mapping) and HTTP status.",
            ["route", "model", "status"], registry=r,
        )
        self.request_seconds = Histogram(
            PREFIX + "request_duration_seconds", "Whole client requests, first byte in to last byte out (streams included).",
            ["route"], buckets=REQUEST_BUCKETS, registry=r,
        )
        self.upstream_first_byte = Histogram(
            PREFIX + "upstream_first_byte_seconds", "Cloud Code time to response headers, per v1internal call.",
            ["method"], buckets=UPSTREAM_BUCKETS, registry=r,
        )
        self.overhead = Histogram(
            PREFIX + "overhead_seconds", "Time a request spent in the gateway outside upstream calls (Cloud Code and the token endpoint).",
            ["route"], buckets=OVERHEAD_BUCKETS, registry=r,
        )
        self.in_flight = Gauge(PREFIX + "requests_in_flight", "Client requests being processed now.", registry=r)
        self.active_streams = Gauge(PREFIX + "active_streams", "Streams being relayed to clients now.", registry=r)
        self.attempt_failures = Counter(
            PREFIX + "upstream_attempt_failures", "Upstream attempts that failed, by reason.", ["reason"], registry=r,
        )
        self.retries = Counter(
            PREFIX + "retries", "Attempts retried after a failure, by the failure's reason.", ["reason"], registry=r,
        )
        self.rotations = Counter(
            PREFIX + "account_rotations", "Retries that moved to another account, by the failure's reason.", ["reason"], registry=r,
        )
        self.host_fallbacks = Counter(
            PREFIX + "upstream_host_fallbacks", "Moves to the next upstream host, by the host left and why.",
            ["host", "reason"], registry=r,
        )
        self.token_refreshes = Counter(
            PREFIX + "token_refreshes", "OAuth access-token refreshes, by result (ok, invalid_grant, error).",
            ["result"], registry=r,
        )
        self.tokens = Counter(
            PREFIX + "tokens", "Tokens reported by upstream usageMetadata, by model and kind.", ["model", "kind"], registry=r,
        )
        self.rejected = Counter(
            PREFIX + "rejected_requests", "Requests refused before routing (limits, slow clients), by HTTP status.",
            ["status"], registry=r,
        )
        self.key_requests = Counter(
            PREFIX + "key_requests", "Requests answered per client key name ([auth] strategy keys), by HTTP status.",
            ["key", "status"], registry=r,
        )
        self.key_tokens = Counter(
            PREFIX + "key_tokens", "Tokens reported by upstream usageMetadata, per client key name and kind.", ["key", "kind"], registry=r,
        )
        self.key_refusals = Counter(
            PREFIX + "key_refusals", "Requests a key's limits refused before upstream, by key name and reason.", ["key", "reason"], registry=r,
        )
        self.reloads = Counter(PREFIX + "reloads", "SIGHUP reloads, by result (ok, refused).", ["result"], registry=r)
        if accounts is not None:
            r.register(_AccountStates(accounts))
        # What every request records, in plain numbers until the registry is collected (see ``Tally``).
        self.requests_count = self._tally(Tally(self.requests))
        self.request_seconds_count = self._tally(Observations(self.request_seconds, REQUEST_BUCKETS))
        self.overhead_count = self._tally(Observations(self.overhead, OVERHEAD_BUCKETS))
        self.upstream_first_byte_count = self._tally(Observations(self.upstream_first_byte, UPSTREAM_BUCKETS))
        self.tokens_count = self._tally(Tally(self.tokens))
        self.key_requests_count = self._tally(Tally(self.key_requests))
        self.key_tokens_count = self._tally(Tally(self.key_tokens))
        self.in_flight_count = self._tally(Level(self.in_flight))
        self._models: set[str] = set()

    def _tally(self, tally: _T) -> _T:
        self._tallies.append(tally)
        return tally

    def fold(self) -> None:
        """Bring the Prometheus values up to date with the tallies (runs whenever the registry is collected)."""
        for tally in self._tallies:
            tally.fold()

    def model_label(self, model: str | None) -> str:
        """Bounded label values: client-chosen ids cannot grow the series without end."""
        if not model:
            return ""
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODEL_LABELS:
            return "other"
        self._models.add(model)
        return model

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class Tally:
    """One counter's increments by label values, held in plain numbers until the registry is collected.

    prometheus_client validates and takes a lock on every ``inc`` (a histogram
    observation: two); a request made about a dozen. Here a request adds to a
    number in a dict, and ``fold`` (run first whenever the registry is
    collected, see ``_Fold``) hands each child what it gained since the last
    time. A series' child is still made the first time it is counted, so
    /metrics shows the same series, values and ``_created`` times. Reactor
    thread only, like every scrape. Label values are ``str()``-ed by
    ``labels`` (a status may be an int).
    """

    __slots__ = ("metric", "series")

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.series: dict[tuple[Any, ...], list[Any]] = {}  # label values -> [child, amount not yet folded]

    def add(self, labels: tuple[Any, ...], amount: float = 1) -> None:
        entry = self.series.get(labels)
        if entry is None:
            entry = self.series[labels] = [self.metric.labels(*labels), 0]
        entry[1] += amount

    def fold(self) -> None:
        for entry in self.series.values():
            if entry[1]:
                entry[0].inc(entry[1])
                entry[1] = 0


class Observations:
    """A histogram's observations by label values: per-bucket counts and a sum until the registry is collected (see ``Tally``)."""

    __slots__ = ("metric", "bounds", "series")

    def __init__(self, metric: Any, buckets: tuple[float, ...]) -> None:
        self.metric = metric
        self.bounds = tuple(float(b) for b in buckets) + (float("inf"),)  # as Histogram's upper bounds
        self.series: dict[tuple[Any, ...], list[Any]] = {}  # label values -> [child, counts by bucket, sum]

    def add(self, labels: tuple[Any, ...], value: float) -> None:
        entry = self.series.get(labels)
        if entry is None:
            entry = self.series[labels] = [self.metric.labels(*labels), [0] * len(self.bounds), 0.0]
        entry[1][bisect_left(self.bounds, value)] += 1  # the first bound >= value, as ``Histogram.observe``
        entry[2] += value

    def fold(self) -> None:
        for entry in self.series.values():
            child, counts, total = entry
            if any(counts):
                _absorb(child, counts, total)
                entry[1] = [0] * len(counts)
                entry[2] = 0.0


def _absorb(child: Histogram, counts: list[int], total: float) -> None:
    """Add per-bucket counts and their sum to a histogram child at once (prometheus_client has no call for it)."""
    child._sum.inc(total)
    for bucket, count in zip(child._buckets, counts):
        if count:
            bucket.inc(count)


class Level:
    """A gauge's ups and downs, summed until the registry is collected (see ``Tally``)."""

    __slots__ = ("metric", "change")

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.change = 0

    def fold(self) -> None:
        if self.change:
            self.metric.inc(self.change)
            self.change = 0


class _Fold:
    """Registered first: collecting the registry folds the tallies into the metrics before they are read."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        self._metrics.fold()
        return []


class _AccountStates:
    """``antigravity_gateway_accounts{state}``: counts read from the pool when scraped."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def describe(self) -> Iterable[Any]:
        return [GaugeMetricFamily(PREFIX + "accounts", "Pool accounts by state.", labels=["state"])]

    def collect(self) -> Iterable[Any]:
        family = GaugeMetricFamily(PREFIX + "accounts", "Pool accounts by state.", labels=["state"])
        counts = dict.fromkeys(ACCOUNT_STATES, 0)
        try:
            counts.update(self._counts())
        except Exception:  # a scrape must never fail because the pool is mid-reload
            pass
        for state, value in sorted(counts.items()):
            family.add_metric([state], value)
        yield family


def account_state_counts(pool: Any, clock: Callable[[], float]) -> Callable[[], dict[str, int]]:
    """Counts by state for the pool: disabled, cooling (any cooldown still running), active."""

    def counts() -> dict[str, int]:
        if hasattr(pool, "availability"):
            a = pool.availability(None)
            return {"active": a.usable_now, "disabled": a.disabled, "cooling": max(0, a.total - a.disabled - a.usable_now)}
        now = clock()
        result = dict.fromkeys(ACCOUNT_STATES, 0)
        for state in pool.states():
            if state.account.disabled:
                result["disabled"] += 1
            elif _cooling(state, now):
                result["cooling"] += 1
            else:
                result["active"] += 1
        return result

    return counts


def _cooling(state: Any, now: float) -> bool:
    for name in ("cooldown_until", "cooling_until"):
        until = getattr(state, name, None)
        if isinstance(until, (int, float)) and until > now:
            return True
    cooldowns = getattr(state, "cooldowns", None)
    if isinstance(cooldowns, dict):
        return any(isinstance(v, (int, float)) and v > now for v in cooldowns.values())
    return False


class MetricsResource(Resource):
    """``GET /metrics``: the Prometheus text exposition of one gateway's registry."""

    isLeaf = True

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self.metrics = metrics

    def render(self, request: Any) -> bytes:
        if request.method not in (b"GET", b"HEAD"):
            from gateway.protocol.errors import error_body

            request.setResponseCode(405)
            request.setHeader(b"Allow", b"GET, HEAD")
            request.setHeader(b"Content-Type", b"application/json; charset=UTF-8")
            return error_body(405, "Method not allowed on /metrics; use GET.", "NOT_FOUND")
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode())
        request.setHeader(b"Cache-Control", b"no-store")
        return self.metrics.exposition()
