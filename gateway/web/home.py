"""``GET /``: a short page that says what answers on this address (JSON or HTML by ``Accept``).

Pure: the document and its two renderings. Names the gateway, its version,
the routes and where the documentation is; never keys, accounts or settings.
"""

from __future__ import annotations

import html
import json
from typing import Any

ROUTES = (
    ("GET", "/healthz", "liveness and version (never behind auth)"),
    ("GET", "/v1beta/models", "the models the pool can serve (also /v1/models)"),
    ("POST", "/v1beta/models/{model}:generateContent", "Gemini API (also under /v1 and /v1alpha)"),
    ("POST", "/v1beta/models/{model}:streamGenerateContent?alt=sse", "Gemini API, streamed"),
    ("POST", "/v1beta/models/{model}:countTokens", "Gemini API token count"),
    ("POST", "/v1/chat/completions", "OpenAI Chat Completions"),
    ("POST", "/v1/responses", "OpenAI Responses API (Codex)"),
    ("GET, DELETE", "/v1/responses/{id}", "a stored response"),
    ("POST", "/v1/images/generations", "OpenAI images from a prompt (also /v1/images/edits)"),
    ("POST", "/v1/messages", "Anthropic Messages"),
    ("POST", "/v1/messages/count_tokens", "Anthropic token count"),
    ("GET", "/admin/accounts", "the pool's live state, for the operator"),
    ("GET", "/admin/", "the team dashboard (with [team] admin_key)"),
    ("GET", "/metrics", "Prometheus metrics"),
)
DOCS = "README.md and docs/ in the antigravity-gateway source (docs/clients.md: pointing clients here)"


def home_document(version: str) -> dict[str, Any]:
    return {
        "name": "antigravity-gateway",
        "version": version,
        "description": "Gemini, OpenAI and Anthropic APIs served through Cloud Code and a pool of Google accounts.",
        "routes": [{"method": m, "path": p, "what": w} for m, p, w in ROUTES],
        "docs": DOCS,
    }


def wants_html(accept: bytes | None) -> bool:
    """HTML only when the client prefers it over JSON (a browser); JSON for everything else."""
    if not accept:
        return False
    text = accept.decode("latin-1", "replace").lower()
    at_html = text.find("text/html")
    if at_html < 0:
        return False
    at_json = text.find("application/json")
    return at_json < 0 or at_html < at_json


def render_home(version: str, accept: bytes | None) -> tuple[bytes, bytes]:
    """(Content-Type, body) for ``GET /``."""
    doc = home_document(version)
    if not wants_html(accept):
        return b"application/json; charset=UTF-8", json.dumps(doc, indent=1).encode()
    rows = "".join(
        f"<tr><td>{html.escape(r['method'])}</td><td><code>{html.escape(r['path'])}</code></td><td>{html.escape(r['what'])}</td></tr>"
        for r in doc["routes"]
    )
    page = (
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>antigravity-gateway</title></head><body>"
        f"<h1>antigravity-gateway {html.escape(version)}</h1><p>{html.escape(doc['description'])}</p>"
        f"<table>{rows}</table><p>Documentation: {html.escape(DOCS)}.</p></body></html>"
    )
    return b"text/html; charset=UTF-8", page.encode()
