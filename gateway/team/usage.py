"""A usage row: what one answered request cost, built from the observer's ``Observation``.

Pure. The door is the API shape the client used (gemini, openai,
anthropic; its error shape too), the route which call of it (chat
completions, responses, images, counting …); tokens come from upstream
``usageMetadata`` (streams: the final one; images: summed over the calls
of one request; counting spends none).
"""

from __future__ import annotations

from typing import Any, NamedTuple

DOORS = {
    "generateContent": "gemini",
    "streamGenerateContent": "gemini",
    "countTokens": "gemini",
    "chat.completions": "openai",
    "responses": "openai",
    "images.generations": "openai",
    "images.edits": "openai",
    "messages": "anthropic",
    "messages.count_tokens": "anthropic",
}
RECORDED_ROUTES = frozenset(DOORS)
GROUPS = ("key", "account", "model", "day", "door", "route")


class UsageRow(NamedTuple):
    """One row; a tuple (not attrs) because one is made per request and the stores insert it as is."""

    time: float
    key: str | None
    account: str | None
    requested_model: str | None
    model: str | None
    door: str
    route: str
    status: int
    prompt_tokens: int = 0
    output_tokens: int = 0
    thought_tokens: int = 0
    cached_tokens: int = 0
    latency_ms: float = 0.0
    attempts: int = 0

    def as_tuple(self) -> tuple[Any, ...]:
        return tuple(self)


COLUMNS = UsageRow._fields


def _count(usage: dict[str, int], key: str) -> int:
    value = usage.get(key, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def row_from(observation: Any, status: int, now: float) -> UsageRow | None:
    """The row for a finished request, or None for routes that spend nothing (lists, health, admin)."""
    route = observation.route
    if route not in RECORDED_ROUTES:
        return None
    usage = observation.usage
    prompt, output, thought, cached = _tokens(usage) if usage else _NO_TOKENS
    return UsageRow(  # by position: keywords make building the tuple three times slower
        now,  # time
        getattr(observation, "key", None),  # key
        observation.account,  # account
        observation.model,  # requested_model
        observation.mapped_model or observation.model,  # model
        DOORS[route],  # door
        route,  # route
        int(getattr(observation, "stream_error", None) or status),  # status: a stream that failed is an error
        prompt, output, thought, cached,  # prompt_tokens, output_tokens, thought_tokens, cached_tokens
        round(max(0.0, now - observation.started) * 1000.0, 1),  # latency_ms
        observation.attempts,  # attempts
    )


_NO_TOKENS = (0, 0, 0, 0)


def _tokens(usage: dict[str, int]) -> tuple[int, int, int, int]:
    """Prompt, output, thought and cached tokens (the row's order) from ``usageMetadata``."""
    return (_count(usage, "promptTokenCount"), _count(usage, "candidatesTokenCount"),
            _count(usage, "thoughtsTokenCount"), _count(usage, "cachedContentTokenCount"))


def parse_since(text: str | None, now: float) -> float:
    """``7d``, ``24h``, ``30m``, ``2026-11-01`` or an ISO time; None: the last 30 days."""
    import datetime
    import re

    if not text:
        return now - 30 * 86400.0
    text = text.strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", text)
    if match:
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
        return now - float(match.group(1)) * unit
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"cannot read --since {text!r}: use 7d, 24h, 30m or a date such as 2026-11-01") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def render_table(rows: list[dict[str, Any]], by: str) -> str:
    """The ``usage`` command's table."""
    headers = [by, "requests", "errors", "prompt", "output", "thought", "cached", "total", "avg ms"]
    lines = [[str(r.get("group") or "-"), str(r["requests"]), str(r["errors"]), str(r["prompt_tokens"]),
              str(r["output_tokens"]), str(r["thought_tokens"]), str(r["cached_tokens"]), str(r["total_tokens"]),
              f"{r['avg_latency_ms']:.0f}"] for r in rows]
    if not lines:
        return "no usage recorded in that period"
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([fmt(headers)] + [fmt(line) for line in lines])
