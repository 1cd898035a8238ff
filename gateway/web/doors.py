"""Which door a path belongs to, and every refusal in that door's error shape. Pure.

One function decides the shape of every client-visible error — limits
(408/413/414/431), malformed HTTP, auth, unknown routes, upstream failures —
from the path alone, so a route added later under ``/v1/responses``,
``/v1/images/…`` or ``/v1/messages/…`` is shaped right without touching this
module. Must not do I/O or import Twisted.
"""

from __future__ import annotations

import enum
import json
from typing import Any, Iterable

from gateway.compat import anthropic_response, openai_response
from gateway.protocol.errors import error_dict


class Door(enum.Enum):
    GEMINI = "gemini"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


#: OpenAI's API families (exact path or anything below it); ``/chat/completions``, ``/responses`` and
#: ``/images`` are the SDKs' base-URL-less forms.
OPENAI_PREFIXES = ("/v1/chat/completions", "/chat/completions", "/v1/responses", "/responses", "/v1/images", "/images",
                   "/v1/completions", "/v1/embeddings")
ANTHROPIC_PREFIXES = ("/v1/messages",)
MODELS = "/v1/models"


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def door_for_path(path: bytes | str) -> Door:
    """The door a request path arrived at (a query string is ignored).

    ``/v1/models`` and ``/v1/models/{id}`` are OpenAI's model routes;
    ``/v1/models/{id}:{action}`` is a Gemini model call (google-genai 3.x uses ``/v1``).
    """
    text = path.decode("latin-1") if isinstance(path, bytes) else path
    text = text.split("?", 1)[0]
    if any(_under(text, p) for p in ANTHROPIC_PREFIXES):
        return Door.ANTHROPIC
    if any(_under(text, p) for p in OPENAI_PREFIXES):
        return Door.OPENAI
    if _under(text, MODELS) and ":" not in text[len(MODELS):]:
        return Door.OPENAI
    return Door.GEMINI


def error_document(door: Door, code: int, message: str, status: str | None = None,
                   details: Iterable[dict[str, Any]] = (), *, own: bool = False) -> tuple[int, dict[str, Any]]:
    """The HTTP status and error document a client of ``door`` expects.

    Anthropic may change the status (an upstream 403 is the gateway's 503);
    ``own``: the gateway's own refusal (a key's limits, a CORS origin), which
    keeps its real status on every door.
    """
    if door is Door.ANTHROPIC and own:
        kind = anthropic_response.ERROR_TYPES.get(code) or ("api_error" if code >= 500 else "invalid_request_error")
        return code, {"type": "error", "error": {"type": kind, "message": message}}
    if door is Door.ANTHROPIC:
        return anthropic_response.shaped_error(code, message)
    if door is Door.OPENAI:
        return code, openai_response.error_dict(code, message)
    return code, error_dict(code, message, status, details)


def error_bytes(door: Door, code: int, message: str, status: str | None = None,
                details: Iterable[dict[str, Any]] = (), *, own: bool = False) -> tuple[int, bytes]:
    """:func:`error_document` serialised as compact JSON (UTF-8; lone surrogates escaped)."""
    status_code, document = error_document(door, code, message, status, details, own=own)
    try:
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        body = json.dumps(document, separators=(",", ":")).encode("ascii")
    return status_code, body


def path_error_bytes(path: bytes | str, code: int, message: str, status: str | None = None,
                     details: Iterable[dict[str, Any]] = (), *, own: bool = False) -> tuple[int, bytes]:
    """:func:`error_bytes` for the door of ``path``."""
    return error_bytes(door_for_path(path), code, message, status, details, own=own)
