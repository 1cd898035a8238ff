"""The OAuth clients the emulator's Google knows, and which of them Cloud Code still serves.

Pure data and small decisions (no Twisted): the token endpoint asks which
client a ``client_id``/``client_secret`` pair is, every access token
remembers the client that issued it, and ``loadCodeAssist`` / generation
ask whether that client may still use Gemini Code Assist for an account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.protocol.errors import GatewayError, error_info

#: The Antigravity desktop client (PROTOCOL.md 2b): the one every working peer uses.
ANTIGRAVITY_ID = "1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com"
ANTIGRAVITY_SECRET = "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"
#: gemini-cli's installed-app client, retired for individual accounts on 2026-06-18.
GEMINI_CLI_ID = "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com"
GEMINI_CLI_SECRET = "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"

UNSUPPORTED_CLIENT = "UNSUPPORTED_CLIENT"
UNSUPPORTED_CLIENT_MESSAGE = (
    "This client is no longer supported for Gemini Code Assist for individuals. "
    "To keep using Gemini models, migrate to the Antigravity suite."
)
DOMAIN = "cloudcode-pa.googleapis.com"


@dataclass(frozen=True)
class Client:
    """One installed-app OAuth client; ``retired``: Cloud Code refuses it for individual accounts."""

    name: str
    client_id: str
    client_secret: str
    retired: bool = False


BUILTIN = (
    Client("antigravity", ANTIGRAVITY_ID, ANTIGRAVITY_SECRET),
    Client("gemini-cli", GEMINI_CLI_ID, GEMINI_CLI_SECRET, retired=True),
)


def known_clients(test_id: str, test_secret: str) -> dict[str, Client]:
    """Every client the token endpoint accepts, by client id: the built-in two and the
    emulator's own test client (``--client-id``; never retired)."""
    table = {c.client_id: c for c in BUILTIN}
    table.setdefault(test_id, Client("emulator", test_id, test_secret))
    return table


def refused(client: Client | None, workspace: bool) -> bool:
    """Whether Cloud Code refuses this client for this account (workspace accounts keep gemini-cli)."""
    return client is not None and client.retired and not workspace


def unsupported_tier() -> dict[str, str]:
    """The ``ineligibleTiers`` entry loadCodeAssist answers for a retired client."""
    return {
        "reasonCode": UNSUPPORTED_CLIENT,
        "reasonMessage": UNSUPPORTED_CLIENT_MESSAGE,
        "tierId": "free-tier",
        "tierName": "Gemini Code Assist for individuals",
    }


def unsupported_error() -> GatewayError:
    """Generation with a retired client's token (the emulator's reading: a 403 naming the reason)."""
    return GatewayError(403, UNSUPPORTED_CLIENT_MESSAGE, "PERMISSION_DENIED", [error_info(UNSUPPORTED_CLIENT, DOMAIN)])


def client_json(client: Client | None) -> Any:
    return None if client is None else client.name
