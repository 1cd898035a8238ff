"""Redis key names and the small pure pieces the Redis backend needs.

Every key of the pool's selection lives under one hash tag (``{pool}``) so the
selection script, which declares all of them, runs on one Redis Cluster slot;
per-account and per-key state use their own tags (``{acct:EMAIL}``,
``{key:NAME}``) so they spread over slots.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from gateway.pool import health
from gateway.pool.account import Account

ACCOUNT_WIDE = ""  # the cooldown field of a whole account: "email\n"


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def last_used(self) -> str:
        return f"{self.prefix}{{pool}}:last_used"

    def cooldowns(self) -> str:
        return f"{self.prefix}{{pool}}:cooldowns"

    def session(self, session: str, model: str) -> str:
        digest = hashlib.sha256(f"{session}\n{model}".encode()).hexdigest()[:32]  # never the raw session id
        return f"{self.prefix}{{pool}}:session:{digest}"

    def flight(self, email: str, kind: str) -> str:
        """What one instance found for an account (``token``, ``project``), for the others to read."""
        return f"{self.prefix}{{acct:{email}}}:{kind}"

    def lock(self, email: str, kind: str) -> str:
        return f"{self.prefix}{{acct:{email}}}:{kind}_lock"

    def fence(self, email: str) -> str:
        return f"{self.prefix}{{acct:{email}}}:fence"

    def rpm(self, name: str) -> str:
        return f"{self.prefix}{{key:{name}}}:rpm"

    def tokens(self, name: str, day: int) -> str:
        return f"{self.prefix}{{key:{name}}}:tokens:{day}"

    def usage(self, day: int) -> str:
        return f"{self.prefix}{{usage}}:{day}"


def cooldown_field(email: str, model: str | None) -> str:
    return f"{email}\n{model or ACCOUNT_WIDE}"


def split_field(field: str) -> tuple[str, str | None]:
    email, _, model = field.partition("\n")
    return email, model or None


def cooldown_value(until: float, reason: str) -> str:
    """``"UNTIL REASON"``: the script reads the number before the first space."""
    return f"{until!r} {reason}"


def parse_cooldown(value: str | bytes) -> tuple[float, str] | None:
    text = value.decode(errors="replace") if isinstance(value, bytes) else value
    head, _, reason = text.partition(" ")
    try:
        return float(head), reason
    except ValueError:
        return None


def rank(policy: str | None, account: Account, model: str | None, now: float) -> float:
    """Lower serves first; ties go to the least recently used across instances.

    ``quota-aware``: the most quota left for the model first (never polled counts
    as full); every other policy balances by last use over all instances.
    """
    if policy == "quota-aware" and model:
        left = health.remaining(account, model, now)
        return -(1.0 if left is None else left)
    return 0.0


def known_cooldowns(account: Account, now: float) -> list[tuple[str | None, float, str]]:
    """The cooldowns this instance holds for an account, to re-tell Redis after it restarted empty."""
    found: list[tuple[str | None, float, str]] = []
    if account.cooldown_until > now:
        found.append((None, account.cooldown_until, account.cooldown_reason or ""))
    for model, block in health.model_blocks(account, now).items():
        found.append((model, block.until, block.reason))
    return found


def token_record(token: str, expiry: float) -> str:
    return json.dumps({"access_token": token, "expiry": expiry})


def parse_token_record(value: Any) -> tuple[str, float] | None:
    if value is None:
        return None
    try:
        doc = json.loads(value)
        return str(doc["access_token"]), float(doc["expiry"])
    except (ValueError, KeyError, TypeError):
        return None


def project_record(project: str, tier: str | None, ineligible: str | None) -> str:
    return json.dumps({"project": project, "tier": tier, "ineligible": ineligible})


def parse_project_record(value: Any) -> tuple[str, str | None, str | None] | None:
    if value is None:
        return None
    try:
        doc = json.loads(value)
        project = doc["project"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(project, str) or not project:
        return None
    return project, doc.get("tier"), doc.get("ineligible")
