"""AI credits (``[upstream] use_credits``): when to retry with them and how a request asks.

Pure. On QUOTA_EXHAUSTED, an account whose last loadCodeAssist reported
usable credits is retried once with a top-level ``enabledCreditTypes`` in
the envelope (PROTOCOL.md 2b); nothing else changes.
"""

from __future__ import annotations

import json
from typing import Sequence


def retry_with_credits(kind: str, mode: str, usable: Sequence[str], already: bool) -> bool:
    """Whether a failure of ``kind`` should be retried on the same account with credits."""
    return kind == "quota_exhausted" and mode == "when_quota_exhausted" and bool(usable) and not already


def enable(payload: bytes, credit_types: Sequence[str]) -> bytes:
    """The envelope with ``enabledCreditTypes`` set (unchanged when there is nothing to enable)."""
    if not credit_types:
        return payload
    envelope = json.loads(payload)
    envelope["enabledCreditTypes"] = list(credit_types)
    return json.dumps(envelope, separators=(",", ":")).encode()
