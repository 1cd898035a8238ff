"""The team store as zope interfaces, so a shared database (PostgreSQL) can replace SQLite.

Every method blocks: callers run them off the reactor thread (the usage
writer's thread, ``deferToThread``) or in the command-line tool.
"""

from __future__ import annotations

from zope.interface import Interface


class IKeyStore(Interface):
    """Client keys (``gateway.team.keys.KeyRecord``), stored hashed."""

    def keys() -> list:
        """Every key record, revoked ones included."""

    def keys_version() -> int:
        """A number that changes whenever a key is added, changed or revoked (cheap to ask)."""

    def put_key(record: object) -> None:
        """Insert or replace one record (matched by name)."""


class IUsageStore(Interface):
    """One row per answered request (``gateway.team.usage.UsageRow``)."""

    def insert(rows: list) -> None:
        """Store ``rows`` all or none (one transaction)."""

    def summary(since: float, by: str) -> list:
        """Totals grouped ``by`` key | account | model | day | door | route, since a time (dicts)."""

    def series(since: float, by: str) -> list:
        """Totals per (UTC day, group) for charts (dicts)."""

    def tokens_since(since: float) -> dict:
        """Tokens spent per key name since a time (seeds the daily budgets at start-up)."""

    def prune(before: float) -> int:
        """Delete rows older than ``before``; how many went."""

    def close() -> None:
        """Release the connection of the calling thread."""
