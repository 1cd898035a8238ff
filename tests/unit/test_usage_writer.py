"""The usage store and writer: batching, grouping, retention, and crash safety (kill -9 mid-batch)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from gateway.team.keys import KeyRecord
from gateway.team.sqlite_store import SQLiteStore
from gateway.team.usage import UsageRow, render_table, parse_since
from gateway.team.writer import UsageWriter

DAY = 86400.0


def row(t: float, key: str = "alice", model: str = "gemini-3-flash", prompt: int = 10, output: int = 5, status: int = 200) -> UsageRow:
    return UsageRow(t, key, "user0@example.com", model, model, "gemini", "generateContent", status, prompt, output, 1, 2, 12.5, 1)


class CountingStore:
    """Records the batches it is handed (each call is one transaction in the real store)."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.closed = False

    def insert(self, rows: list) -> None:
        self.batches.append(len(rows))

    def close(self) -> None:
        self.closed = True


def test_rows_are_handed_over_in_batches() -> None:
    store = CountingStore()
    writer = UsageWriter(store, batch_size=3)
    for i in range(7):
        writer.add(row(i))
    done = threading.Event()
    writer.flush(lambda _: done.set())
    assert done.wait(5)
    assert store.batches == [3, 3, 1]  # two full batches at once, the rest on flush
    writer.stop()
    assert store.closed


def test_nothing_is_written_until_a_batch_is_full_or_ticked() -> None:
    store = CountingStore()
    writer = UsageWriter(store, batch_size=100)
    writer.add(row(1))
    writer.add(row(2))
    done = threading.Event()
    writer.run_in_thread(lambda: None, lambda _: done.set())
    assert done.wait(5)
    assert store.batches == []
    writer.tick()
    writer.stop()
    assert store.batches == [2]


def test_store_groups_and_prunes(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "team.sqlite3"))
    now = 100 * DAY + 3600
    store.insert([row(now - 2 * DAY, "alice"), row(now, "alice", prompt=20), row(now, "bob", model="claude-sonnet-4-6", status=429)])
    by_key = {r["group"]: r for r in store.summary(0, "key")}
    assert by_key["alice"]["requests"] == 2 and by_key["alice"]["prompt_tokens"] == 30
    assert by_key["alice"]["total_tokens"] == 30 + 10 + 2  # prompt + output + thought
    assert by_key["bob"]["errors"] == 1
    assert [r["group"] for r in store.summary(0, "day")] == ["1970-04-09", "1970-04-11"]
    assert {r["group"] for r in store.summary(now - DAY, "model")} == {"gemini-3-flash", "claude-sonnet-4-6"}
    assert store.tokens_since(now - 60) == {"alice": 26, "bob": 16}
    assert store.prune(now - DAY) == 1
    assert store.count() == 2
    assert "alice" in render_table(store.summary(0, "key"), "key")
    assert (os.stat(tmp_path / "team.sqlite3").st_mode & 0o777) == 0o600


def test_keys_version_moves_on_every_change(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "team.sqlite3"))
    before = store.keys_version()
    store.put_key(KeyRecord("alice", "h1", 1.0, models=("gemini-*",)))
    other = SQLiteStore(str(tmp_path / "team.sqlite3"))  # another process's view
    assert other.keys_version() == before + 1
    assert other.keys()[0].models == ("gemini-*",)


def test_parse_since() -> None:
    assert parse_since("7d", 1000 * DAY) == 993 * DAY
    assert parse_since("1970-01-02", 0) == DAY


CRASHER = textwrap.dedent(
    """
    import sys
    from gateway.team.sqlite_store import SQLiteStore
    from gateway.team.usage import UsageRow
    from gateway.team.writer import UsageWriter
    writer = UsageWriter(SQLiteStore(sys.argv[1]), batch_size=int(sys.argv[2]))
    print("ready", flush=True)
    n = 0
    while True:  # the gateway's side: add rows; the writer's thread commits each full batch
        writer.add(UsageRow(float(n), "k", "a", "m", "m", "gemini", "generateContent", 200, 1, 1, 0, 0, 1.0, 1))
        n += 1
        if writer._queue.qsize() > 4:  # do not outrun the disk without bound
            import time; time.sleep(0.001)
    """
)


def test_kill_9_mid_batch_loses_at_most_that_batch_and_never_corrupts(tmp_path: Path) -> None:
    path = tmp_path / "team.sqlite3"
    batch = 500
    child = subprocess.Popen([sys.executable, "-c", CRASHER, str(path), str(batch)], stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 20
        reader = SQLiteStore(str(path))
        while reader.count() < 5 * batch:  # several batches committed: the writer is busy in a loop
            assert time.monotonic() < deadline, "the writer process committed nothing"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(10)
    conn = sqlite3.connect(str(path))
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    reopened = SQLiteStore(str(path))
    count = reopened.count()
    assert count >= 5 * batch and count % batch == 0  # whole batches only: the one being written is all or nothing
    reopened.insert([row(1.0)])  # and the file takes writes again
    assert reopened.count() == count + 1


def test_a_batch_is_inserted_in_few_multi_row_statements_and_reads_back_whole(tmp_path: Path) -> None:
    from gateway.team.sqlite_store import ROWS_PER_INSERT, insert_statements

    rows = [row(1000.0 + i, key=f"k{i % 3}", prompt=i, output=2 * i) for i in range(2 * ROWS_PER_INSERT + 5)]
    statements = insert_statements(rows)
    assert [len(values) for _, values in statements] == [len(UsageRow._fields) * n for n in (ROWS_PER_INSERT, ROWS_PER_INSERT, 5)]
    assert all(len(values) <= 999 for _, values in statements)
    store = SQLiteStore(str(tmp_path / "team.sqlite3"))
    store.insert(rows)
    with sqlite3.connect(tmp_path / "team.sqlite3") as conn:
        stored = conn.execute("SELECT * FROM usage ORDER BY time").fetchall()
    assert [tuple(r)[-len(UsageRow._fields):] for r in stored] == [r.as_tuple() for r in rows]
