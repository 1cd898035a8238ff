"""``retrieveUserQuotaSummary``: the 5-hour and weekly quota windows of one account.

The emulator's shape (documented in docs/accounts-and-clients.md; Google's
own is not public): ``{"quotaGroups": [{"groupId", "displayName",
"windowSeconds", "remainingFraction", "resetTime", "models"}]}`` with one
group per window. Pure: windows and the clock come in, a dict goes out.
"""

from __future__ import annotations

from typing import Any, Callable

#: groupId -> (displayName, window length in seconds)
WINDOWS = {
    "five-hour": ("5-hour limit", 5 * 3600),
    "weekly": ("Weekly limit", 7 * 86400),
}


def summary(
    windows: dict[str, tuple[float, float]], now: float, iso: Callable[[float], str], models: list[str]
) -> dict[str, Any]:
    """``windows``: groupId -> (remaining fraction, reset epoch seconds); absent = full, resetting a window from now."""
    groups = []
    for group, (display, length) in WINDOWS.items():
        fraction, reset = windows.get(group, (1.0, now + length))
        if reset <= now:
            fraction, reset = 1.0, now + length
        groups.append({
            "groupId": group,
            "displayName": display,
            "windowSeconds": length,
            "remainingFraction": fraction,
            "resetTime": iso(reset),
            "models": models,
        })
    return {"quotaGroups": groups}
