"""Whether one request of a key may go upstream now: expiry, models, requests/minute, tokens/day.

Pure: the caller hands in the key, the clock reading, the key's recent
request times and its tokens so far today; the answer is a ``Refusal``
(status, message, Retry-After) or None. The rate window is sliding (the
last 60 seconds); the token budget is per UTC day.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Iterable

import attrs

from gateway.team.keys import KeyRecord, iso, model_allowed

WINDOW = 60.0
DAY = 86400.0


@attrs.frozen
class Refusal:
    code: int  # 429 (a limit) or 403 (model, expiry)
    reason: str  # expired | model | rpm | tokens_per_day (metrics label)
    message: str
    retry_after: int | None = None


def utc_day(now: float) -> int:
    """Days since the epoch (UTC): the token budget's period."""
    return int(now // DAY)


def seconds_to_next_day(now: float) -> float:
    return (utc_day(now) + 1) * DAY - now


def in_window(times: Iterable[float], now: float) -> list[float]:
    """The request times that still count: within (now - 60 s, now]."""
    return [t for t in times if now - WINDOW < t <= now]


def decide(record: KeyRecord, model: str | None, now: float, recent: Iterable[float], tokens_today: int) -> Refusal | None:
    name = record.name
    if record.expired(now):
        return Refusal(403, "expired", f"The key {name!r} expired on {iso(record.expires)}; ask the gateway's operator for a new one.")
    if model is not None and not model_allowed(record.models, model):
        allowed = ", ".join(record.models)
        return Refusal(403, "model", f"The key {name!r} may not use the model {model}; it is allowed: {allowed}.")
    if record.rpm > 0:
        counted = sorted(in_window(recent, now))
        if len(counted) >= record.rpm:
            oldest = counted[len(counted) - record.rpm]
            wait = max(1, math.ceil(oldest + WINDOW - now))
            return Refusal(429, "rpm", f"The key {name!r} is limited to {record.rpm} requests per minute; retry in {wait}s.", wait)
    if record.tokens_per_day > 0 and tokens_today >= record.tokens_per_day:
        wait = max(1, math.ceil(seconds_to_next_day(now)))
        return Refusal(
            429, "tokens_per_day",
            f"The key {name!r} has used its {record.tokens_per_day} tokens for today (UTC); the budget renews in {wait}s.",
            wait,
        )
    return None


class RequestWindows:
    """Recent request times per key name, trimmed as they age out (kept in memory only)."""

    def __init__(self) -> None:
        self._times: dict[str, deque[float]] = {}

    def recent(self, name: str, now: float) -> deque[float]:
        times = self._times.setdefault(name, deque())
        while times and times[0] <= now - WINDOW:
            times.popleft()
        return times

    def add(self, name: str, now: float) -> None:
        self.recent(name, now).append(now)


def usage_tokens(usage: dict[str, int] | None) -> int:
    """Tokens a request spent, from upstream ``usageMetadata``: its total, else the sum of its parts."""
    if not usage:
        return 0
    total = usage.get("totalTokenCount")
    if isinstance(total, int) and total > 0:
        return total
    return sum(usage.get(k, 0) or 0 for k in ("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "toolUsePromptTokenCount"))


class DailyTokens:
    """Tokens per key for the current UTC day (older days are dropped)."""

    def __init__(self) -> None:
        self.day = -1
        self._tokens: dict[str, int] = {}

    def _roll(self, now: float) -> None:
        day = utc_day(now)
        if day != self.day:
            self.day = day
            self._tokens = {}

    def get(self, name: str, now: float) -> int:
        self._roll(now)
        return self._tokens.get(name, 0)

    def add(self, name: str, tokens: int, now: float) -> None:
        self._roll(now)
        if tokens > 0:
            self._tokens[name] = self._tokens.get(name, 0) + tokens

    def seed(self, totals: dict[str, int], now: float) -> None:
        self._roll(now)
        for name, tokens in totals.items():
            self._tokens[name] = self._tokens.get(name, 0) + int(tokens)
