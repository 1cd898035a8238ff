"""The decision table: one classified upstream failure -> what the gateway does next.

Pure: the failure (``gateway.protocol.classify.UpstreamFailure``), what was
already tried on this account in this request, the time and a jitter draw go
in; one action comes out. The forwarder carries the action out; the pool
stores its effect.

=========================  =========================================================
failure                    action
=========================  =========================================================
401                        refresh the token once and retry on the same account;
                           a second 401 cools the account for ``default_cooldown``
403 VALIDATION_REQUIRED    rest the account ``validation_rest`` seconds, keep it
                           enabled, remember its validation URL (a human must verify)
403 ACCOUNT_DISABLED,      disable the account with the reason (only these retire one)
terms-of-service bans
other 403                  (the client already tried the next host) rest *this model*
                           on this account for ``forbidden_rest``, next account
429 RATE_LIMIT_EXCEEDED    naming ``metadata.model``: delay < ``short_retry_max``:
                           retry once on the same account; < ``model_rate_limit_max``:
                           cool that model on this account; longer: as quota exhausted.
                           Without a model: the same short retry, else cool the account
429 QUOTA_EXHAUSTED        cool *this model* on this account until its reset, next
MODEL_CAPACITY_EXHAUSTED,  back off with jitter (the account is not at fault and
503                        is not excluded); a delay past the backoff cap gives up
other 5xx, 408             next account, no cooldown
404, other 4xx             give up: the client's request is the problem
=========================  =========================================================
"""

from __future__ import annotations

import attrs

from gateway.protocol.classify import UpstreamFailure, scrub


@attrs.frozen
class Tuning:
    """The knobs of the table (``[accounts]`` settings)."""

    short_retry_max: float = 3.0
    default_cooldown: float = 60.0
    capacity_backoff: float = 1.0
    #: Largest backoff, as a multiple of ``capacity_backoff``.
    backoff_cap_factor: float = 8.0
    #: ``[accounts] validation_rest_seconds``: how long a VALIDATION_REQUIRED account rests.
    validation_rest: float = 600.0
    #: How long a model refused with a 403 (not validation, not a ban) rests on that account.
    forbidden_rest: float = 1800.0
    #: A per-model rate limit longer than this is treated as exhausted quota (PROTOCOL.md 2b: 5 min).
    model_rate_limit_max: float = 300.0

    @property
    def backoff_cap(self) -> float:
        return self.capacity_backoff * self.backoff_cap_factor


@attrs.frozen
class RetrySame:
    """Wait ``delay`` seconds and send again with the same account."""

    delay: float


@attrs.frozen
class RefreshAndRetrySame:
    """Refresh the account's access token, then send again with it."""


@attrs.frozen
class CoolAccount:
    until: float
    reason: str
    #: Set for VALIDATION_REQUIRED: where the account's owner verifies it (shown to the operator).
    validation_url: str | None = None


@attrs.frozen
class CoolModel:
    model: str
    until: float
    reason: str
    #: Re-read this account's quota soon (a quota-like rest; not for short rate limits or refusals).
    poll_quota: bool = True


@attrs.frozen
class Disable:
    reason: str
    validation_url: str | None = None


@attrs.frozen
class Backoff:
    """Capacity trouble upstream: wait, then try again (any account, this one included)."""

    delay: float


@attrs.frozen
class NextAccount:
    reason: str


@attrs.frozen
class GiveUp:
    """The answer goes to the client as it is."""


Action = RetrySame | RefreshAndRetrySame | CoolAccount | CoolModel | Disable | Backoff | NextAccount | GiveUp

#: Actions after which this account is not used again in the same request.
EXCLUDING = (CoolAccount, CoolModel, Disable, NextAccount)


def _seconds(delay: float) -> str:
    if delay >= 3600:
        return f"{delay / 3600:.1f}h"
    if delay >= 60:
        return f"{delay / 60:.0f}m"
    return f"{delay:.3g}s"


def _what(failure: UpstreamFailure) -> str:
    label = failure.reason or f"HTTP {failure.status}"
    message = scrub(failure.message).strip()
    return f"{label}: {message}" if message else label


def is_capacity(failure: UpstreamFailure) -> bool:
    return failure.kind == "capacity" or failure.status == 503


def decide(
    failure: UpstreamFailure,
    *,
    model: str,
    now: float,
    tuning: Tuning = Tuning(),
    retried_same: bool = False,
    refreshed: bool = False,
    backoffs: int = 0,
    jitter: float = 1.0,
    quota_reset: float | None = None,
) -> Action:
    """What to do after ``failure`` on one account.

    ``retried_same``/``refreshed``: this account already had its same-account
    retry / token refresh in this request. ``backoffs``: capacity backoffs so
    far in this request. ``jitter`` in [0, 1] (a random draw) spreads backoffs.
    ``quota_reset``: the model's reset time from the last quota snapshot, used
    when a QUOTA_EXHAUSTED answer names no delay.
    """
    kind = failure.kind
    delay = failure.retry_delay
    if kind == "unauthorized":
        if not refreshed:
            return RefreshAndRetrySame()
        return CoolAccount(now + tuning.default_cooldown, f"access token rejected after a refresh ({_what(failure)})")
    if kind == "validation_required":
        return CoolAccount(
            now + tuning.validation_rest,
            f"needs verification by its owner ({_what(failure)})",
            failure.validation_url,
        )
    if kind == "account_disabled":
        return Disable(_what(failure), failure.validation_url)
    if kind == "forbidden":
        refused = failure.model or model
        return CoolModel(refused, now + tuning.forbidden_rest, f"refused for {refused} ({_what(failure)})", poll_quota=False)
    if kind == "quota_exhausted":
        if delay is not None:
            until = now + delay
        elif quota_reset is not None and quota_reset > now:
            until = quota_reset
        else:
            until = now + tuning.default_cooldown
        return CoolModel(model, until, f"quota exhausted ({_what(failure)})")
    if kind == "rate_limited":
        if delay is not None and delay <= tuning.short_retry_max and not retried_same:
            return RetrySame(delay)
        if failure.model is not None:
            rest = delay if delay is not None else tuning.default_cooldown
            quota_like = rest > tuning.model_rate_limit_max
            what = "rate limited like exhausted quota" if quota_like else "rate limited"
            return CoolModel(model, now + max(rest, 0.001), f"{what} for {_seconds(rest)} ({_what(failure)})", quota_like)
        rest = delay if delay is not None else tuning.default_cooldown
        return CoolAccount(now + max(rest, 0.001), f"rate limited for {_seconds(rest)} ({_what(failure)})")
    if is_capacity(failure):
        step = tuning.capacity_backoff * (2 ** backoffs)
        if delay is not None and delay > tuning.backoff_cap:
            return GiveUp()
        wait = min(tuning.backoff_cap, max(step, delay or 0.0))
        jitter = min(1.0, max(0.0, jitter))
        return Backoff(wait * (0.5 + 0.5 * jitter))
    if kind == "transient":
        return NextAccount(_what(failure))
    return GiveUp()
