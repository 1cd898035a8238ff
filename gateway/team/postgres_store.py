"""The team store in PostgreSQL (psycopg 3): the same keys and usage rows, shared by several gateway hosts.

Same contract as ``SQLiteStore`` (``IKeyStore``, ``IUsageStore``): every call
blocks, so the gateway calls it only off the reactor thread (the usage
writer's thread, ``deferToThread``); one connection per thread, autocommit
outside explicit transactions. The schema is created under an advisory lock
so several instances starting at once do not race.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from zope.interface import implementer

from gateway.team.interfaces import IKeyStore, IUsageStore
from gateway.team.keys import KeyRecord
from gateway.team.sqlite_store import StoreProblem
from gateway.team.usage import COLUMNS, GROUPS, UsageRow

SCHEMA_LOCK = 0x61677731  # pg_advisory_xact_lock key: "agw1"
SCHEMA = [
    """CREATE TABLE IF NOT EXISTS keys (
        name TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, created DOUBLE PRECISION NOT NULL, expires DOUBLE PRECISION,
        rpm INTEGER NOT NULL DEFAULT 0, tokens_per_day BIGINT NOT NULL DEFAULT 0,
        models TEXT NOT NULL DEFAULT '[]', note TEXT NOT NULL DEFAULT '', revoked DOUBLE PRECISION)""",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    "INSERT INTO meta (name, value) VALUES ('keys_version', 0) ON CONFLICT (name) DO NOTHING",
    """CREATE TABLE IF NOT EXISTS usage (
        id BIGSERIAL PRIMARY KEY, time DOUBLE PRECISION NOT NULL, key TEXT, account TEXT, requested_model TEXT,
        model TEXT, door TEXT NOT NULL, route TEXT NOT NULL, status INTEGER NOT NULL,
        prompt_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL, thought_tokens BIGINT NOT NULL,
        cached_tokens BIGINT NOT NULL, latency_ms DOUBLE PRECISION NOT NULL, attempts INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS usage_time ON usage (time)",
]

_DAY = "to_char(to_timestamp(time) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
_GROUP_SQL = {
    "key": "COALESCE(key, '(none)')",
    "account": "COALESCE(account, '(none)')",
    "model": "COALESCE(model, '(none)')",
    "door": "door",
    "route": "route",
    "day": _DAY,
}
_TOTALS = (
    "COUNT(*) AS requests, SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors, SUM(prompt_tokens) AS prompt_tokens, "
    "SUM(output_tokens) AS output_tokens, SUM(thought_tokens) AS thought_tokens, SUM(cached_tokens) AS cached_tokens, "
    "SUM(prompt_tokens + output_tokens + thought_tokens) AS total_tokens, AVG(latency_ms) AS avg_latency_ms"
)


def safe_url(url: str) -> str:
    """The URL without its password (for logs, /admin, errors)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


@implementer(IKeyStore, IUsageStore)
class PostgresStore:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        self._local = threading.local()
        conn = self._connect()  # fail early, create the schema
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            for statement in SCHEMA:
                conn.execute(statement)

    def describe(self) -> str:
        return safe_url(self.url)

    def _connect(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed:
            return conn
        try:
            import psycopg
            from psycopg.rows import dict_row
        except ImportError:
            raise StoreProblem("[store] url names PostgreSQL but psycopg is not installed: "
                               "pip install 'antigravity-gateway[postgres]'") from None
        try:
            conn = psycopg.connect(self.url, autocommit=True, row_factory=dict_row, connect_timeout=int(self.timeout))
        except psycopg.Error as e:
            raise StoreProblem(f"cannot open the team store {self.describe()}: {str(e).strip()}") from None
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
        return int(row["value"]) if row else 0

    def put_key(self, record: KeyRecord) -> None:
        conn = self._connect()
        with conn.transaction():
            conn.execute(
                "INSERT INTO keys (name, hash, created, expires, rpm, tokens_per_day, models, note, revoked) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET hash = EXCLUDED.hash, "
                "created = EXCLUDED.created, expires = EXCLUDED.expires, rpm = EXCLUDED.rpm, "
                "tokens_per_day = EXCLUDED.tokens_per_day, models = EXCLUDED.models, note = EXCLUDED.note, "
                "revoked = EXCLUDED.revoked",
                (record.name, record.hash, record.created, record.expires, record.rpm, record.tokens_per_day,
                 json.dumps(list(record.models)), record.note, record.revoked),
            )
            conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'keys_version'")

    # -- usage --

    def insert(self, rows: list[UsageRow]) -> None:
        if not rows:
            return
        conn = self._connect()
        marks = ", ".join("%s" for _ in COLUMNS)
        with conn.transaction():
            with conn.cursor() as cursor:
                cursor.executemany(f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES ({marks})", [r.as_tuple() for r in rows])

    def summary(self, since: float, by: str) -> list[dict[str, Any]]:
        group = _group(by)
        order = "grp" if by == "day" else "total_tokens DESC, requests DESC"
        rows = self._connect().execute(
            f"SELECT {group} AS grp, {_TOTALS} FROM usage WHERE time >= %s GROUP BY grp ORDER BY {order}", (since,)
        ).fetchall()
        return [_totals(r, group=r["grp"]) for r in rows]

    def series(self, since: float, by: str) -> list[dict[str, Any]]:
        group = _group(by)
        rows = self._connect().execute(
            f"SELECT {_DAY} AS day, {group} AS grp, {_TOTALS} "
            "FROM usage WHERE time >= %s GROUP BY day, grp ORDER BY day, grp", (since,)
        ).fetchall()
        return [_totals(r, day=r["day"], group=r["grp"]) for r in rows]

    def tokens_since(self, since: float) -> dict[str, int]:
        rows = self._connect().execute(
            "SELECT key, SUM(prompt_tokens + output_tokens + thought_tokens) AS total FROM usage "
            "WHERE time >= %s AND key IS NOT NULL GROUP BY key", (since,)
        ).fetchall()
        return {r["key"]: int(r["total"] or 0) for r in rows}

    def count(self) -> int:
        return int(self._connect().execute("SELECT COUNT(*) AS n FROM usage").fetchone()["n"])

    def prune(self, before: float) -> int:
        conn = self._connect()
        with conn.transaction():
            return conn.execute("DELETE FROM usage WHERE time < %s", (before,)).rowcount


def _group(by: str) -> str:
    if by not in _GROUP_SQL:
        raise ValueError(f"cannot group usage by {by!r}: use one of {', '.join(GROUPS)}")
    return _GROUP_SQL[by]


def _totals(row: dict[str, Any], **extra: Any) -> dict[str, Any]:
    out = dict(extra)
    for name in ("requests", "errors", "prompt_tokens", "output_tokens", "thought_tokens", "cached_tokens", "total_tokens"):
        out[name] = int(row[name] or 0)
    out["avg_latency_ms"] = round(float(row["avg_latency_ms"] or 0.0), 1)
    return out
