"""The Antigravity client version: reading the update manifest, comparing, stamping the User-Agent,
and recognising Cloud Code's "this version is no longer supported" refusal.

Pure (no I/O, no clock): the service that fetches the manifest lives in
``gateway.upstream.version``. Cloud Code gates on the version in the
User-Agent (PROTOCOL.md 2b); the version sent is the higher of the
operator's floor and the manifest's latest.
"""

from __future__ import annotations

import json
import re
from typing import Any

_VERSION = re.compile(r"\d+(?:\.\d+){0,3}")
_MANIFEST_LINE = re.compile(r"""^version\s*:\s*(?P<q>['"]?)(?P<v>[^'"#\s]+)(?P=q)\s*(?:#.*)?$""")
#: The common beginning of every wording seen ("… Please update …!", "… Please upgrade ….").
REJECTION = "this version of antigravity is no longer supported"


def parse(text: str) -> tuple[int, ...] | None:
    """``"2.9.1"`` -> ``(2, 9, 1)`` (trailing zeros dropped, so 2.9 == 2.9.0); None when not a version."""
    if not isinstance(text, str) or not _VERSION.fullmatch(text.strip()):
        return None
    parts = [int(p) for p in text.strip().split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def newer(a: str, b: str) -> bool:
    """Whether version ``a`` is above version ``b`` (unparseable versions are never newer)."""
    pa, pb = parse(a), parse(b)
    return pa is not None and (pb is None or pa > pb)


def effective(floor: str, fetched: str | None) -> str:
    """The version to send: the fetched one when it is above the floor, else the floor."""
    return fetched if fetched is not None and newer(fetched, floor) else floor


def from_manifest(body: bytes | str) -> str | None:
    """The top-level ``version:`` of an auto-updater manifest (``latest-arm64-mac.yml``).

    A line scan, not a YAML parser: the key is a plain scalar at column 0 in
    every manifest electron-builder writes, and a dependency for one line is
    not worth it. Indented ``version:`` keys (inside ``files:``) are ignored.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    for line in text.splitlines():
        match = _MANIFEST_LINE.match(line.rstrip())
        if match and parse(match.group("v")) is not None:
            return match.group("v")
    return None


def user_agent(template: str, version: str) -> str:
    """``template`` with ``{version}`` filled in; a template without it is sent as it is."""
    return template.replace("{version}", version)


def is_rejection(status: int, body: bytes) -> bool:
    """Whether an upstream answer (a 503, a 404, any error or a stream event) is the version refusal.

    Matched on the message's common beginning, in a google.rpc.Status or
    anywhere in a short non-JSON body; capacity 503s and plain 404s are not.
    """
    if not body:
        return False
    text = body[:65536].decode("utf-8", "replace")
    if REJECTION not in text.lower():
        return False
    try:
        document: Any = json.loads(text.removeprefix("data:").strip())
    except ValueError:
        return True
    error = document.get("error") if isinstance(document, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return not isinstance(message, str) or REJECTION in message.lower()


def rejection_message(version: str) -> str:
    """What a client is told when Cloud Code refuses the gateway's client version."""
    return (
        f"Cloud Code refused this gateway's client version ({version}): \"This version of Antigravity is "
        "no longer supported\". The gateway is re-reading the current version from the update manifest; "
        "retry in a minute. If this persists, the gateway's operator must raise [upstream] version_floor."
    )
