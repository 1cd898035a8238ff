"""AI credits: what ``loadCodeAssist`` reports and when ``enabledCreditTypes`` may spend them.

Paid tiers can answer a model whose quota is gone by spending GOOGLE_ONE_AI
credits; a request asks for that with a top-level ``"enabledCreditTypes":
["GOOGLE_ONE_AI"]``. The emulator accepts the field only from an account
that has at least the minimum (400 otherwise). Pure.
"""

from __future__ import annotations

from typing import Any

from gateway.emulator.content import bad_request

CREDIT_TYPE = "GOOGLE_ONE_AI"


def credit_entries(amount: int, minimum: int) -> list[dict[str, Any]]:
    """``paidTier.availableCredits`` (int64 values are JSON strings, as proto3 writes them)."""
    return [{"creditType": CREDIT_TYPE, "creditAmount": str(amount), "minimumCreditAmountForUsage": str(minimum)}]


def credits_requested(envelope: dict[str, Any], account: Any, minimum: int) -> bool:
    """Whether this request may spend credits; 400 when it asks without having them."""
    if "enabledCreditTypes" not in envelope:
        return False
    types = envelope["enabledCreditTypes"]
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise bad_request("Invalid value at 'enabled_credit_types': expected a list of credit types.", "enabled_credit_types")
    unknown = [t for t in types if t != CREDIT_TYPE]
    if unknown:
        raise bad_request(f"Invalid value at 'enabled_credit_types', {unknown[0]!r}", "enabled_credit_types")
    if account.credits < minimum:
        raise bad_request("This account has no AI credits available to use (enabledCreditTypes).", "enabled_credit_types")
    return bool(types)
