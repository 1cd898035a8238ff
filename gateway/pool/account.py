"""One Google account as stored: the record every backend reads and writes.

Immutable; changes are made with ``attrs.evolve`` and saved through the pool.
Unknown fields read from a store are kept in ``extra`` and written back, so a
newer gateway's data survives an older one.
"""

from __future__ import annotations

from typing import Any

import attrs

KNOWN_FIELDS = ("email", "refresh_token", "access_token", "expiry", "project_id", "disabled", "disabled_reason")


class AccountFormatError(ValueError):
    """A stored record that cannot be used; the message says which and why."""


@attrs.frozen
class Account:
    email: str
    refresh_token: str
    access_token: str | None = None
    expiry: float = 0.0
    project_id: str | None = None
    disabled: bool = False
    disabled_reason: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict, eq=False)

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
        expiry = record.get("expiry") or 0
        if isinstance(expiry, bool) or not isinstance(expiry, (int, float)):
            raise AccountFormatError(f"{where} ({email}): 'expiry' must be unix seconds")
        for name in ("access_token", "project_id", "disabled_reason"):
            value = record.get(name)
            if value is not None and not isinstance(value, str):
                raise AccountFormatError(f"{where} ({email}): {name!r} must be a string or null")
        disabled = record.get("disabled", False)
        if not isinstance(disabled, bool):
            raise AccountFormatError(f"{where} ({email}): 'disabled' must be true or false")
        return cls(
            email=email,
            refresh_token=refresh,
            access_token=record.get("access_token") or None,
            expiry=float(expiry),
            project_id=record.get("project_id") or None,
            disabled=disabled,
            disabled_reason=record.get("disabled_reason"),
            extra={k: v for k, v in record.items() if k not in KNOWN_FIELDS},
        )
