"""The operator's model mapping table: exact ids and ``*`` patterns -> upstream ids.

Owns matching and its tie-breaking; must not know which models exist
upstream (a target that upstream lacks fails there, with upstream's error).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from gateway.protocol.models import strip_models_prefix


@dataclass(frozen=True)
class _Pattern:
    pattern: str
    target: str
    pieces: tuple[str, ...]
    literal_chars: int
    wildcards: int

    @property
    def rank(self) -> tuple[int, int, str]:
        """Sort key: most literal characters, then fewest wildcards, then the pattern text."""
        return (-self.literal_chars, self.wildcards, self.pattern)


    def matches(self, text: str) -> bool:
        """Glob match by pieces: prefix, suffix, and the middle pieces found in order.

        Taking each middle piece's leftmost occurrence is always optimal for
        ``*``-only globs, so this is linear in ``text`` with no backtracking:
        a client-chosen model id cannot make it slow (a ``.*a.*a.*b`` regex
        could be made to backtrack polynomially).
        """
        pieces = self.pieces
        first, last = pieces[0], pieces[-1]
        start, end = len(first), len(text) - len(last)
        if start > end or not text.startswith(first) or not text.endswith(last):
            return False
        for piece in pieces[1:-1]:
            found = text.find(piece, start, end)
            if found < 0:
                return False
            start = found + len(piece)
        return True


class PatternTable:
    """Maps requested model ids to upstream ids.

    Keys are exact ids or patterns where ``*`` matches any run of characters
    (anywhere, any number of times); targets are literal ids. Both lose any
    ``models/`` prefix. ``lookup`` prefers an exact key, else the most
    specific matching pattern: most literal characters, then fewest
    wildcard runs (``a**b`` counts as one), then the lexicographically
    smallest pattern, so the answer never depends on table order. Matching
    is case-sensitive, like Google's model ids. Patterns are split into
    their literal pieces and ranked here, once.
    """

    def __init__(self, mapping: Mapping[str, str]) -> None:
        exact: dict[str, str] = {}
        patterns: dict[str, _Pattern] = {}
        origin: dict[str, str] = {}
        for raw_pattern, raw_target in mapping.items():
            pattern, target = self._validated(raw_pattern, raw_target)
            if pattern in origin and (exact.get(pattern) or patterns[pattern].target) != target:
                raise ValueError(
                    f"model mapping: patterns {origin[pattern]!r} and {raw_pattern!r} are the same "
                    f"pattern with different targets"
                )
            origin[pattern] = raw_pattern
            if "*" not in pattern:
                exact[pattern] = target
                continue
            collapsed = re.sub(r"\*+", "*", pattern)
            patterns[pattern] = _Pattern(
                pattern=pattern,
                target=target,
                pieces=tuple(collapsed.split("*")),
                literal_chars=len(collapsed) - collapsed.count("*"),
                wildcards=collapsed.count("*"),
            )
        self._exact = exact
        self._patterns = tuple(sorted(patterns.values(), key=lambda p: p.rank))

    @staticmethod
    def _validated(pattern: object, target: object) -> tuple[str, str]:
        if not isinstance(pattern, str) or not pattern.strip():
            raise ValueError(f"model mapping: pattern {pattern!r} must be a non-empty string")
        if pattern != pattern.strip() or any(c.isspace() for c in pattern):
            raise ValueError(f"model mapping: pattern {pattern!r} must not contain whitespace")
        if not isinstance(target, str) or not target.strip():
            raise ValueError(f"model mapping: pattern {pattern!r} needs a non-empty target model id, got {target!r}")
        if "*" in target:
            raise ValueError(f"model mapping: pattern {pattern!r} has target {target!r}; targets are literal ids, without '*'")
        if any(c.isspace() for c in target):
            raise ValueError(f"model mapping: pattern {pattern!r} has target {target!r} with whitespace")
        bare_pattern = strip_models_prefix(pattern)
        bare_target = strip_models_prefix(target)
        if not bare_pattern:
            raise ValueError(f"model mapping: pattern {pattern!r} is only a 'models/' prefix")
        if not bare_target:
            raise ValueError(f"model mapping: pattern {pattern!r} has target {target!r}, only a 'models/' prefix")
        return bare_pattern, bare_target

    def lookup(self, model: str) -> str | None:
        """The upstream id for ``model`` (``models/`` prefix ignored), or None when nothing matches."""
        bare = strip_models_prefix(model)
        found = self._exact.get(bare)
        if found is not None:
            return found
        for entry in self._patterns:
            if entry.matches(bare):
                return entry.target
        return None

    def __len__(self) -> int:
        return len(self._exact) + len(self._patterns)

    def __repr__(self) -> str:
        return f"PatternTable({len(self._exact)} exact, {len(self._patterns)} patterns)"
