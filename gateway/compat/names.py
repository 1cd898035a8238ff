"""Function names Gemini accepts, and the way back to the client's names.

Gemini wants ``[A-Za-z_][A-Za-z0-9_.:-]{0,63}``; OpenAI and Anthropic allow
other characters (``$``, spaces, non-ASCII …) and longer names. A
:class:`NameMap` is built per request from every name the request carries
(tool declarations, calls in the history), gives each a safe unique name,
and maps the names in the answer back. Pure.
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable

MAX_LENGTH = 64
_VALID = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]{0,63}")
_BAD_CHAR = re.compile(r"[^A-Za-z0-9_.:\-]")


def is_valid(name: str) -> bool:
    return isinstance(name, str) and _VALID.fullmatch(name) is not None


def sanitise(name: str) -> str:
    """A valid Gemini function name close to ``name`` (unchanged when already valid).

    Invalid characters become ``_``; a name not starting with a letter or
    ``_`` gets a ``_`` in front; an over-long name is cut and ends with 8 hex
    digits of its hash, so two long names that share a prefix stay distinct.
    """
    if is_valid(name):
        return name
    text = _BAD_CHAR.sub("_", name or "")
    if not text or not (text[0].isascii() and (text[0].isalpha() or text[0] == "_")):
        text = "_" + text
    if len(text) > MAX_LENGTH:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        text = text[: MAX_LENGTH - 9] + "_" + digest
    return text


class NameMap:
    """Client name <-> Gemini name for one request; collisions get a numbered suffix."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._to_safe: dict[str, str] = {}
        self._to_client: dict[str, str] = {}
        for name in names:
            self.safe(name)

    def safe(self, name: str) -> str:
        """The Gemini name for ``name`` (allocated on first use)."""
        found = self._to_safe.get(name)
        if found is not None:
            return found
        candidate = sanitise(name)
        n = 2
        while candidate in self._to_client and self._to_client[candidate] != name:
            suffix = f"_{n}"
            candidate = sanitise(name)[: MAX_LENGTH - len(suffix)] + suffix
            n += 1
        self._to_safe[name] = candidate
        self._to_client[candidate] = name
        return candidate

    def client(self, safe_name: str) -> str:
        """The client's name for a name in Gemini's answer (unknown names pass through)."""
        return self._to_client.get(safe_name, safe_name)

    def __contains__(self, name: object) -> bool:
        return name in self._to_safe

    def __len__(self) -> int:
        return len(self._to_safe)
