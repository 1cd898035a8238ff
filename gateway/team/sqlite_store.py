"""The team store in one SQLite file (standard library): keys and usage rows.

WAL journal (readers never block the writer), ``synchronous=NORMAL`` (a
process crash loses nothing committed; the file is never corrupt), each
batch of rows in one transaction. One connection per thread: the store is
called from the usage writer's thread, from ``deferToThread`` and from the
command-line tool, never from the reactor thread while serving.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from typing import Any

from zope.interface import implementer

from gateway.team.interfaces import IKeyStore, IUsageStore
from gateway.team.keys import KeyRecord
from gateway.team.usage import COLUMNS, GROUPS, UsageRow

SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    name TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, created REAL NOT NULL, expires REAL,
    rpm INTEGER NOT NULL DEFAULT 0, tokens_per_day INTEGER NOT NULL DEFAULT 0,
    models TEXT NOT NULL DEFAULT '[]', note TEXT NOT NULL DEFAULT '', revoked REAL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('keys_version', 0);
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY, time REAL NOT NULL, key TEXT, account TEXT, requested_model TEXT, model TEXT,
    door TEXT NOT NULL, route TEXT NOT NULL, status INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, thought_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL, latency_ms REAL NOT NULL, attempts INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_time ON usage (time);
"""

_GROUP_SQL = {
    "key": "COALESCE(key, '(none)')",
    "account": "COALESCE(account, '(none)')",
    "model": "COALESCE(model, '(none)')",
    "door": "door",
    "route": "route",
    "day": "strftime('%Y-%m-%d', time, 'unixepoch')",
}
_TOTALS = (
    "COUNT(*) AS requests, SUM(status >= 400) AS errors, SUM(prompt_tokens) AS prompt_tokens, "
    "SUM(output_tokens) AS output_tokens, SUM(thought_tokens) AS thought_tokens, SUM(cached_tokens) AS cached_tokens, "
    "SUM(prompt_tokens + output_tokens + thought_tokens) AS total_tokens, AVG(latency_ms) AS avg_latency_ms"
)


class StoreProblem(Exception):
    """The store cannot be used; ``str()`` says which file and why."""



#: Rows per INSERT: under SQLite's oldest default limit of 999 bound values per statement.
ROWS_PER_INSERT = 999 // len(COLUMNS)


def insert_statements(rows: list[UsageRow]) -> list[tuple[str, list[Any]]]:
    """Multi-row INSERTs for ``rows``, ``ROWS_PER_INSERT`` at a time.

    ``executemany`` steps SQLite once per row, and every step releases the GIL
    and takes it back: with a batch of 200 rows that is 400 handoffs between
    the writer thread and the reactor thread, each a futex wake-up (strace:
    3,400 futex calls a second at 2,000 requests/s). One statement per 71
    rows hands it over a few times per batch.
    """
    one = "(" + ", ".join("?" for _ in COLUMNS) + ")"
    head = f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES "
    out = []
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start:start + ROWS_PER_INSERT]
        out.append((head + ", ".join([one] * len(chunk)), [value for row in chunk for value in row.as_tuple()]))
    return out

@implementer(IKeyStore, IUsageStore)
class SQLiteStore:
    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self._local = threading.local()
        self._connect()  # fail early, create the schema

    def describe(self) -> str:
        return self.path

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            if self.path != ":memory:":
                os.makedirs(directory, exist_ok=True)
            if self.path != ":memory:" and not os.path.exists(self.path):
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))  # key hashes and usage: owner only
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise StoreProblem(f"cannot open the team store {self.path}: {e}") from None
        self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- keys --

    def keys(self) -> list[KeyRecord]:
        rows = self._connect().execute("SELECT * FROM keys ORDER BY name").fetchall()
        return [
            KeyRecord(r["name"], r["hash"], r["created"], r["expires"], r["rpm"], r["tokens_per_day"],
                      tuple(json.loads(r["models"] or "[]")), r["note"], r["revoked"])
            for r in rows
        ]

    def keys_version(self) -> int:
        row = self._connect().execute("SELECT value FROM meta WHERE name = 'keys_version'").fetchone()
        return int(row[0]) if row else 0

    def put_key(self, record: KeyRecord) -> None:
        conn = self._connect()
        with _transaction(conn):
            conn.execute(
                "INSERT OR REPLACE INTO keys (name, hash, created, expires, rpm, tokens_per_day, models, note, revoked) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.name, record.hash, record.created, record.expires, record.rpm, record.tokens_per_day,
                 json.dumps(list(record.models)), record.note, record.revoked),
            )
            conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'keys_version'")

    # -- usage --

    def insert(self, rows: list[UsageRow]) -> None:
        if not rows:
            return
        conn = self._connect()
        with _transaction(conn):
            for statement, values in insert_statements(rows):
                conn.execute(statement, values)

    def summary(self, since: float, by: str) -> list[dict[str, Any]]:
        group = _group(by)
        order = "grp" if by == "day" else "total_tokens DESC, requests DESC"
        rows = self._connect().execute(
            f"SELECT {group} AS grp, {_TOTALS} FROM usage WHERE time >= ? GROUP BY grp ORDER BY {order}", (since,)
        ).fetchall()
        return [_totals(r, group=r["grp"]) for r in rows]

    def series(self, since: float, by: str) -> list[dict[str, Any]]:
        group = _group(by)
        rows = self._connect().execute(
            f"SELECT strftime('%Y-%m-%d', time, 'unixepoch') AS day, {group} AS grp, {_TOTALS} "
            "FROM usage WHERE time >= ? GROUP BY day, grp ORDER BY day, grp", (since,)
        ).fetchall()
        return [_totals(r, day=r["day"], group=r["grp"]) for r in rows]

    def tokens_since(self, since: float) -> dict[str, int]:
        rows = self._connect().execute(
            "SELECT key, SUM(prompt_tokens + output_tokens + thought_tokens) FROM usage "
            "WHERE time >= ? AND key IS NOT NULL GROUP BY key", (since,)
        ).fetchall()
        return {r[0]: int(r[1] or 0) for r in rows}

    def count(self) -> int:
        return int(self._connect().execute("SELECT COUNT(*) FROM usage").fetchone()[0])

    def prune(self, before: float) -> int:
        conn = self._connect()
        with _transaction(conn):
            return conn.execute("DELETE FROM usage WHERE time < ?", (before,)).rowcount


def _group(by: str) -> str:
    if by not in _GROUP_SQL:
        raise ValueError(f"cannot group usage by {by!r}: use one of {', '.join(GROUPS)}")
    return _GROUP_SQL[by]


def _totals(row: sqlite3.Row, **extra: Any) -> dict[str, Any]:
    out = dict(extra)
    for name in ("requests", "errors", "prompt_tokens", "output_tokens", "thought_tokens", "cached_tokens", "total_tokens"):
        out[name] = int(row[name] or 0)
    out["avg_latency_ms"] = round(float(row["avg_latency_ms"] or 0.0), 1)
    return out


class _transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (rollback on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        self.conn.execute("ROLLBACK" if kind else "COMMIT")
