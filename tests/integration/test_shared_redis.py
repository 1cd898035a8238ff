"""Several gateway processes on one Redis behave as one pool (issue 14).

Three ``twist`` gateways, each with its own copy of the account store (as on
three hosts), one emulator playing Google and one real redis-server.
"""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.integration.processes import (EMULATOR_ACCOUNTS, Process, ask, call, free_port, gateway_toml, spawn,
                                         wait_until_up)
from tests.integration.services import RedisServer, redis_command

MODEL = "gemini-3-flash"


class Fleet:
    def __init__(self, directory: Path, redis: RedisServer, emulator: Process, emulator_url: str) -> None:
        self.directory = directory
        self.redis = redis
        self.emulator = emulator
        self.emulator_url = emulator_url
        self.gateways: list[Process] = []
        self.urls: list[str] = []

    def add_gateway(self, extra: str = "", shared: str = "", tables: str = "", deadline: float = 2.0) -> str:
        return self.add_gateways(1, extra, shared, tables, deadline)[0]

    def add_gateways(self, count: int, extra: str = "", shared: str = "", tables: str = "", deadline: float = 2.0) -> list[str]:
        """``deadline``: generous by default, so a busy CI machine never makes Redis look down by accident."""
        """Start ``count`` gateways at once (each with its own store copy and config) and wait for all."""
        started = []
        for _ in range(count):
            n = len(self.gateways)
            home = self.directory / f"gw{n}"
            home.mkdir()
            store = home / "accounts.json"
            store.write_text(json.dumps({"accounts": [{"email": a["email"], "refresh_token": a["refresh_token"]}
                                                      for a in EMULATOR_ACCOUNTS]}))
            store.chmod(0o600)
            port = free_port()
            config = home / "gateway.toml"
            config.write_text(gateway_toml(f"tcp:{port}:interface=127.0.0.1", self.emulator_url, store,
                                           'selection = "least-recently-used"\n' + extra) + tables
                              + f'[shared]\nbackend = "redis"\nurl = "{self.redis.url}"\nprefix = "t:"\ndeadline = {deadline}\n'
                              + 'retry_seconds = 0.2\n' + shared)
            gateway = spawn(f"gateway{n}", ["antigravity-gateway", "--config", str(config)], home)
            self.gateways.append(gateway)
            url = f"http://127.0.0.1:{port}"
            self.urls.append(url)
            started.append((url, gateway))
        for url, gateway in started:
            wait_until_up(f"{url}/healthz", [gateway])
        return [url for url, _ in started]

    def emulator_stats(self) -> dict[str, Any]:
        return json.loads(call("GET", f"{self.emulator_url}/_emulator/stats")[2])

    def fault(self, **spec: Any) -> None:
        status, _, body = call("POST", f"{self.emulator_url}/_emulator/faults", spec)
        assert status == 200, body

    def generations(self) -> list[dict[str, Any]]:
        return json.loads(call("GET", f"{self.emulator_url}/_emulator/requests?method=generateContent")[2])["requests"]

    def admin(self, i: int) -> dict[str, Any]:
        status, _, body = call("GET", f"{self.urls[i]}/admin/accounts")
        assert status == 200, body
        return json.loads(body)

    def close(self) -> None:
        for g in self.gateways:  # all drain at once
            if g.popen.poll() is None:
                g.signal(signal.SIGTERM)
        for g in self.gateways:
            g.stop()
        self.emulator.stop()
        self.redis.stop()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    redis = RedisServer(tmp_path / "redis").start()
    port = free_port()
    (tmp_path / "seed.json").write_text(json.dumps({"accounts": EMULATOR_ACCOUNTS}))
    emulator = spawn("emulator", ["antigravity-emulator", "--port", str(port), "--seed", str(tmp_path / "seed.json")], tmp_path)
    url = f"http://127.0.0.1:{port}"
    f = Fleet(tmp_path, redis, emulator, url)
    try:
        wait_until_up(f"{url}/_emulator/health", [emulator])
        yield f
    finally:
        f.close()


def generate(url: str, text: str = "hello", headers: dict[str, str] | None = None, model: str = MODEL) -> tuple[int, dict[str, str], bytes]:
    return call("POST", f"{url}/v1beta/models/{model}:generateContent", ask(text), headers=headers, timeout=30)


def test_120_concurrent_requests_over_3_instances_refresh_and_discover_each_account_once(fleet: Fleet) -> None:
    urls = fleet.add_gateways(3)
    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(lambda i: generate(urls[i % 3], f"question {i}")[0], range(120)))
    assert results == [200] * 120
    stats = fleet.emulator_stats()
    assert stats["token_refreshes"] == {a["email"]: 1 for a in EMULATOR_ACCOUNTS}, stats["token_refreshes"]
    assert stats["requests"]["loadCodeAssist"] == 3, stats["requests"]  # one project discovery per account too
    for i in range(3):
        assert fleet.admin(i)["shared"]["up"] is True


def test_a_cooldown_learned_by_one_instance_is_honoured_by_the_others(fleet: Fleet) -> None:
    a, b = fleet.add_gateways(2)
    fleet.fault(method="generateContent", email="user0@example.com", status=429, reason="RATE_LIMIT_EXCEEDED",
                retry_delay=300, times=-1)
    # Instance A meets the rate limit on user0 (whichever account it tries first, it ends on another).
    for i in range(3):
        assert generate(a, f"warm {i}")[0] == 200
    assert any(r.get("email") == "user0@example.com" for r in fleet.generations())
    before = len(fleet.generations())
    # Instance B never tries user0 again: the very next requests go elsewhere.
    for i in range(6):
        assert generate(b, f"after {i}")[0] == 200
    tried = [r.get("email") for r in fleet.generations()[before:]]
    assert "user0@example.com" not in tried, tried
    # A rate limit this long rests the model on that account (PROTOCOL.md 2b), or the whole account.
    [user0] = [acc for acc in fleet.admin(1)["accounts"] if acc["email"] == "user0@example.com"]
    assert user0["state"] == "cooling" or user0["cooldowns"], user0


def test_a_sticky_session_holds_across_instances(fleet: Fleet) -> None:
    urls = fleet.add_gateways(3, 'session_ttl = 600\nsession_header = "x-session"\n')
    before = len(fleet.generations())
    for i in range(9):
        assert generate(urls[i % 3], f"turn {i}", headers={"x-session": "conversation-1"})[0] == 200
    emails = {r.get("email") for r in fleet.generations()[before:]}
    assert len(emails) == 1, emails


def test_key_limits_hold_across_instances(fleet: Fleet, tmp_path: Path) -> None:
    from gateway.team import operations
    from gateway.team.sqlite_store import SQLiteStore

    team_store = tmp_path / "team.sqlite3"  # one team store (on several hosts: PostgreSQL), one Redis count
    store = SQLiteStore(str(team_store))
    secret, _ = operations.create(store, "alice", time.time(), rpm=4)
    store.close()
    tables = f'[auth]\nstrategy = "keys"\nmode = "all_except_health"\n[team]\nstore = "{team_store}"\n'
    urls = fleet.add_gateways(2, tables=tables)
    codes = [generate(urls[i % 2], f"q {i}", headers={"x-goog-api-key": secret})[0] for i in range(6)]
    assert codes[:4] == [200] * 4 and codes[4:] == [429, 429], codes
    status, headers, body = generate(urls[1], "one more", headers={"x-goog-api-key": secret})
    assert status == 429 and "across all gateway instances" in json.loads(body)["error"]["message"], body
    assert int(headers["retry-after"]) >= 1


def test_redis_killed_mid_run_then_restarted_empty(fleet: Fleet) -> None:
    a, b = fleet.add_gateways(2, deadline=0.5)
    assert generate(a, "warm")[0] == 200 and generate(b, "warm")[0] == 200
    fleet.redis.stop()
    # The policy: both keep serving from local state, no request waits past the deadline (0.5 s) plus the answer.
    for i in range(6):
        started = time.monotonic()
        assert generate((a, b)[i % 2], f"while down {i}")[0] == 200
        assert time.monotonic() - started < 5.0
    down = fleet.admin(0)["shared"]
    assert down["up"] is False and down["error"], down
    metrics = call("GET", f"{a}/metrics")[2]
    assert b'antigravity_gateway_shared_backend_up{backend="redis"} 0.0' in metrics
    fleet.gateways[0].wait_for_log("serving from this instance's local state")
    # A cooldown learned while Redis is down is re-told when it comes back empty.
    fleet.fault(method="generateContent", email="user1@example.com", status=429, reason="RATE_LIMIT_EXCEEDED",
                retry_delay=300, times=-1)
    for i in range(3):
        assert generate(a, f"meet the limit {i}")[0] == 200
    fleet.redis.start()
    fleet.gateways[0].wait_for_log("instances share pool state", count=2)
    fleet.gateways[1].wait_for_log("instances share pool state", count=2)
    fields = redis_command(fleet.redis.port, "HKEYS", "t:{pool}:cooldowns")
    assert b"user1@example.com" in fields, fields
    before = len(fleet.generations())
    for i in range(6):
        assert generate(b, f"after restart {i}")[0] == 200
    tried = [r.get("email") for r in fleet.generations()[before:]]
    assert "user1@example.com" not in tried, tried
    assert fleet.admin(1)["shared"]["up"] is True


def test_script_flush_reloads_the_scripts(fleet: Fleet) -> None:
    a = fleet.add_gateway()
    fleet.gateways[0].wait_for_log("instances share pool state")
    assert generate(a, "first")[0] == 200  # the selection script is loaded now
    assert redis_command(fleet.redis.port, "SCRIPT", "FLUSH").startswith(b"+OK")
    assert generate(a, "after flush")[0] == 200
    status = fleet.admin(0)["shared"]
    assert status["up"] is True and status["scripts_reloaded"] >= 1 and status["local_fallbacks"] == 0, status


def test_a_redis_that_stops_answering_never_holds_a_request_past_the_deadline(fleet: Fleet) -> None:
    a = fleet.add_gateway(deadline=0.5)
    assert generate(a, "warm")[0] == 200
    assert fleet.redis.popen is not None
    os.kill(fleet.redis.popen.pid, signal.SIGSTOP)  # connected, silent: only the deadline (0.5 s) helps
    try:
        for i in range(4):
            started = time.monotonic()
            assert generate(a, f"while silent {i}")[0] == 200
            assert time.monotonic() - started < 3.0  # one deadline at most, not a hang
        status = fleet.admin(0)["shared"]
        assert status["up"] is False and "0.5s" in status["error"], status
    finally:
        os.kill(fleet.redis.popen.pid, signal.SIGCONT)
    fleet.gateways[0].wait_for_log("instances share pool state", count=2)
    assert generate(a, "after")[0] == 200


def test_a_quota_snapshot_fetched_by_one_instance_serves_the_others(fleet: Fleet) -> None:
    urls = fleet.add_gateways(3)
    for g in fleet.gateways:
        g.wait_for_log("instances share pool state")
    before = fleet.emulator_stats()["requests"].get("fetchAvailableModels", 0)
    for url in urls:  # the models list asks every account's fetchAvailableModels
        status, _, body = call("GET", f"{url}/v1beta/models")
        assert status == 200 and json.loads(body)["models"], body
    fetched = fleet.emulator_stats()["requests"].get("fetchAvailableModels", 0) - before
    assert fetched == 3, fetched  # one per account, not one per account per instance
    quota = {a["email"]: a["quota_updated"] for a in fleet.admin(2)["accounts"]}
    assert all(quota.values()), quota  # the third instance holds the snapshots it never fetched
