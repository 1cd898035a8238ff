"""SingleFlight: one call per key in flight; each caller may give up alone."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred

from gateway.upstream.singleflight import SingleFlight


def test_concurrent_callers_share_one_call_and_a_later_one_starts_anew() -> None:
    flight: SingleFlight[str] = SingleFlight()
    gates: list[Deferred[str]] = []
    calls = []

    async def work() -> str:
        calls.append(1)
        gate: Deferred[str] = Deferred()
        gates.append(gate)
        return await gate

    results: list[Any] = []
    a, b = flight.run("k", work), flight.run("k", work)
    a.addCallback(results.append)
    b.addCallback(results.append)
    assert "k" in flight and len(calls) == 1
    gates[0].callback("token")
    assert results == ["token", "token"] and "k" not in flight
    flight.run("k", work)
    assert len(calls) == 2


def test_a_waiter_giving_up_does_not_cancel_the_shared_call() -> None:
    flight: SingleFlight[str] = SingleFlight()
    gate: Deferred[str] = Deferred()

    async def work() -> str:
        return await gate

    impatient, patient = flight.run("k", work), flight.run("k", work)
    impatient.addErrback(lambda f: f.trap(CancelledError))
    impatient.cancel()
    got: list[str] = []
    patient.addCallback(got.append)
    gate.callback("ok")
    assert got == ["ok"]


def test_failures_reach_every_waiter_and_stop_cancels() -> None:
    flight: SingleFlight[str] = SingleFlight()

    async def boom() -> str:
        raise ValueError("dead grant")

    errors: list[Any] = []
    flight.run("k", boom).addErrback(errors.append)
    assert errors and errors[0].check(ValueError)
    assert "k" not in flight
    gate: Deferred[str] = Deferred()

    async def slow() -> str:
        return await gate

    d = flight.run("s", slow)
    caught: list[Any] = []
    d.addErrback(caught.append)
    flight.stop()
    assert caught and caught[0].check(CancelledError)
