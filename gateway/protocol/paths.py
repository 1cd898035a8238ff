"""Reading ``models/...`` request paths: which model, which action.

``/v1beta/models/<id>:<action>``, ``/v1beta/models/<id>/<action>`` and a
doubled ``models/models/<id>`` all name the same call.
"""

from __future__ import annotations

from urllib.parse import unquote

from gateway.protocol.errors import GatewayError

_PREFIX = "models/"


def parse_model_call(rest: str) -> tuple[str, str | None]:
    """``rest`` is what follows ``/<version>/models/``; returns (bare model id, action or None)."""
    rest = unquote(rest)
    while rest.startswith(_PREFIX):
        rest = rest[len(_PREFIX):]
    action: str | None = None
    if ":" in rest:
        rest, _, action = rest.partition(":")
    elif "/" in rest:
        rest, _, action = rest.partition("/")
    if not rest or "/" in rest or (action is not None and (not action or "/" in action or ":" in action)):
        raise GatewayError(404, f"Unknown path models/{rest}{':' + action if action else ''}: expected models/<model>:<action>.", "NOT_FOUND")
    return rest, action


def wants_sse(args: dict[bytes, list[bytes]]) -> bool:
    """``alt=sse`` (or google-generativeai's ``$alt=sse``) asks for SSE; anything else is a JSON array."""
    for name in (b"alt", b"$alt"):
        for value in args.get(name, []):
            if value.split(b";", 1)[0].strip().lower() == b"sse":
                return True
    return False
