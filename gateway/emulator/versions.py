"""The client-version gate and the update manifest, as Cloud Code and the Antigravity hub run them.

Cloud Code reads the client version from the ``User-Agent``
(``antigravity/hub/2.9.1 darwin/arm64`` or the older ``antigravity/1.11.9
linux/amd64``). A version below the minimum gets 503 "This version of
Antigravity is no longer supported…"; below 2.9.0 the newer models answer
404. The emulator gates generation calls only, and only when the
User-Agent names an Antigravity version (callers without one pass, so
hand-written tests need no User-Agent). Pure: no Twisted.
"""

from __future__ import annotations

import re

from gateway.protocol.errors import GatewayError

NO_LONGER_SUPPORTED = (
    "This version of Antigravity is no longer supported. Please upgrade to receive the latest features."
)
#: Below this version the models in ``RECENT_MODEL_PREFIXES`` answer 404 (August 2026).
RECENT_MODELS_MIN_VERSION = "2.9.0"
RECENT_MODEL_PREFIXES = (
    "gemini-3.1", "gemini-3.5", "gemini-3.6", "gemini-3.7", "gemini-pro-agent",
    "claude-sonnet-4-6", "claude-opus-4-6",
)
_UA_VERSION = re.compile(r"antigravity/(?:hub/)?(\d+(?:\.\d+){0,3})", re.IGNORECASE)


def version_tuple(text: str) -> tuple[int, ...]:
    """``"2.9.1"`` -> ``(2, 9, 1)``; trailing zeros do not matter when compared."""
    parts = tuple(int(p) for p in text.strip().split("."))
    while len(parts) > 1 and parts[-1] == 0:
        parts = parts[:-1]
    return parts


def ua_version(user_agent: str) -> str | None:
    match = _UA_VERSION.search(user_agent or "")
    return match.group(1) if match else None


def gate(user_agent: str, model: str, minimum: str) -> GatewayError | None:
    """The refusal a generation call with this User-Agent and model gets, or None."""
    version = ua_version(user_agent)
    if version is None:
        return None
    if version_tuple(version) < version_tuple(minimum):
        return GatewayError(503, NO_LONGER_SUPPORTED, "UNAVAILABLE")
    if version_tuple(version) < version_tuple(RECENT_MODELS_MIN_VERSION) and model.startswith(RECENT_MODEL_PREFIXES):
        return GatewayError(404, "Requested entity was not found.", "NOT_FOUND")
    return None


def manifest(version: str, released: str) -> bytes:
    """``latest-arm64-mac.yml`` as an electron-builder style auto-updater serves it."""
    name = f"Antigravity-{version}-arm64-mac.zip"
    return (
        f"version: {version}\n"
        "files:\n"
        f"  - url: {name}\n"
        "    sha512: ZW11bGF0b3I=\n"
        "    size: 123456789\n"
        f"path: {name}\n"
        "sha512: ZW11bGF0b3I=\n"
        f"releaseDate: '{released}'\n"
    ).encode()
