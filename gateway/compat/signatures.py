"""Thought signatures: remembered by tool-call id, and where each came from.

Gemini 3 rejects a function call in the history that lost the
``thoughtSignature`` it was returned with; OpenAI clients drop unknown fields
and Anthropic's ``tool_use`` has no place for one. So every signature the
gateway hands out on a function call is remembered by the call's id (for a
TTL), and restored when the call comes back without it. Every signature is
also remembered with the model *family* that produced it, so a Claude
thinking signature is only ever sent back to the same family, never to
Gemini (and never invented). Pure: ``now`` is passed in; memory is bounded
(oldest entries go first).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Generic, TypeVar

#: What Gemini accepts on a ``functionCall`` part when the real signature is lost
#: (never valid for Claude thinking blocks).
SKIP_SIGNATURE = "skip_thought_signature_validator"
DEFAULT_TTL = 24 * 3600.0
DEFAULT_MAX_ENTRIES = 100_000

K = TypeVar("K")
V = TypeVar("V")


def model_family(model: str) -> str:
    """``claude`` for Anthropic models, ``gemini-<major>`` for Gemini ones, else the first word.

    Signatures are only valid within a family: Gemini 2.5's differ from
    Gemini 3's, and neither is a Claude signature.
    """
    bare = model.rsplit("/", 1)[-1].lower()
    if bare.startswith("claude"):
        return "claude"
    if bare.startswith("gemini-"):
        version = bare.split("-")[1]
        return "gemini-" + version.split(".")[0]
    return bare.split("-")[0]


def is_gemini(model: str) -> bool:
    return model_family(model).startswith("gemini")


class _TTLMap(Generic[K, V]):
    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def put(self, key: K, value: V, now: float) -> None:
        self._items.pop(key, None)
        self._items[key] = (now + self.ttl, value)
        self._expire(now)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def get(self, key: K, now: float) -> V | None:
        entry = self._items.get(key)
        if entry is None:
            return None
        expires, value = entry
        if now >= expires:
            del self._items[key]
            return None
        return value

    def _expire(self, now: float) -> None:
        # Entries are in insertion order and share one TTL: expired ones are at the front.
        while self._items:
            key, (expires, _) = next(iter(self._items.items()))
            if now < expires:
                break
            del self._items[key]

    def __len__(self) -> int:
        return len(self._items)


def _digest(signature: str) -> bytes:
    return hashlib.sha256(signature.encode("utf-8", "surrogatepass")).digest()


class SignatureMemory:
    """Signatures by tool-call id, and the family each signature came from."""

    def __init__(self, ttl: float = DEFAULT_TTL, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._calls: _TTLMap[str, tuple[str, str]] = _TTLMap(ttl, max_entries)
        self._families: _TTLMap[bytes, str] = _TTLMap(ttl, max_entries)
        self._thoughts: _TTLMap[bytes, str] = _TTLMap(ttl, max_entries)

    def remember(self, signature: str, model: str, now: float, call_id: str | None = None) -> None:
        """``signature`` was returned by ``model`` (on the call ``call_id``, if any)."""
        if not signature:
            return
        family = model_family(model)
        self._families.put(_digest(signature), family, now)
        if call_id:
            self._calls.put(call_id, (signature, family), now)

    def for_call(self, call_id: str, now: float) -> tuple[str, str] | None:
        """``(signature, family)`` remembered for this tool-call id, or None."""
        return self._calls.get(call_id, now) if call_id else None

    def remember_thought(self, signature: str, text: str, now: float) -> None:
        """The thinking text a client was not shown (``display: "omitted"``), to restore when it comes back."""
        if signature and text:
            self._thoughts.put(_digest(signature), text, now)

    def thought_for(self, signature: str, now: float) -> str | None:
        return self._thoughts.get(_digest(signature), now) if signature else None

    def family_of(self, signature: str, now: float) -> str | None:
        return self._families.get(_digest(signature), now) if signature else None

    def __len__(self) -> int:
        return len(self._calls) + len(self._families) + len(self._thoughts)


def call_signature(
    memory: SignatureMemory,
    call_id: str | None,
    given: str | None,
    model: str,
    now: float,
) -> str | None:
    """The signature to put on a ``functionCall`` part sent to ``model``.

    The client's own signature when it came from this model family (or is of
    unknown origin and the target is Gemini, where only Gemini puts them on
    calls); else the one remembered for ``call_id`` when its family matches;
    else None. The sentinel is the caller's last resort (:data:`SKIP_SIGNATURE`).
    """
    family = model_family(model)
    if given:
        origin = memory.family_of(given, now)
        if origin == family or (origin is None and is_gemini(model)):
            return given
    remembered = memory.for_call(call_id, now) if call_id else None
    if remembered is not None and remembered[1] == family:
        return remembered[0]
    return None


def thinking_signature(memory: SignatureMemory, signature: str | None, model: str, now: float) -> str | None:
    """A thinking block's signature, only when it is known to come from ``model``'s family."""
    if not signature:
        return None
    return signature if memory.family_of(signature, now) == model_family(model) else None
