"""``--workers N``: one parent, N gateway processes on the same listening sockets (issue 14)."""

from __future__ import annotations

import re

import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.processes import StreamReader, ask, call, free_port, start


def worker_of(url: str) -> dict[str, Any]:
    """Which worker answered a fresh connection (the admin view names it)."""
    status, _, body = call("GET", f"{url}/admin/accounts", timeout=10)
    assert status == 200, body
    return json.loads(body)["worker"]


def pids_seen(url: str, connections: int = 40) -> set[int]:
    return {worker_of(url)["pid"] for _ in range(connections)}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_requests_spread_over_workers_and_a_crashed_worker_is_replaced(tmp_path: Path) -> None:
    stack = start(tmp_path, store_accounts=3, gateway_args=["--workers", "2"])
    try:
        pids = pids_seen(stack.gateway_url)
        assert len(pids) == 2, pids  # SO_REUSEPORT: the kernel spreads connections over both
        assert os.getpid() not in pids and stack.gateway.popen.pid not in pids  # the parent never serves
        victim = sorted(pids)[0]
        os.kill(victim, signal.SIGKILL)
        stack.gateway.wait_for_log("starting another")
        assert re.search(r'"sig":\s*9\b', stack.gateway.text())
        deadline = time.monotonic() + 20
        while True:
            now_seen = pids_seen(stack.gateway_url, 20)
            if len(now_seen) == 2 and victim not in now_seen:
                break
            assert time.monotonic() < deadline, now_seen
        assert not alive(victim)
    finally:
        stack.close()


def test_sigterm_drains_every_worker(tmp_path: Path) -> None:
    stack = start(tmp_path, store_accounts=3, event_delay=0.2, gateway_args=["--workers", "2"])
    try:
        pids = pids_seen(stack.gateway_url)
        assert len(pids) == 2
        streams = [StreamReader(stack.gateway_url, f"a long story {i}", path="/v1beta/models/gemini-3-flash:streamGenerateContent?alt=sse")
                   for i in range(8)]
        for s in streams:
            assert s.response.status == 200
            assert s.next_event() is not None  # every stream is under way
        stack.gateway.signal(signal.SIGTERM)
        for s in streams:  # each finishes its answer though the gateway is stopping
            events = s.rest()
            assert events and events[-1]["candidates"][0].get("finishReason") == "STOP", events[-1:]
        assert stack.gateway.wait(30) in (0, -signal.SIGTERM)  # twist re-raises the signal it stopped for
        assert not any(alive(p) for p in pids)
        assert stack.gateway.text().count("antigravity-gateway stopped") == 2  # both workers drained
    finally:
        stack.close()


def test_sighup_reaches_every_worker(tmp_path: Path) -> None:
    stack = start(tmp_path, store_accounts=1, gateway_args=["--workers", "2"])
    try:
        assert len(pids_seen(stack.gateway_url)) == 2
        stack.gateway.signal(signal.SIGHUP)
        stack.gateway.wait_for_log("reloading (SIGHUP)", count=2)
    finally:
        stack.close()


@pytest.mark.parametrize("listen", ["ssl:8443:privateKey=k.pem"])
def test_tls_listeners_are_refused_with_workers(tmp_path: Path, listen: str) -> None:
    from gateway import config
    from gateway.tap import check_startup

    settings = config.parse({"server": {"listen": [listen], "workers": 2}, "auth": {"mode": "strict", "keys": ["k"]},
                             "accounts": {"path": str(tmp_path / "a.json")}})
    with pytest.raises(config.ConfigError, match="server.workers.*TLS"):
        check_startup(settings)


SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")


@pytest.mark.skipif(SOCKET_ACTIVATE is None, reason="systemd-socket-activate is not installed (Debian package: systemd)")
def test_systemd_socket_activation_with_workers(tmp_path: Path) -> None:
    port = free_port()
    prefix = [SOCKET_ACTIVATE, "-l", f"127.0.0.1:{port}", "--fdname=http", "-E", "PYTHONPATH", "-E", "PYTHONUNBUFFERED"]
    stack = start(tmp_path, extra_toml='[auth]\nkeys = ["k-aaaaaaaaaaaaaaaa"]\n', prefix=prefix, gateway_port=port,
                  gateway_args=["--listen", "systemd:domain=INET:name=http", "--workers", "2"])
    try:
        headers = {"x-goog-api-key": "k-aaaaaaaaaaaaaaaa"}
        seen = set()
        for _ in range(40):  # one shared socket: both workers accept from it
            status, _, body = call("GET", f"{stack.gateway_url}/admin/accounts", headers=headers)
            assert status == 200, body
            seen.add(json.loads(body)["worker"]["index"])
        assert seen <= {0, 1} and seen
        status, _, body = call("POST", f"{stack.gateway_url}/v1beta/models/gemini-3-flash:generateContent", ask("Hi"), headers)
        assert status == 200, body
    finally:
        stack.close()


def test_the_parent_gives_up_with_status_1_when_workers_keep_dying(tmp_path: Path) -> None:
    stack = start(tmp_path, store_accounts=1, gateway_args=["--workers", "2"])
    try:
        killed: set[int] = set()
        deadline = time.monotonic() + 60
        while stack.gateway.popen.poll() is None:
            assert time.monotonic() < deadline, "the parent never gave up"
            try:
                pid = worker_of(stack.gateway_url)["pid"]
            except (OSError, AssertionError):
                time.sleep(0.05)  # between a death and its replacement
                continue
            if pid not in killed:
                killed.add(pid)
                os.kill(pid, signal.SIGKILL)
        assert stack.gateway.wait(10) == 1
        assert len(killed) >= 6  # the sixth death within 60 s is one too many
        assert "workers keep dying" in stack.gateway.text()
    finally:
        stack.close()


def test_workers_share_the_pool_through_redis(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tests.integration.services import RedisServer

    redis = RedisServer(tmp_path / "redis").start()
    shared = f'[shared]\nbackend = "redis"\nurl = "{redis.url}"\ndeadline = 2.0\n'
    stack = start(tmp_path, store_accounts=3, gateway_args=["--workers", "2"], extra_toml=shared)
    try:
        assert len(pids_seen(stack.gateway_url)) == 2
        stack.gateway.wait_for_log("instances share pool state", count=2)
        with ThreadPoolExecutor(max_workers=24) as pool:
            codes = list(pool.map(lambda i: call("POST", f"{stack.gateway_url}/v1beta/models/gemini-3-flash:generateContent",
                                                 ask(f"q{i}"), timeout=30)[0], range(48)))
        assert codes == [200] * 48
        stats = json.loads(call("GET", f"{stack.emulator_url}/_emulator/stats")[2])
        assert stats["token_refreshes"] == {f"user{i}@example.com": 1 for i in range(3)}, stats["token_refreshes"]
    finally:
        stack.close()
        redis.stop()
