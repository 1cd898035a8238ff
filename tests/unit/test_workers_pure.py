"""The pure parts of ``[server] workers``: counts, listener plans, the fd hand-over, the give-up rule."""

from __future__ import annotations

import socket

import pytest

from gateway.workers import Deaths, decode_fds, encode_fds, refuse_for_workers, tcp_plan, worker_argv, worker_count


def test_worker_count() -> None:
    assert worker_count(3) == 3 and worker_count("auto", 8) == 8 and worker_count("auto", 0) == 1
    for bad in (0, -1, "many", True, 1.5):
        with pytest.raises(ValueError):
            worker_count(bad)


def test_tcp_plans_and_shareable_kinds() -> None:
    assert tcp_plan("tcp:8045:interface=127.0.0.1") == tcp_plan("tcp:port=8045:interface=127.0.0.1")
    plan = tcp_plan("tcp6:9000:interface=\\:\\:1:backlog=64")
    assert plan is not None and (plan.family, plan.host, plan.port, plan.backlog) == (socket.AF_INET6, "::1", 9000, 64)
    assert tcp_plan("unix:/run/gw.sock") is None and tcp_plan("systemd:domain=INET:index=0") is None
    assert refuse_for_workers("systemd:domain=INET:index=0") is None and refuse_for_workers("unix:/x") is None
    assert "TLS" in (refuse_for_workers("ssl:443:privateKey=k") or "")


def test_fds_round_trip_and_argv_drops_workers() -> None:
    entries = [(3, socket.AF_INET, "api"), (4, socket.AF_INET6, "metrics")]
    assert decode_fds(encode_fds(entries)) == entries
    assert worker_argv(["--log-format=json", "antigravity-gateway", "--workers", "4", "--config", "c", "--workers=2"]) == [
        "--log-format=json", "antigravity-gateway", "--config", "c"]


def test_deaths_give_up_past_the_limit_within_the_window() -> None:
    deaths = Deaths(allowed=2, window=10)
    assert not deaths.record(0) and not deaths.record(1)
    assert deaths.record(2)
    later = Deaths(allowed=2, window=10)
    assert not any(later.record(t) for t in (0, 11, 22, 33))  # spread out: keep restarting
