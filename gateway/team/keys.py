"""Client keys as records: making a secret, hashing it, expiry and model patterns.

Pure: no storage, no clock of its own. A key's secret is shown once and only
its SHA-256 is kept; secrets are 256 random bits, so a plain hash is enough
(nothing to brute-force), and lookups are by hash.
"""

from __future__ import annotations

import datetime
import fnmatch
import hashlib
import re
import secrets
from typing import Any, Iterable

import attrs

PREFIX = "agw_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")


class KeyProblem(ValueError):
    """A key request that cannot be done; ``str()`` says what to change."""


@attrs.frozen
class KeyRecord:
    """One person's key: who, its hash, and its limits (0 / empty: unlimited)."""

    name: str
    hash: str
    created: float
    expires: float | None = None
    rpm: int = 0
    tokens_per_day: int = 0
    models: tuple[str, ...] = ()
    note: str = ""
    revoked: float | None = None

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires

    def active(self, now: float) -> bool:
        return self.revoked is None and not self.expired(now)


def new_secret() -> str:
    """A fresh client key: ``agw_`` and 43 URL-safe characters."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise KeyProblem(f"invalid key name {name!r}: use 1-64 letters, digits, . _ @ + - (starting with a letter or digit)")
    if name == "static":
        raise KeyProblem("the name 'static' is taken by the keys in [auth] keys; pick another")
    return name


def parse_expiry(text: str | None, ttl_days: float | None, now: float) -> float | None:
    """``--expires 2026-12-31`` (end of that UTC day) / ISO time, or ``--ttl DAYS``; None: never."""
    if text and ttl_days is not None:
        raise KeyProblem("give --expires or --ttl, not both")
    if ttl_days is not None:
        if ttl_days <= 0:
            raise KeyProblem("--ttl must be a positive number of days")
        return now + ttl_days * 86400.0
    if not text:
        return None
    text = text.strip()
    if text.lower() in ("never", "none"):
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = datetime.date.fromisoformat(text)
            end = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), datetime.timezone.utc)
            return end.timestamp()
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise KeyProblem(f"cannot read the date {text!r}: use YYYY-MM-DD or an ISO time such as 2026-12-31T18:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def clean_patterns(patterns: Iterable[str]) -> tuple[str, ...]:
    """Model patterns (``gemini-*``, ``claude-sonnet-4-6``), ``models/`` stripped, duplicates dropped."""
    out: list[str] = []
    for raw in patterns:
        for part in str(raw).split(","):
            pattern = part.strip()
            if pattern.startswith("models/"):
                pattern = pattern[len("models/"):]
            if pattern and pattern not in out:
                out.append(pattern)
    return tuple(out)


def model_allowed(patterns: tuple[str, ...], model: str) -> bool:
    """No patterns: every model. Else the resolved model must match one (``*``, ``?`` wildcards, case-insensitive)."""
    if not patterns:
        return True
    bare = model[len("models/"):] if model.startswith("models/") else model
    return any(fnmatch.fnmatchcase(bare.lower(), p.lower()) for p in patterns)


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_view(record: KeyRecord, now: float) -> dict[str, Any]:
    """What an operator may see of a key: everything but the secret and its hash."""
    state = "revoked" if record.revoked is not None else "expired" if record.expired(now) else "active"
    return {
        "name": record.name,
        "state": state,
        "created": iso(record.created),
        "expires": iso(record.expires),
        "revoked": iso(record.revoked),
        "rpm": record.rpm,
        "tokens_per_day": record.tokens_per_day,
        "models": list(record.models),
        "note": record.note,
    }
