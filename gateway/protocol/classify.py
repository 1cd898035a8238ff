"""Upstream failures -> what the gateway does next, and what a client finally sees.

Owns reading Cloud Code error answers (reason, delays, validation links)
and the client-facing error built from them; must not do I/O or read a
clock (``now`` is passed in).
"""

from __future__ import annotations

import calendar
import json
import math
import re
from dataclasses import dataclass, field
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any, Mapping

from gateway.protocol.errors import TYPE_PREFIX, GatewayError, retry_info, status_for

KINDS = (
    "rate_limited",
    "quota_exhausted",
    "capacity",
    "unauthorized",
    "forbidden",
    "validation_required",
    "account_disabled",
    "not_found",
    "transient",
    "client_error",
)

_MESSAGE_LIMIT = 1000


@dataclass(frozen=True)
class UpstreamFailure:
    """One failed upstream answer, read once.

    ``message`` is upstream's own text (for operator logs; ``client_error``
    scrubs it before a client sees it). ``retry_delay`` is seconds from
    ``now``, or None when upstream gave no delay. ``body`` is the parsed
    ``{"error": {...}}`` google.rpc.Status, or one synthesised from the
    status when upstream sent something else.
    """

    status: int
    reason: str | None
    message: str
    retry_delay: float | None
    kind: str
    validation_url: str | None
    body: dict[str, Any] = field(repr=False)
    #: ``ErrorInfo.metadata.model``: the model a rate limit or refusal is about (PROTOCOL.md 2b).
    model: str | None = None

    @property
    def next_host(self) -> bool:
        """True for 408, 404 and any 5xx: another host may answer (connection errors: the caller's)."""
        return self.status in (404, 408) or self.status >= 500

    @property
    def next_account(self) -> bool:
        """True for 429, 401, 403 and any 5xx: another account may succeed; other 4xx go to the client.

        Status-based on purpose: ``kind`` says *how* this account is hurt
        (capacity problems rarely clear on another account; the caller may
        weigh that), this says whether trying another is allowed at all.
        """
        return self.status in (401, 403, 429) or self.status >= 500


# -- durations -----------------------------------------------------------------

_UNIT_SECONDS: dict[str, float] = {
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "ms": 1e-3,
    "msec": 1e-3,
    "msecs": 1e-3,
    "millisecond": 1e-3,
    "milliseconds": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "microsecond": 1e-6,
    "microseconds": 1e-6,
    "ns": 1e-9,
    "nanosecond": 1e-9,
    "nanoseconds": 1e-9,
}
# Longest names first so "ms" is not read as "m" + "s" and "min" not as "m".
_UNITS = "|".join(sorted((re.escape(u) for u in _UNIT_SECONDS), key=len, reverse=True))
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_COMPONENT = re.compile(rf"({_NUMBER})\s*({_UNITS})(?![A-Za-z])", re.IGNORECASE)
_DURATION = re.compile(rf"\s*(?:{_NUMBER}\s*(?:{_UNITS})(?![A-Za-z])\s*,?\s*(?:and\s+)?)+", re.IGNORECASE)
_BARE_NUMBER = re.compile(rf"\s*({_NUMBER})\s*")
_MESSAGE_DELAY = re.compile(
    rf"\b(?:reset|retry|try\s+again)\s+(?:after|in)\s+((?:{_NUMBER}\s*(?:{_UNITS})(?![A-Za-z])[\s,]*(?:and\s+)?)+)",
    re.IGNORECASE,
)


def parse_duration(text: str) -> float | None:
    """Seconds in a duration string, or None when it is not one.

    Reads protobuf durations (``54s``, ``0.539s``), Go durations
    (``1h2m3.5s``, ``373.8ms``, ``500us``), spelt-out units (``2 minutes
    30 seconds``) and a bare number of seconds (``30``).
    """
    if not isinstance(text, str):
        return None
    bare = _BARE_NUMBER.fullmatch(text)
    if bare:
        return float(bare.group(1))
    if not _DURATION.fullmatch(text):
        return None
    total = 0.0
    for number, unit in _COMPONENT.findall(text):
        total += float(number) * _UNIT_SECONDS[unit.lower()]
    return total


def _proto_duration(value: object) -> float | None:
    """A RetryInfo ``retryDelay``: a string, or the ``{seconds, nanos}`` object form."""
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, Mapping):
        try:
            seconds = float(value.get("seconds", 0) or 0)
            nanos = float(value.get("nanos", 0) or 0)
        except (TypeError, ValueError):
            return None
        return seconds + nanos / 1e9
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


_RFC3339 = re.compile(
    r"\s*(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(\.\d+)?\s*(Z|z|[+-]\d\d:?\d\d)?\s*"
)


def parse_timestamp(text: str) -> float | None:
    """An RFC 3339 time (any number of fractional digits; no zone = UTC) as epoch seconds."""
    match = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    if not match:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        return None
    base = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    fraction = float(match.group(7)) if match.group(7) else 0.0
    zone = match.group(8)
    offset = 0
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return base + fraction - offset


def _retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After``: delay-seconds or an HTTP date (relative to ``now``)."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if _BARE_NUMBER.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


# -- bodies --------------------------------------------------------------------

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"\s+")


def _loads(body: bytes) -> object:
    text = body.lstrip()
    if text.startswith(b")]}'"):  # Google's XSSI guard
        text = text[4:]
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None


def _status_object(document: object) -> dict[str, Any] | None:
    """The ``{"error": {...}}`` in a body, unwrapping a list Google sometimes sends."""
    if isinstance(document, list):
        for item in document:
            found = _status_object(item)
            if found is not None:
                return found
        return None
    if isinstance(document, dict) and isinstance(document.get("error"), dict):
        return document
    return None


def _text_snippet(body: bytes) -> str:
    """A short human line from a non-JSON body (an HTML error page's title, or its text)."""
    if not body.strip():
        return ""
    title = _TITLE.search(body)
    raw = title.group(1) if title else body[:4096]
    text = raw.decode("utf-8", "replace")
    text = _SPACES.sub(" ", _TAGS.sub(" ", text)).strip()
    return text[:200]


def _details(error: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    details = error.get("details")
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, Mapping)]


def _of_type(detail: Mapping[str, Any], name: str) -> bool:
    kind = detail.get("@type")
    return isinstance(kind, str) and kind.endswith("google.rpc." + name)


_URL = re.compile(r"https?://[^\s\"'<>)\]]+")
_VALIDATION_HINT = re.compile(r"verif|validat", re.IGNORECASE)


def _validation_url(error: Mapping[str, Any], reason: str | None, message: str) -> str | None:
    """Where a human must go to re-enable the account: ErrorInfo metadata, a Help link, the message.

    Help links and message URLs count only when the reason is
    VALIDATION_REQUIRED or the link itself talks about verification, so a
    403 "enable this API" console link is not mistaken for one.
    """
    required = reason == "VALIDATION_REQUIRED"
    for detail in _details(error):
        if _of_type(detail, "ErrorInfo") and isinstance(detail.get("metadata"), Mapping):
            for key, value in detail["metadata"].items():
                lowered = str(key).lower()
                if isinstance(value, str) and value.startswith(("https://", "http://")) and (
                    "valid" in lowered or "verif" in lowered or (required and ("url" in lowered or "link" in lowered))
                ):
                    return value
    candidates: list[tuple[str, str]] = []
    for detail in _details(error):
        if _of_type(detail, "Help") and isinstance(detail.get("links"), list):
            for link in detail["links"]:
                if isinstance(link, Mapping) and isinstance(link.get("url"), str):
                    candidates.append((str(link.get("description") or ""), link["url"]))
    for description, url in candidates:
        if _VALIDATION_HINT.search(description) or _VALIDATION_HINT.search(url):
            return url
    if required and candidates:
        return candidates[0][1]
    if required:
        found = _URL.search(message)
        if found:
            return found.group(0).rstrip(".,;")
    return None


#: ErrorInfo reasons that mean Google banned or disabled the account: only these retire it.
ACCOUNT_GONE_REASONS = frozenset({
    "ACCOUNT_DISABLED", "USER_DISABLED", "ACCOUNT_SUSPENDED", "TOS_VIOLATION", "TERMS_OF_SERVICE_VIOLATION",
    "ACCOUNT_BANNED",
})
_TOS = re.compile(r"terms of service|\btos\b|account (?:has been |was )?(?:disabled|suspended|banned)", re.IGNORECASE)


def _kind(status: int, reason: str | None, message: str, validation_url: str | None) -> str:
    lowered = message.lower()
    if status == 401:
        return "unauthorized"
    if reason == "VALIDATION_REQUIRED" or (status == 403 and validation_url):
        return "validation_required"
    if reason in ACCOUNT_GONE_REASONS or (status == 403 and _TOS.search(message)):
        return "account_disabled"
    if status == 403:
        return "forbidden"
    if status == 429 or status >= 500:
        if reason == "QUOTA_EXHAUSTED":
            return "quota_exhausted"
        if reason == "RATE_LIMIT_EXCEEDED":
            return "rate_limited"
        if reason == "MODEL_CAPACITY_EXHAUSTED":
            return "capacity"
        if "exhausted your capacity" in lowered or "quota will reset" in lowered or "quota exhausted" in lowered:
            return "quota_exhausted"
        if "no capacity" in lowered or "capacity exhausted" in lowered or "overloaded" in lowered:
            return "capacity"
        return "rate_limited" if status == 429 else "transient"
    if status == 408:
        return "transient"
    if status == 404:
        return "not_found"
    return "client_error"


def _delay(
    headers: Mapping[str, str], error: Mapping[str, Any] | None, message: str, now: float
) -> float | None:
    """The first delay found, in PROTOCOL order: Retry-After, RetryInfo, quotaResetDelay,
    quotaResetTimeStamp, message text."""
    found = _retry_after(headers.get("retry-after"), now)
    if found is not None:
        return found
    details = _details(error) if error is not None else []
    for detail in details:
        if _of_type(detail, "RetryInfo"):
            found = _proto_duration(detail.get("retryDelay"))
            if found is not None:
                return found
    infos = [d.get("metadata") for d in details if _of_type(d, "ErrorInfo") and isinstance(d.get("metadata"), Mapping)]
    for metadata in infos:
        value = metadata.get("quotaResetDelay")
        found = parse_duration(value) if isinstance(value, str) else None
        if found is not None:
            return found
    for metadata in infos:
        value = metadata.get("quotaResetTimeStamp")
        stamp = parse_timestamp(value) if isinstance(value, str) else None
        if stamp is not None:
            return max(0.0, stamp - now)
    match = _MESSAGE_DELAY.search(message)
    if match:
        return parse_duration(match.group(1).strip().removesuffix("and").rstrip(" ,"))
    return None


def _finite(value: float | None) -> float | None:
    """A usable delay: None stays None, NaN/inf become None, negatives become 0."""
    if value is None or not math.isfinite(value):
        return None
    return max(0.0, value)


def classify(status: int, headers: Mapping[str, str], body: bytes, now: float) -> UpstreamFailure:
    """Read one failed upstream answer (``headers`` with lower-case names; ``now`` epoch seconds)."""
    document = _loads(body)
    status_object = _status_object(document)
    error: dict[str, Any] | None = status_object["error"] if status_object else None
    if error is not None:
        message = error.get("message") if isinstance(error.get("message"), str) else ""
        parsed_body = status_object
    else:
        if isinstance(document, dict) and isinstance(document.get("error"), str):
            # OAuth-style {"error": "...", "error_description": "..."}
            described = document.get("error_description")
            message = f"{document['error']}: {described}" if isinstance(described, str) else document["error"]
        elif document is None:
            snippet = _text_snippet(body)
            message = f"Upstream answered HTTP {status}" + (f": {snippet}" if snippet else ".")
        else:
            message = f"Upstream answered HTTP {status} with an unrecognised JSON body."
        parsed_body = {"error": {"code": status, "message": message, "status": status_for(status)}}
    message = message[:_MESSAGE_LIMIT]
    reason = None
    for detail in _details(error) if error is not None else []:
        if _of_type(detail, "ErrorInfo") and isinstance(detail.get("reason"), str) and detail["reason"]:
            reason = detail["reason"]
            break
    validation_url = _validation_url(error, reason, message) if error is not None and (status == 403 or reason == "VALIDATION_REQUIRED") else None
    kind = _kind(status, reason, message, validation_url)
    delay = _finite(_delay(headers, error, message, now))
    about = None
    for detail in _details(error) if error is not None else []:
        metadata = detail.get("metadata") if _of_type(detail, "ErrorInfo") else None
        if isinstance(metadata, Mapping) and isinstance(metadata.get("model"), str) and metadata["model"]:
            about = metadata["model"].removeprefix("models/")
            break
    return UpstreamFailure(
        status=status,
        reason=reason,
        message=message,
        retry_delay=delay,
        kind=kind,
        validation_url=validation_url,
        body=parsed_body,
        model=about,
    )


# -- what the client sees ------------------------------------------------------

_SCRUBS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [redacted]"),
    (re.compile(r"\bya29\.[A-Za-z0-9._-]+"), "[redacted token]"),
    (re.compile(r"\b1//[A-Za-z0-9._-]+"), "[redacted token]"),
    (re.compile(r"\bAIza[A-Za-z0-9_-]{20,}"), "[redacted key]"),
    (re.compile(r"(?i)\b(access_token|refresh_token|id_token|client_secret|key|token)=[^&\s\"']+"), r"\1=[redacted]"),
    (re.compile(r"(https?://[^\s?#\"'<>]+)\?[^\s#\"'<>]*"), r"\1"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[redacted email]"),
    (re.compile(r"\bprojects/[^/\s\"',]+"), "projects/[redacted]"),
)


def scrub(text: str) -> str:
    """``text`` without tokens, keys, emails, project ids or URL query strings."""
    for pattern, replacement in _SCRUBS:
        text = pattern.sub(replacement, text)
    return text


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [_scrub_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    return value


def _client_details(failure: UpstreamFailure) -> list[dict[str, Any]]:
    error = failure.body.get("error", {})
    details = [dict(d) for d in _details(error)]
    if failure.kind == "validation_required":
        # The link is for the operator who owns the account, not for the client.
        details = [d for d in details if not _of_type(d, "Help")]
        for d in details:
            if _of_type(d, "ErrorInfo") and isinstance(d.get("metadata"), Mapping):
                d["metadata"] = {
                    k: v for k, v in d["metadata"].items() if not (isinstance(v, str) and v.startswith(("http://", "https://")))
                }
    details = [_scrub_value(d) for d in details]
    if failure.status == 429 and failure.retry_delay is not None and not any(_of_type(d, "RetryInfo") for d in details):
        details.append(retry_info(failure.retry_delay))
    return details


def client_error(failure: UpstreamFailure) -> GatewayError:
    """The error a client sees when the gateway gives up on this failure.

    Upstream's status code, status name and details pass through (429 keeps
    or gains RetryInfo, and a ``Retry-After`` header when a delay is known);
    the message is kept but scrubbed of tokens, keys, emails, project ids
    and URL queries. Validation links are dropped (they belong to the
    operator). A status that is not an HTTP error (<400 or >599) becomes 502.
    """
    if failure.kind == "unauthorized":
        # Upstream refused the *account's* token (even after a refresh): the
        # gateway's problem, not the client's key — a 401 would make clients
        # blame their own key (Claude Code drops to its login screen).
        return GatewayError(
            503,
            "Cloud Code refused a pool account's credentials even after a token refresh "
            f"({scrub(failure.message) or 'HTTP 401'}). The operator must re-authorise that account "
            "(`antigravity-gateway accounts add`); retry, another account may serve.",
            "UNAVAILABLE",
        )
    code = failure.status if 400 <= failure.status <= 599 else 502
    error = failure.body.get("error", {})
    upstream_status = error.get("status")
    status = upstream_status if isinstance(upstream_status, str) and upstream_status and code == failure.status else status_for(code)
    message = scrub(failure.message) or f"Upstream answered HTTP {failure.status}."
    if failure.kind == "validation_required":
        message = (
            message.rstrip(". ")
            + ". The gateway's Google account needs verification by its operator; retry later."
        )
    headers: dict[str, str] = {}
    if failure.retry_delay is not None and code in (429, 503):
        headers["Retry-After"] = str(max(0, math.ceil(failure.retry_delay)))
    return GatewayError(code, message, status, _client_details(failure), headers)


__all__ = [
    "KINDS",
    "TYPE_PREFIX",
    "UpstreamFailure",
    "classify",
    "client_error",
    "parse_duration",
    "parse_timestamp",
    "scrub",
]
