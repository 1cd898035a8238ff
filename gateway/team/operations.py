"""Key changes on a store, shared by ``antigravity-gateway keys`` and the dashboard (blocking).

Each returns the stored record; ``create`` also returns the secret, which
exists nowhere else afterwards.
"""

from __future__ import annotations

from typing import Any, Iterable

import attrs

from gateway.team.keys import KeyProblem, KeyRecord, check_name, clean_patterns, hash_secret, new_secret, parse_expiry


def _limit(value: Any, what: str) -> int:
    if value is None or value == "":
        return 0
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise KeyProblem(f"{what} must be a whole number (0: no limit)") from None
    if number < 0:
        raise KeyProblem(f"{what} must be 0 (no limit) or more")
    return number


def find_key(store: Any, name: str) -> KeyRecord:
    for record in store.keys():
        if record.name == name:
            return record
    raise KeyProblem(f"no key named {name!r} (see: antigravity-gateway keys list)")


def create(store: Any, name: str, now: float, *, expires: str | None = None, ttl_days: float | None = None, rpm: Any = 0,
           tokens_per_day: Any = 0, models: Iterable[str] = (), note: str = "") -> tuple[str, KeyRecord]:
    check_name(name)
    if any(r.name == name for r in store.keys()):
        raise KeyProblem(f"a key named {name!r} exists already; revoke it or pick another name")
    secret = new_secret()
    record = KeyRecord(name, hash_secret(secret), now, parse_expiry(expires, ttl_days, now), _limit(rpm, "rpm"),
                       _limit(tokens_per_day, "tokens per day"), clean_patterns(models), str(note or "")[:500])
    store.put_key(record)
    return secret, record


def revoke(store: Any, name: str, now: float) -> KeyRecord:
    record = find_key(store, name)
    if record.revoked is None:
        record = attrs.evolve(record, revoked=now)
        store.put_key(record)
    return record


def edit(store: Any, name: str, now: float, **changes: Any) -> KeyRecord:
    """Change limits, models, note or expiry; ``None`` leaves a field as it is."""
    record = find_key(store, name)
    updates: dict[str, Any] = {}
    if changes.get("rpm") is not None:
        updates["rpm"] = _limit(changes["rpm"], "rpm")
    if changes.get("tokens_per_day") is not None:
        updates["tokens_per_day"] = _limit(changes["tokens_per_day"], "tokens per day")
    if changes.get("models") is not None:
        updates["models"] = clean_patterns(changes["models"])
    if changes.get("note") is not None:
        updates["note"] = str(changes["note"])[:500]
    if changes.get("expires") is not None or changes.get("ttl_days") is not None:
        updates["expires"] = parse_expiry(changes.get("expires"), changes.get("ttl_days"), now)
    if updates:
        record = attrs.evolve(record, **updates)
        store.put_key(record)
    return record
