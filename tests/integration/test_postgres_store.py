"""The PostgreSQL team store behaves as the SQLite one: same keys, same usage totals, shared by instances."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from gateway.team.keys import KeyRecord
from gateway.team.sqlite_store import SQLiteStore, StoreProblem
from gateway.team.usage import UsageRow
from tests.integration.services import PostgresServer

DAY = 86400.0


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    pytest.importorskip("psycopg", reason="psycopg is in the test extras (pip install -e .[test])")
    server = PostgresServer(tmp_path_factory.mktemp("pg"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        s: Any = SQLiteStore(str(tmp_path / "team.sqlite3"))
    else:
        from gateway.team.postgres_store import PostgresStore

        s = PostgresStore(request.getfixturevalue("postgres").fresh_database())
    yield s
    s.close()


def row(t: float, key: str, model: str = "gemini-3-flash", prompt: int = 10, status: int = 200) -> UsageRow:
    return UsageRow(t, key, "a@x", model, model, "gemini", "generateContent", status, prompt, 4, 2, 1, 12.5, 1)


def test_both_stores_total_usage_the_same_way(store: Any) -> None:
    now = 100 * DAY + 3600
    store.insert([row(now - 2 * DAY, "alice"), row(now, "alice", prompt=20), row(now, "bob", model="claude-sonnet-4-6", status=429)])
    by_key = {r["group"]: r for r in store.summary(0, "key")}
    assert by_key["alice"]["requests"] == 2 and by_key["alice"]["prompt_tokens"] == 30
    assert by_key["alice"]["total_tokens"] == 30 + 8 + 4
    assert by_key["bob"]["errors"] == 1 and by_key["bob"]["avg_latency_ms"] == 12.5
    assert [r["group"] for r in store.summary(0, "day")] == ["1970-04-09", "1970-04-11"]
    assert [(r["group"], r["requests"]) for r in store.summary(0, "route")] == [("generateContent", 3)]
    assert [(r["day"], r["group"]) for r in store.series(0, "key")] == [("1970-04-09", "alice"), ("1970-04-11", "alice"), ("1970-04-11", "bob")]
    assert store.tokens_since(now - 60) == {"alice": 26, "bob": 16}
    assert store.prune(now - DAY) == 1
    assert store.count() == 2
    with pytest.raises(ValueError):
        store.summary(0, "colour")


def test_both_stores_version_keys(store: Any) -> None:
    before = store.keys_version()
    store.put_key(KeyRecord("alice", "h1", 1.0, models=("gemini-*",), rpm=5))
    store.put_key(KeyRecord("alice", "h2", 1.0, models=("gemini-*",), rpm=7))  # replaced by name
    assert store.keys_version() == before + 2
    [alice] = store.keys()
    assert (alice.hash, alice.rpm, alice.models) == ("h2", 7, ("gemini-*",))


def test_postgres_store_is_shared_by_instances_and_threads(postgres: PostgresServer) -> None:
    from gateway.team.postgres_store import PostgresStore

    url = postgres.fresh_database()
    stores = [PostgresStore(url) for _ in range(3)]  # three instances starting at once
    stores[0].put_key(KeyRecord("carol", "h", 1.0))
    assert [k.name for k in stores[2].keys()] == ["carol"]
    done = []

    def write(s: Any, n: int) -> None:
        s.insert([row(float(i), f"k{n}") for i in range(50)])
        done.append(n)
        s.close()

    threads = [threading.Thread(target=write, args=(s, n)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(done) == [0, 1, 2] and stores[1].count() == 150
    assert "@" not in stores[0].describe() or "agw@" in stores[0].describe()


def test_an_unreachable_postgres_says_where_and_why() -> None:
    pytest.importorskip("psycopg")
    from gateway.team.postgres_store import PostgresStore

    with pytest.raises(StoreProblem, match="cannot open the team store postgresql://agw@127.0.0.1:1/none"):
        PostgresStore("postgresql://agw:secret@127.0.0.1:1/none", timeout=2)


def test_two_gateways_record_usage_in_one_postgres_and_share_its_keys(postgres: PostgresServer, tmp_path: Path) -> None:
    import time

    from gateway.team import operations
    from gateway.team.postgres_store import PostgresStore
    from tests.integration.processes import ask, call, free_port, spawn, start, wait_until_up

    url = postgres.fresh_database()
    store = PostgresStore(url)
    secret, _ = operations.create(store, "dana", time.time())
    tables = (f'[auth]\nstrategy = "keys"\nmode = "all_except_health"\n[team]\nflush_seconds = 0.05\n'
              f'[store]\nurl = "{url}"\n')
    stack = start(tmp_path, store_accounts=3, extra_toml=tables)
    second = None
    try:
        port = free_port()
        config = tmp_path / "second.toml"
        config.write_text(stack.config.read_text().replace(stack.gateway_url.rsplit(":", 1)[1] + ":interface", f"{port}:interface", 1))
        second = spawn("second", ["antigravity-gateway", "--config", str(config)], tmp_path)
        wait_until_up(f"http://127.0.0.1:{port}/healthz", [second])
        for base in (stack.gateway_url, f"http://127.0.0.1:{port}"):  # the key made in PostgreSQL works on both
            status, _, body = call("POST", f"{base}/v1beta/models/gemini-3-flash:generateContent", ask("hi"),
                                   headers={"x-goog-api-key": secret})
            assert status == 200, body
        deadline = time.monotonic() + 15
        while store.count() < 2:
            assert time.monotonic() < deadline, "usage rows never reached PostgreSQL"
            time.sleep(0.05)
        [dana] = store.summary(0, "key")
        assert dana["group"] == "dana" and dana["requests"] == 2 and dana["total_tokens"] > 0
    finally:
        if second is not None:
            second.stop()
        stack.close()
        store.close()
