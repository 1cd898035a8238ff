"""The pool as an operator sees it: JSON-ready, never a token.

Pure: accounts (and the pool's runtime counters when there is a running
pool) and ``now`` in, plain dicts out. Used by ``GET /admin/accounts`` and
``antigravity-gateway accounts list/show --json``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from gateway.pool import health
from gateway.pool.account import Account


def iso(seconds: float | None) -> str | None:
    """Unix seconds as RFC 3339 UTC (``2025-01-02T03:04:05Z``); None and 0 stay None."""
    if not seconds:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return None


def account_view(
    account: Account, now: float, runtime: Any = None, sessions: int | None = None, clients: Any = None
) -> dict[str, Any]:
    """One account: state, cooldowns and quota per model, tier, errors; no tokens, no refresh token."""
    status = health.status(account, now)
    view: dict[str, Any] = {
        "email": account.email,
        "oauth_client": clients.name_of(account) if clients is not None else account.oauth_client,
        "state": status.state,
        "cooling_until": iso(status.until) if status.state == "cooling" else None,
        "cooling_reason": status.reason if status.state == "cooling" else None,
        "disabled_reason": account.disabled_reason if account.disabled else None,
        "validation_url": account.validation_url,
        "project_id": account.project_id,
        "tier": account.tier,
        "ineligible": account.ineligible,
        "token_expires": iso(account.expiry) if account.access_token else None,
        "cooldowns": {
            model: {"until": iso(c.until), "seconds_left": round(max(0.0, c.until - now), 1), "reason": c.reason}
            for model, c in health.model_blocks(account, now).items()
        },
        "quota": {
            model: {
                "remaining_fraction": health.remaining(account, model, now),
                "reset_time": iso(q.reset) if q.reset is not None and q.reset > now else None,
            }
            for model, q in sorted(account.quota.items())
        },
        "quota_updated": iso(account.quota_updated),
        "credits": [
            {"type": c.credit_type, "amount": c.amount, "minimum": c.minimum, "usable": c.usable} for c in account.credits
        ],
        "quota_windows": [
            {
                "group": w.group,
                "name": w.name,
                "remaining_fraction": w.remaining,
                "reset_time": iso(w.reset) if w.reset is not None and w.reset > now else None,
                "window_seconds": w.seconds,
            }
            for w in account.quota_windows
        ],
    }
    if runtime is not None:
        view.update(
            requests_served=runtime.served,
            failures=runtime.failures,
            last_error=runtime.last_error,
            last_error_at=iso(runtime.last_error_at),
            last_used=iso(runtime.last_used),
            in_flight=runtime.in_flight,
        )
    if sessions is not None:
        view["sticky_sessions"] = sessions
    return view


def pool_view(pool: Any, now: float, policy: str | None = None, clients: Any = None) -> dict[str, Any]:
    """The whole running pool (``gateway.pool.pool.AccountPool``)."""
    states = pool.states()
    return {
        "now": iso(now),
        "store": pool.backend.describe(),
        "store_error": getattr(pool, "store_error", None),
        "selection": policy,
        "max_in_flight": pool.max_in_flight,
        "session_ttl": pool.sessions.ttl,
        "sticky_sessions": len(pool.sessions),
        "accounts": [
            account_view(s.account, now, s, pool.sessions.count_for(s.email, now), clients) for s in states
        ],
    }
