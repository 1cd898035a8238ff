"""One Google account as stored: the record every backend reads and writes.

Immutable; changes are made with ``attrs.evolve`` (see ``gateway.pool.health``
for the state changes) and saved through the pool. Unknown fields read from a
store are kept in ``extra`` and written back, so a newer gateway's data
survives an older one.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import attrs

KNOWN_FIELDS = (
    "email",
    "refresh_token",
    "access_token",
    "expiry",
    "project_id",
    "disabled",
    "disabled_reason",
    "validation_url",
    "tier",
    "ineligible",
    "cooldown_until",
    "cooldown_reason",
    "model_cooldowns",
    "quota",
    "quota_updated",
    "oauth_client",
    "credits",
    "quota_windows",
)


class AccountFormatError(ValueError):
    """A stored record that cannot be used; the message says which and why."""


@attrs.frozen
class Cooldown:
    """Until when (unix seconds) something may not be used, and why."""

    until: float
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"until": self.until, "reason": self.reason}


@attrs.frozen
class ModelQuota:
    """What ``fetchAvailableModels`` said about one model: the fraction left and when it refills."""

    remaining: float
    reset: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"remaining": self.remaining, "reset": self.reset}


@attrs.frozen
class Credits:
    """AI credits loadCodeAssist reported (``paidTier.availableCredits[]``)."""

    credit_type: str
    amount: float
    minimum: float = 0.0

    @property
    def usable(self) -> bool:
        return self.amount > 0 and self.amount >= self.minimum

    def to_json(self) -> dict[str, Any]:
        return {"type": self.credit_type, "amount": self.amount, "minimum": self.minimum}


@attrs.frozen
class QuotaWindow:
    """One group of ``retrieveUserQuotaSummary`` (the 5-hour or the weekly window)."""

    group: str
    name: str
    remaining: float
    reset: float | None = None
    seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "name": self.name, "remaining": self.remaining, "reset": self.reset, "seconds": self.seconds}


@attrs.frozen
class Account:
    email: str
    refresh_token: str
    access_token: str | None = None
    expiry: float = 0.0
    project_id: str | None = None
    disabled: bool = False
    disabled_reason: str | None = None
    #: Where a human verifies the account (403 VALIDATION_REQUIRED), kept apart from the reason.
    validation_url: str | None = None
    #: The Cloud Code tier found by loadCodeAssist (``standard-tier``, ``free-tier/g1-pro-tier`` …).
    tier: str | None = None
    #: ``ineligibleTiers`` reasons loadCodeAssist gave, for the operator.
    ineligible: str | None = None
    #: The whole account rests until this time (rate limits, repeated 401).
    cooldown_until: float = 0.0
    cooldown_reason: str | None = None
    #: One model rests on this account (QUOTA_EXHAUSTED) while it serves the others.
    model_cooldowns: Mapping[str, Cooldown] = attrs.field(factory=dict, hash=False)
    #: Last quota snapshot per model, and when it was taken.
    quota: Mapping[str, ModelQuota] = attrs.field(factory=dict, hash=False)
    quota_updated: float = 0.0
    #: The OAuth client (``[upstream.oauth_clients]`` name) whose refresh token this is; None: the default.
    oauth_client: str | None = None
    #: AI credits from the last loadCodeAssist.
    credits: tuple[Credits, ...] = ()
    #: Quota windows from the last retrieveUserQuotaSummary.
    quota_windows: tuple[QuotaWindow, ...] = ()
    extra: dict[str, Any] = attrs.field(factory=dict, eq=False, hash=False)

    @property
    def usable_credits(self) -> list[str]:
        """Credit types this account can spend now."""
        return [c.credit_type for c in self.credits if c.usable]

    def __repr__(self) -> str:  # never let a token reach a log through repr()
        state = f"disabled: {self.disabled_reason}" if self.disabled else "active"
        return f"Account({self.email!r}, project={self.project_id!r}, {state})"

    __str__ = __repr__

    def token_valid(self, now: float, margin: float) -> bool:
        """Whether the stored access token can still be used ``margin`` seconds from now."""
        return bool(self.access_token) and self.expiry - margin > now

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = dict(self.extra)
        record.update(
            email=self.email,
            refresh_token=self.refresh_token,
            access_token=self.access_token,
            expiry=self.expiry,
            project_id=self.project_id,
            disabled=self.disabled,
            disabled_reason=self.disabled_reason,
        )
        # Learned state is written only when there is some, so a hand-written
        # store stays as short as the operator made it.
        for name in ("validation_url", "tier", "ineligible", "cooldown_reason", "oauth_client"):
            value = getattr(self, name)
            if value is not None:
                record[name] = value
        if self.cooldown_until:
            record["cooldown_until"] = self.cooldown_until
        if self.model_cooldowns:
            record["model_cooldowns"] = {m: c.to_json() for m, c in sorted(self.model_cooldowns.items())}
        if self.quota:
            record["quota"] = {m: q.to_json() for m, q in sorted(self.quota.items())}
        if self.quota_updated:
            record["quota_updated"] = self.quota_updated
        if self.credits:
            record["credits"] = [c.to_json() for c in self.credits]
        if self.quota_windows:
            record["quota_windows"] = [w.to_json() for w in self.quota_windows]
        return record

    @classmethod
    def from_json(cls, record: Any, where: str) -> "Account":
        if not isinstance(record, dict):
            raise AccountFormatError(f"{where}: must be an object")
        email = record.get("email")
        refresh = record.get("refresh_token")
        if not isinstance(email, str) or not email:
            raise AccountFormatError(f"{where}: 'email' must be a non-empty string")
        if not isinstance(refresh, str) or not refresh:
            raise AccountFormatError(f"{where} ({email}): 'refresh_token' must be a non-empty string")
        here = f"{where} ({email})"
        expiry = _seconds(record, "expiry", here)
        for name in ("access_token", "project_id", "disabled_reason", "validation_url", "tier", "ineligible", "cooldown_reason", "oauth_client"):
            value = record.get(name)
            if value is not None and not isinstance(value, str):
                raise AccountFormatError(f"{here}: {name!r} must be a string or null")
        disabled = record.get("disabled", False)
        if not isinstance(disabled, bool):
            raise AccountFormatError(f"{here}: 'disabled' must be true or false")
        return cls(
            email=email,
            refresh_token=refresh,
            access_token=record.get("access_token") or None,
            expiry=expiry,
            project_id=record.get("project_id") or None,
            disabled=disabled,
            disabled_reason=record.get("disabled_reason"),
            validation_url=record.get("validation_url") or None,
            tier=record.get("tier") or None,
            ineligible=record.get("ineligible") or None,
            cooldown_until=_seconds(record, "cooldown_until", here),
            cooldown_reason=record.get("cooldown_reason") or None,
            model_cooldowns=_model_cooldowns(record.get("model_cooldowns"), here),
            quota=_quota(record.get("quota"), here),
            quota_updated=_seconds(record, "quota_updated", here),
            oauth_client=record.get("oauth_client") or None,
            credits=_credits(record.get("credits"), here),
            quota_windows=_windows(record.get("quota_windows"), here),
            extra={k: v for k, v in record.items() if k not in KNOWN_FIELDS},
        )


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _seconds(record: Mapping[str, Any], name: str, here: str) -> float:
    value = record.get(name) or 0
    if not _number(value):
        raise AccountFormatError(f"{here}: {name!r} must be unix seconds")
    return float(value)


def _model_cooldowns(value: Any, here: str) -> dict[str, Cooldown]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AccountFormatError(f"{here}: 'model_cooldowns' must be an object of model -> {{until, reason}}")
    out = {}
    for model, entry in value.items():
        if not isinstance(entry, dict) or not _number(entry.get("until")):
            raise AccountFormatError(f"{here}: model_cooldowns[{model!r}] must be {{\"until\": unix seconds, \"reason\": text}}")
        reason = entry.get("reason") or ""
        if not isinstance(reason, str):
            raise AccountFormatError(f"{here}: model_cooldowns[{model!r}].reason must be a string")
        out[model] = Cooldown(float(entry["until"]), reason)
    return out


def _quota(value: Any, here: str) -> dict[str, ModelQuota]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AccountFormatError(f"{here}: 'quota' must be an object of model -> {{remaining, reset}}")
    out = {}
    for model, entry in value.items():
        if not isinstance(entry, dict) or not _number(entry.get("remaining")):
            raise AccountFormatError(f"{here}: quota[{model!r}] must be {{\"remaining\": 0..1, \"reset\": unix seconds or null}}")
        reset = entry.get("reset")
        if reset is not None and not _number(reset):
            raise AccountFormatError(f"{here}: quota[{model!r}].reset must be unix seconds or null")
        out[model] = ModelQuota(float(entry["remaining"]), None if reset is None else float(reset))
    return out


def _credits(value: Any, here: str) -> tuple[Credits, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(c, dict) and isinstance(c.get("type"), str) and _number(c.get("amount")) and _number(c.get("minimum", 0))
        for c in value
    ):
        raise AccountFormatError(f"{here}: 'credits' must be a list of {{\"type\", \"amount\", \"minimum\"}}")
    return tuple(Credits(c["type"], float(c["amount"]), float(c.get("minimum", 0))) for c in value)


def _windows(value: Any, here: str) -> tuple[QuotaWindow, ...]:
    if value is None:
        return ()
    out = []
    for entry in value if isinstance(value, list) else [None]:
        if not isinstance(entry, dict) or not isinstance(entry.get("group"), str) or not _number(entry.get("remaining")):
            raise AccountFormatError(f"{here}: 'quota_windows' must be a list of {{\"group\", \"name\", \"remaining\", \"reset\"}}")
        reset, seconds = entry.get("reset"), entry.get("seconds")
        out.append(QuotaWindow(
            entry["group"], str(entry.get("name") or entry["group"]), float(entry["remaining"]),
            float(reset) if _number(reset) else None, float(seconds) if _number(seconds) else None,
        ))
    return tuple(out)
