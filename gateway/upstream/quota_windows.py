"""Reading ``retrieveUserQuotaSummary``: the account's 5-hour and weekly quota windows.

Google's shape is not public; we read the emulator's documented one
(``{"quotaGroups": [{groupId, displayName, windowSeconds, remainingFraction,
resetTime}]}``, docs/accounts-and-clients.md) and tolerate ``groups`` /
``name`` spellings. Pure: a parsed answer in, QuotaWindow records out;
entries that make no sense are skipped.
"""

from __future__ import annotations

from typing import Any

from gateway.pool.account import QuotaWindow
from gateway.protocol.classify import parse_duration, parse_timestamp


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return parse_duration(value)
    return None


def read(document: dict[str, Any]) -> tuple[QuotaWindow, ...]:
    groups = document.get("quotaGroups", document.get("groups"))
    out = []
    for group in groups if isinstance(groups, list) else []:
        if not isinstance(group, dict):
            continue
        name = group.get("groupId") or group.get("name")
        remaining = _number(group.get("remainingFraction"))
        if not isinstance(name, str) or not name or remaining is None:
            continue
        reset = group.get("resetTime")
        out.append(QuotaWindow(
            name,
            str(group.get("displayName") or name),
            max(0.0, min(1.0, remaining)),
            parse_timestamp(reset) if isinstance(reset, str) else None,
            _number(group.get("windowSeconds")),
        ))
    return tuple(out)
