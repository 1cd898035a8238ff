"""google.rpc.Status bodies: the one error shape every client sees.

Owns status names, detail builders and error bodies; must not do I/O.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

STATUS_BY_CODE: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    411: "INVALID_ARGUMENT",
    413: "INVALID_ARGUMENT",
    414: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    431: "INVALID_ARGUMENT",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

TYPE_PREFIX = "type.googleapis.com/google.rpc."


def status_for(code: int) -> str:
    """The canonical status name Google pairs with an HTTP code."""
    if code in STATUS_BY_CODE:
        return STATUS_BY_CODE[code]
    if 400 <= code < 500:
        return "FAILED_PRECONDITION"
    return "UNKNOWN"


def error_dict(
    code: int,
    message: str,
    status: str | None = None,
    details: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    """``{"error": {...}}`` as a dict, details omitted when empty (as Google does)."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status or status_for(code)}
    details = list(details)
    if details:
        error["details"] = details
    return {"error": error}


def error_body(
    code: int,
    message: str,
    status: str | None = None,
    details: Iterable[dict[str, Any]] = (),
) -> bytes:
    """The same error, serialised as compact UTF-8 JSON."""
    return json.dumps(error_dict(code, message, status, details), separators=(",", ":")).encode()


def format_duration(seconds: float) -> str:
    """Seconds as a protobuf Duration string: ``54s``, ``0.539s``."""
    if seconds < 0:
        seconds = 0.0
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{text}s"


def retry_info(seconds: float) -> dict[str, Any]:
    return {"@type": TYPE_PREFIX + "RetryInfo", "retryDelay": format_duration(seconds)}


def error_info(reason: str, domain: str = "cloudcode-pa.googleapis.com", metadata: dict[str, str] | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {"@type": TYPE_PREFIX + "ErrorInfo", "reason": reason, "domain": domain}
    if metadata:
        info["metadata"] = dict(metadata)
    return info


def help_links(*links: tuple[str, str]) -> dict[str, Any]:
    return {"@type": TYPE_PREFIX + "Help", "links": [{"description": d, "url": u} for d, u in links]}


class GatewayError(Exception):
    """An error with the exact status a client should see.

    Raised anywhere in the request path; the web layer turns it into a
    google.rpc.Status body (or a mid-stream error event).
    """

    def __init__(
        self,
        code: int,
        message: str,
        status: str | None = None,
        details: Iterable[dict[str, Any]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or status_for(code)
        self.details = list(details)
        self.headers = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        return error_dict(self.code, self.message, self.status, self.details)

    def to_body(self) -> bytes:
        return error_body(self.code, self.message, self.status, self.details)
