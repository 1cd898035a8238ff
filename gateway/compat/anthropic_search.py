"""Gemini Google Search grounding -> Anthropic's web search answer shapes. Pure.

A request with a ``web_search_*`` server tool is sent upstream with
``googleSearch``; the grounded answer's ``groundingMetadata`` comes back as
what Anthropic's server tool returns: a ``server_tool_use`` block (the
query), a ``web_search_tool_result`` block (the sources), citations on the
text (``web_search_result_location``) and ``usage.server_tool_use``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from gateway.compat.common import candidates_of, new_id

#: Where a search goes when the client asked a Claude model: Cloud Code grounds only Gemini models.
SEARCH_MODEL = "gemini-3-flash"
CITED_TEXT_LIMIT = 150


def grounding_of(response: Any) -> dict[str, Any] | None:
    """The first candidate's ``groundingMetadata`` when it names sources or queries."""
    candidates = candidates_of(response)
    metadata = candidates[0].get("groundingMetadata") if candidates else None
    if not isinstance(metadata, dict):
        return None
    if not metadata.get("groundingChunks") and not metadata.get("webSearchQueries"):
        return None
    return metadata


def _sources(metadata: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for chunk in metadata.get("groundingChunks") or []:
        web = chunk.get("web") if isinstance(chunk, dict) else None
        if isinstance(web, dict) and isinstance(web.get("uri"), str):
            title = web.get("title") if isinstance(web.get("title"), str) else web["uri"]
            out.append({"url": web["uri"], "title": title})
    return out


def _opaque(obj: Any) -> str:
    return base64.b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode("ascii")


def query_of(metadata: dict[str, Any]) -> str:
    queries = [q for q in metadata.get("webSearchQueries") or [] if isinstance(q, str)]
    return queries[0] if queries else ""


def searches(metadata: dict[str, Any] | None) -> int:
    """``usage.server_tool_use.web_search_requests``: the queries Google ran (at least 1 when grounded)."""
    if not metadata:
        return 0
    return max(1, len([q for q in metadata.get("webSearchQueries") or [] if isinstance(q, str)]))


def search_blocks(metadata: dict[str, Any], tool_name: str = "web_search") -> list[dict[str, Any]]:
    """``server_tool_use`` (the query) and ``web_search_tool_result`` (the sources), in that order."""
    call_id = new_id("srvtoolu_")
    results = [{"type": "web_search_result", "url": s["url"], "title": s["title"], "encrypted_content": _opaque(s),
                "page_age": None} for s in _sources(metadata)]
    return [
        {"type": "server_tool_use", "id": call_id, "name": tool_name, "input": {"query": query_of(metadata)}},
        {"type": "web_search_tool_result", "tool_use_id": call_id, "content": results},
    ]


def citations(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """One ``web_search_result_location`` per (supported segment, source), in order, without repeats."""
    sources = _sources(metadata)
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for support in metadata.get("groundingSupports") or []:
        if not isinstance(support, dict):
            continue
        segment = support.get("segment") if isinstance(support.get("segment"), dict) else {}
        text = segment.get("text") if isinstance(segment.get("text"), str) else ""
        for index in support.get("groundingChunkIndices") or []:
            if not isinstance(index, int) or not 0 <= index < len(sources):
                continue
            source = sources[index]
            if (source["url"], text) in seen:
                continue
            seen.add((source["url"], text))
            out.append({"type": "web_search_result_location", "url": source["url"], "title": source["title"],
                        "cited_text": text[:CITED_TEXT_LIMIT], "encrypted_index": _opaque({"i": index})})
    if not out:  # grounded without supports: cite each source once
        out = [{"type": "web_search_result_location", "url": s["url"], "title": s["title"], "cited_text": "",
                "encrypted_index": _opaque({"i": i})} for i, s in enumerate(sources)]
    return out


def merged(documents: list[Any]) -> dict[str, Any]:
    """Streamed GenerateContentResponses as one: parts joined, the last finishReason, usage and grounding."""
    parts: list[dict[str, Any]] = []
    candidate: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for document in documents:
        for key, value in (document.items() if isinstance(document, dict) else ()):
            if key != "candidates":
                out[key] = value
        candidates = candidates_of(document)
        if not candidates:
            continue
        first = candidates[0]
        content = first.get("content") if isinstance(first.get("content"), dict) else {}
        parts.extend(p for p in content.get("parts") or [] if isinstance(p, dict))
        for key in ("finishReason", "groundingMetadata"):
            if first.get(key):
                candidate[key] = first[key]
    candidate["content"] = {"role": "model", "parts": parts}
    out["candidates"] = [candidate]
    return out
