"""What Cloud Code rejects or silently ignores today (PROTOCOL.md 2b), as the emulator enforces it.

Pure checks over a validated request and its model spec. Each one mirrors a
measured Google behaviour so a gateway that stops working around it fails our
tests; none of them invents a rule Google does not have.
"""

from __future__ import annotations

from typing import Any

from gateway.emulator.catalogue import ModelSpec
from gateway.protocol.errors import GatewayError

#: The Claude Agent SDK's standalone identity system block. Cloud Code answers a
#: request carrying exactly this block with a 429 that is not a rate limit.
AGENT_SDK_IDENTITY = "You are a Claude agent, built on Anthropic's Claude Agent SDK."

def _system_texts(req: dict[str, Any]) -> list[str]:
    system = req.get("systemInstruction")
    if not isinstance(system, dict):
        return []
    return [p["text"] for p in system.get("parts", []) if isinstance(p, dict) and isinstance(p.get("text"), str)]


def check_identity(req: dict[str, Any]) -> None:
    """429 RESOURCE_EXHAUSTED for the Agent SDK identity block (exact text, not a real rate limit).

    Upstream's answer carries no ErrorInfo reason and no delay, which is what
    makes a naive gateway take it for an account rate limit.
    """
    if any(text.strip() == AGENT_SDK_IDENTITY for text in _system_texts(req)):
        raise GatewayError(429, "Resource has been exhausted (e.g. check quota).", "RESOURCE_EXHAUSTED")


def check_request(req: dict[str, Any], spec: ModelSpec) -> None:
    """Every rule of this module that can refuse a generate request."""
    check_identity(req)
