"""Client credentials: where a key may be, how to log it, how to check it.

Owns the lookup order and constant-time comparison; must not decide which
paths need a key (the web layer's job) or log a secret.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Mapping, Sequence

#: Header names in lookup order (lower-case, as the web layer passes them).
KEY_HEADERS = ("x-goog-api-key", "authorization", "x-api-key")
QUERY_KEY = "key"

_REVEAL_MIN_LENGTH = 12
_MASK = "****"


def _text(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return value if isinstance(value, str) else ""


def _get(mapping: Mapping, name: str) -> object:
    value = mapping.get(name)
    if value is None:
        value = mapping.get(name.encode("latin-1"))  # tolerate raw Twisted byte names
    return value


def extract_credential(headers: Mapping[str, str], query: Mapping[str, Sequence[str]]) -> str | None:
    """The client's key, or None: ``x-goog-api-key``, ``Authorization: Bearer``, ``x-api-key``, ``?key=``.

    Header names are lower-case. The Bearer scheme is case-insensitive;
    other schemes (Basic…) are not keys. Empty or blank values count as
    absent, so a later place is still looked at. Values are stripped.
    """
    google = _text(_get(headers, "x-goog-api-key")).strip()
    if google:
        return google
    authorization = _text(_get(headers, "authorization")).strip()
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    other = _text(_get(headers, "x-api-key")).strip()
    if other:
        return other
    values = _get(query, QUERY_KEY)
    if isinstance(values, (str, bytes)):
        values = [values]
    for value in values or ():
        key = _text(value).strip()
        if key:
            return key
    return None


def redact(secret: str) -> str:
    """A secret as logs may show it: ``…abcd`` (the last 4 chars) or, under 12 chars, ``****``.

    Never reveals more than 4 characters nor a short secret's length.
    """
    if not secret or len(secret) < _REVEAL_MIN_LENGTH:
        return _MASK
    return "…" + secret[-4:]


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def keys_match(candidate: str | None, keys: Sequence[str]) -> bool:
    """True when ``candidate`` equals one of ``keys``, in time independent of which or where it differs.

    Both sides are hashed to fixed-length digests (so key lengths leak
    nothing) and every key is compared with ``hmac.compare_digest``, with
    no early exit. None, empty candidates and empty keys never match.
    """
    if not candidate:
        return False
    wanted = _digest(candidate)
    matched = False
    for key in keys:
        same = hmac.compare_digest(wanted, _digest(key)) if key else False
        matched |= same
    return matched
