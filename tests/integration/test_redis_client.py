"""The small Redis client and the scripts against a real redis-server, in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor

from gateway.shared import scripts
from gateway.shared.resp import RedisClient, RedisError, RedisUnavailable, parse_url
from tests.integration.services import RedisServer


@pytest.fixture
def redis(tmp_path: Path) -> Any:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest_twisted.ensureDeferred
async def test_a_holder_whose_lock_expired_cannot_overwrite_the_next_holders_token(redis: RedisServer) -> None:
    client = RedisClient(reactor, parse_url(redis.url), deadline=2.0)
    try:
        keys = ["fence", "lock", "value"]
        first = await client.script(scripts.LOCK, keys, [50, ""])
        assert first == 1
        assert await client.script(scripts.LOCK, keys, [50, ""]) == 0  # held
        await client.call("PEXPIRE", "lock", 1)  # the first holder stalls past its lock
        while await client.call("EXISTS", "lock"):
            pass
        second = await client.script(scripts.LOCK, keys, [5000, ""])
        assert second == 2
        assert await client.script(scripts.WRITE_TOKEN, ["lock", "value"], [second, "new", 60000]) == 1
        assert await client.script(scripts.WRITE_TOKEN, ["lock", "value"], [first, "old", 60000]) == 0
        assert await client.call("GET", "value") == b"new"
        assert await client.script(scripts.LOCK, keys, [50, ""]) == -1  # a value appeared since "" was seen
    finally:
        client.stop()


@pytest_twisted.ensureDeferred
async def test_noscript_reloads_and_errors_and_down_are_told_apart(redis: RedisServer) -> None:
    client = RedisClient(reactor, parse_url(redis.url), deadline=2.0, retry_seconds=60)
    try:
        assert await client.script("return 7", [], []) == 7
        await client.call("SCRIPT", "FLUSH")
        assert await client.script("return 7", [], []) == 7 and client.scripts_reloaded == 1
        with pytest.raises(RedisError):
            await client.call("NOSUCHCOMMAND")
        assert client.up
        redis.stop()
        with pytest.raises(RedisUnavailable):
            await client.call("PING")
        assert not client.up and client.error
        with pytest.raises(RedisUnavailable):  # fails at once while down, no wait
            await client.call("PING")
    finally:
        client.stop()


@pytest_twisted.ensureDeferred
async def test_password_is_sent_and_a_wrong_one_is_a_clear_refusal(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        from tests.integration.services import redis_command

        assert redis_command(server.port, "CONFIG", "SET", "requirepass", "s3cret").startswith(b"+OK")
        good = RedisClient(reactor, parse_url(f"redis://:s3cret@127.0.0.1:{server.port}/1"), deadline=2.0)
        assert await good.connect() and await good.call("SET", "k", "v") == "OK"
        good.stop()
        bad = RedisClient(reactor, parse_url(f"redis://:wrong@127.0.0.1:{server.port}/0"), deadline=2.0, retry_seconds=60)
        assert not await bad.connect()
        assert "refused the login" in (bad.error or "") and "wrong" not in (bad.error or "")
        bad.stop()
    finally:
        server.stop()
