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
403 VALIDATION_REQUIRED,   disable the account with the reason (and validation URL)
403 PERMISSION_DENIED
429 RATE_LIMIT_EXCEEDED    delay <= ``short_retry_max``: wait, retry once on the
                           same account; else cool the account for the delay
                           (``default_cooldown`` when upstream gave none), next
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


@attrs.frozen
class CoolModel:
    model: str
    until: float
    reason: str


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
    if kind in ("validation_required", "forbidden"):
        return Disable(_what(failure), failure.validation_url)
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
