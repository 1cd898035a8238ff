"""Per-request metrics are counted in plain numbers and folded in when /metrics is read: the same text as direct calls."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from gateway.metrics import REQUEST_BUCKETS, Level, Metrics, Observations, Tally


def _without_created(text: bytes) -> list[str]:
    return [line for line in text.decode().splitlines() if "_created" not in line]


def test_folded_counts_read_as_direct_increments() -> None:
    direct, folded = CollectorRegistry(), CollectorRegistry()
    counters = [Counter("c", "help", ["route", "status"], registry=r) for r in (direct, folded)]
    histograms = [Histogram("h", "help", ["route"], buckets=REQUEST_BUCKETS, registry=r) for r in (direct, folded)]
    gauges = [Gauge("g", "help", registry=r) for r in (direct, folded)]
    counts, seen, level = Tally(counters[1]), Observations(histograms[1], REQUEST_BUCKETS), Level(gauges[1])
    values = [0.0, 0.01, 0.0100001, 0.5, 3, 600, 601, 1e9, 0.25]  # on, just over and past the bounds
    for i, value in enumerate(values):
        route = "a" if i % 3 else "b"
        counters[0].labels(route, str(200 + i % 2)).inc()
        counts.add((route, 200 + i % 2))
        histograms[0].labels(route).observe(value)
        seen.add((route,), value)
        gauges[0].inc()
        level.change += 1
    gauges[0].dec(2)
    level.change -= 2
    for tally in (counts, seen, level):
        tally.fold()
    assert _without_created(generate_latest(folded)) == _without_created(generate_latest(direct))
    for tally in (counts, seen, level):  # folding again adds nothing
        tally.fold()
    assert _without_created(generate_latest(folded)) == _without_created(generate_latest(direct))


def test_a_series_exists_from_its_first_count_and_every_read_folds() -> None:
    metrics = Metrics()
    metrics.requests_count.add(("generateContent", "m", 200))
    assert ("generateContent", "m", "200") in metrics.requests._metrics  # made at once: its _created is the first request's
    assert 'antigravity_gateway_requests_total{model="m",route="generateContent",status="200"} 1.0' in metrics.exposition().decode()
    metrics.requests_count.add(("generateContent", "m", 200), 2)
    metrics.in_flight_count.change += 3
    text = metrics.exposition().decode()
    assert 'antigravity_gateway_requests_total{model="m",route="generateContent",status="200"} 3.0' in text
    assert "antigravity_gateway_requests_in_flight 3.0" in text
