"""Cooldowns, disabling and quota snapshots on one account record: pure functions.

Owns what "usable for model M at time T" means and how a record changes when
the gateway learns something; time is always passed in. Must not do I/O:
the pool saves what these return.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import attrs

from gateway.pool.account import Account, Cooldown, ModelQuota
from gateway.protocol.classify import parse_timestamp
from gateway.protocol.models import strip_models_prefix

FOREVER = math.inf
MAX_REASON = 500


def _reason(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def blocked_until(account: Account, model: str | None, now: float, spend_credits: bool = False) -> float:
    """0.0 when ``account`` may serve ``model`` now, else when it may again (``inf``: disabled).

    ``model`` None asks about the account alone (no model cooldowns, no quota).
    A quota snapshot that says 0 remaining blocks the model until its reset —
    unless ``spend_credits`` (``use_credits = "when_quota_exhausted"``) and the
    account has AI credits it can spend: then upstream is asked (with credits
    after its QUOTA_EXHAUSTED), and a refusal still cools the model.
    """
    if account.disabled:
        return FOREVER
    until = account.cooldown_until if account.cooldown_until > now else 0.0
    if model is not None:
        cooled = account.model_cooldowns.get(model)
        if cooled is not None and cooled.until > now:
            until = max(until, cooled.until)
        quota = account.quota.get(model)
        if quota is not None and quota.remaining <= 0 and quota.reset is not None and quota.reset > now:
            if not (spend_credits and account.usable_credits):
                until = max(until, quota.reset)
    return until


def usable(account: Account, model: str | None, now: float) -> bool:
    return blocked_until(account, model, now) == 0.0


def remaining(account: Account, model: str, now: float) -> float | None:
    """The fraction of ``model``'s quota left (None: never reported); a passed reset means full."""
    quota = account.quota.get(model)
    if quota is None:
        return None
    if quota.reset is not None and quota.reset <= now:
        return 1.0
    return max(0.0, min(1.0, quota.remaining))


def quota_reset(account: Account, model: str, now: float) -> float | None:
    quota = account.quota.get(model)
    if quota is None or quota.reset is None or quota.reset <= now:
        return None
    return quota.reset


def prune(account: Account, now: float) -> Account:
    """Drop cooldowns that have ended, so the store only says what still holds."""
    changes: dict[str, Any] = {}
    if account.cooldown_until and account.cooldown_until <= now:
        changes.update(cooldown_until=0.0, cooldown_reason=None)
        if not account.disabled and account.validation_url:
            changes["validation_url"] = None  # a validation rest that ended: try the account again
    live = {m: c for m, c in account.model_cooldowns.items() if c.until > now}
    if len(live) != len(account.model_cooldowns):
        changes["model_cooldowns"] = live
    return attrs.evolve(account, **changes) if changes else account


def cool_account(account: Account, until: float, reason: str, now: float, validation_url: str | None = None) -> Account:
    """Rest the whole account until ``until`` (a longer rest already set is kept).

    ``validation_url``: the rest is a VALIDATION_REQUIRED one; the link is kept
    for the operator until the rest ends (the account stays enabled).
    """
    account = prune(account, now)
    if validation_url:
        account = attrs.evolve(account, validation_url=validation_url)
    if account.cooldown_until >= until:
        return account
    return attrs.evolve(account, cooldown_until=until, cooldown_reason=_reason(reason))


def cool_model(account: Account, model: str, until: float, reason: str, now: float) -> Account:
    """Rest one model on the account until ``until``; other models stay served."""
    account = prune(account, now)
    current = account.model_cooldowns.get(model)
    if current is not None and current.until >= until:
        return account
    cooldowns = dict(account.model_cooldowns)
    cooldowns[model] = Cooldown(until, _reason(reason))
    return attrs.evolve(account, model_cooldowns=cooldowns)


def disable(account: Account, reason: str, validation_url: str | None = None) -> Account:
    """Out of rotation until an operator enables it again."""
    return attrs.evolve(
        account,
        disabled=True,
        disabled_reason=_reason(reason),
        validation_url=validation_url or account.validation_url,
    )


def enable(account: Account) -> Account:
    """Back in rotation: not disabled, no cooldowns, no validation link."""
    return attrs.evolve(
        account,
        disabled=False,
        disabled_reason=None,
        validation_url=None,
        cooldown_until=0.0,
        cooldown_reason=None,
        model_cooldowns={},
    )


def with_quota(account: Account, snapshot: Mapping[str, ModelQuota], now: float) -> Account:
    """Store a fresh quota snapshot.

    A short model cooldown from a quota error is kept even when the snapshot
    reports quota left: the error is the stronger evidence (upstream's
    fraction lags, and per-minute limits do not show in it). A cooldown with
    more than ``EARLY_RELEASE_AFTER`` left is released when the snapshot shows
    quota for that model again (PROTOCOL.md 2b: re-check long resets).
    """
    account = prune(account, now)
    released = {
        model: cooled
        for model, cooled in account.model_cooldowns.items()
        if not (cooled.until - now > EARLY_RELEASE_AFTER and _has_quota(snapshot.get(model), now))
    }
    return attrs.evolve(account, quota=dict(snapshot), quota_updated=now, model_cooldowns=released)


#: A model cooldown with more than this left is re-checked against each quota poll:
#: a reset days away is real (weekly groups) but upstream may grant quota back sooner.
EARLY_RELEASE_AFTER = 3600.0


def _has_quota(quota: ModelQuota | None, now: float) -> bool:
    return quota is not None and (quota.remaining > 0 or (quota.reset is not None and quota.reset <= now))


def quota_from_upstream(answer: Any) -> dict[str, ModelQuota]:
    """``fetchAvailableModels`` -> {model: ModelQuota} for every model reporting ``quotaInfo``."""
    models = answer.get("models") if isinstance(answer, Mapping) else None
    out: dict[str, ModelQuota] = {}
    if not isinstance(models, Mapping):
        return out
    for model_id, info in models.items():
        if not isinstance(model_id, str) or not isinstance(info, Mapping):
            continue
        quota = info.get("quotaInfo")
        if not isinstance(quota, Mapping):
            continue
        fraction = quota.get("remainingFraction")
        if isinstance(fraction, str):
            try:
                fraction = float(fraction)
            except ValueError:
                fraction = None
        if fraction is None and quota.get("resetTime"):
            fraction = 0.0  # proto3 JSON omits zero values: a reset time without a fraction means none left
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not math.isfinite(fraction):
            continue
        reset = quota.get("resetTime")
        reset_at = parse_timestamp(reset) if isinstance(reset, str) else None
        out[strip_models_prefix(model_id)] = ModelQuota(max(0.0, min(1.0, float(fraction))), reset_at)
    return out


@attrs.frozen
class Status:
    """An account's state in words: ``active``, ``cooling`` or ``disabled``."""

    state: str
    until: float | None = None
    reason: str | None = None


def status(account: Account, now: float) -> Status:
    if account.disabled:
        return Status("disabled", None, account.disabled_reason)
    if account.cooldown_until > now:
        return Status("cooling", account.cooldown_until, account.cooldown_reason)
    return Status("active")


def model_blocks(account: Account, now: float) -> dict[str, Cooldown]:
    """Every model this account may not serve now, with until when and why (cooldowns and empty quota)."""
    out = {m: c for m, c in account.model_cooldowns.items() if c.until > now}
    for model, quota in account.quota.items():
        if quota.remaining <= 0 and quota.reset is not None and quota.reset > now:
            if model not in out or out[model].until < quota.reset:
                out[model] = Cooldown(quota.reset, "no quota left")
    return dict(sorted(out.items()))
