"""A requested model name -> the model Cloud Code serves now. Pure; the catalogue comes in.

Order (docs/models.md): the exact catalogue id; upstream's
``deprecatedModelIds``; the operator's ``[models] mapping`` (its target is
resolved again, so a mapping to a retired id keeps working); then the
built-in alias table, which picks **by family and tier** the best model in
the live catalogue — never a fixed id that can vanish. Anything else is a
404 naming the model and the ids served. Every door calls :func:`resolve`.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

import attrs

from gateway.protocol.catalogue import Catalogue, LiveModel
from gateway.protocol.errors import GatewayError
from gateway.protocol.models import strip_models_prefix

#: A pick: (provider, tiers) in the live catalogue, ranked by ``best`` or ``fast``.
Pick = tuple[str, tuple[str, ...], str]

BEST_PRO: Pick = ("google", ("pro",), "best")
BEST_FLASH: Pick = ("google", ("flash",), "best")
FAST: Pick = ("google", ("lite", "flash"), "fast")
IMAGE: Pick = ("google", ("image",), "best")
OPUS: Pick = ("anthropic", ("opus",), "best")
SONNET: Pick = ("anthropic", ("sonnet",), "best")
OSS: Pick = ("openai", ("oss",), "best")

#: The alias table: (regex on the requested name, picks tried in order, why).
#: First matching row wins; docs/models.md renders it.
ALIASES: tuple[tuple[str, tuple[Pick, ...], str], ...] = (
    (r"gemini-.*image.*|imagen-.*|dall-e-.*|gpt-image-.*", (IMAGE,), "image generation: the image model served"),
    (r"gemini-.*flash-lite.*|gemini-flash-lite-latest", (FAST, BEST_FLASH), "lite: the fast Gemini (a lite model, else the lightest flash)"),
    (r"gemini-.*pro.*|gemini-pro-latest|gemini-exp-.*|gemini-ultra.*", (BEST_PRO, BEST_FLASH), "Gemini Pro: the best pro served, else the best flash"),
    (r"gemini-.*flash.*|gemini-flash-latest", (BEST_FLASH, BEST_PRO), "Gemini Flash: the best flash served (highest version, highest effort)"),
    (r"(claude-.*)?opus.*|claude-.*opus.*", (OPUS, SONNET, BEST_PRO), "Claude Opus: the best opus served, else sonnet, else the best Gemini pro"),
    (r"(claude-.*)?sonnet.*|claude-.*sonnet.*", (SONNET, OPUS, BEST_PRO), "Claude Sonnet: the best sonnet served, else opus, else the best Gemini pro"),
    (r"(claude-.*)?haiku.*|claude-.*haiku.*", (FAST, BEST_FLASH), "Claude Haiku (background tasks): a fast Gemini flash"),
    (r"claude-.*", (SONNET, OPUS, BEST_PRO), "other Claude ids: the best sonnet served"),
    (r"gpt-oss.*", (OSS, BEST_FLASH), "GPT-OSS: the OSS model served, else the best flash"),
    (r"(gpt-|chatgpt-|o\d).*(mini|nano).*", (FAST, BEST_FLASH), "small OpenAI models: a fast Gemini flash"),
    (r"o\d.*", (BEST_PRO, BEST_FLASH), "OpenAI reasoning models (o1, o3, o4…): the best Gemini pro"),
    (r"gpt-.*|chatgpt-.*", (BEST_FLASH, BEST_PRO), "GPT models: the best Gemini flash"),
)
_COMPILED = tuple((re.compile(pattern), picks, why) for pattern, picks, why in ALIASES)


@attrs.frozen
class Resolved:
    """The upstream id and how it was found (``exact``, ``deprecated``, ``mapping``, ``alias``, ``unchecked``)."""

    model: str
    how: str


def _best_key(m: LiveModel) -> tuple:
    """Highest version, then effort, plain before ``-agent`` variants, then the id."""
    return (m.version, m.effort, not m.agent, [-ord(c) for c in m.id])


def _fast_key(m: LiveModel) -> tuple:
    """A lite model first, then the lowest effort, then the highest version."""
    return (m.tier == "lite", -m.effort, not m.agent, m.version, [-ord(c) for c in m.id])


def pick(catalogue: Catalogue, choice: Pick) -> str | None:
    provider, tiers, rank = choice
    found = [m for m in catalogue.models.values() if m.provider == provider and m.tier in tiers]
    if not found:
        return None
    return max(found, key=_best_key if rank == "best" else _fast_key).id


def alias(catalogue: Catalogue, requested: str) -> str | None:
    """The built-in table's pick for ``requested`` in this catalogue, or None."""
    name = requested.lower()
    for pattern, picks, _ in _COMPILED:
        if pattern.fullmatch(name):
            for choice in picks:
                found = pick(catalogue, choice)
                if found is not None:
                    return found
            return None
    return None


def _served(catalogue: Catalogue, name: str) -> Resolved | None:
    if name in catalogue:
        return Resolved(name, "exact")
    new = catalogue.deprecated.get(name)
    if new is not None and new in catalogue:
        return Resolved(new, "deprecated")
    return None


def not_found(requested: str, served: Iterable[str]) -> GatewayError:
    listed = ", ".join(served) or "none (no account could list models)"
    return GatewayError(
        404,
        f"Model {requested!r} is not served by Cloud Code now and no alias matches it. "
        f"Use one of: {listed}; or map it with [models] mapping.",
        "NOT_FOUND",
    )


def resolve(requested: str, catalogue: Catalogue | None, mapping: Callable[[str], str] | None = None) -> Resolved:
    """The upstream model for ``requested`` (``models/`` prefix ignored).

    ``catalogue`` None (no account could list models right now): the
    operator's mapping still applies, and any other name goes upstream as
    asked (``unchecked``), which then answers for itself.
    """
    bare = strip_models_prefix(requested.strip())
    if catalogue is None:
        mapped = mapping(bare) if mapping is not None else bare
        return Resolved(mapped, "mapping" if mapped != bare else "unchecked")
    found = _served(catalogue, bare)
    if found is not None:
        return found
    if mapping is not None:
        mapped = strip_models_prefix(mapping(bare))
        if mapped != bare:
            target = _served(catalogue, mapped)
            chosen = target.model if target is not None else alias(catalogue, mapped)
            return Resolved(chosen or mapped, "mapping")
    chosen = alias(catalogue, bare)
    if chosen is not None:
        return Resolved(chosen, "alias")
    raise not_found(bare, catalogue.ids())


def alias_table(catalogue: Catalogue, names: Iterable[str]) -> list[tuple[str, str | None]]:
    """What each name resolves to in ``catalogue`` (for docs and the admin view)."""
    out: list[tuple[str, str | None]] = []
    for name in names:
        try:
            out.append((name, resolve(name, catalogue).model))
        except GatewayError:
            out.append((name, None))
    return out
