"""docs/api.md and ``GET /`` against the routes the Klein apps really serve.

A route added to a door without a line in docs/api.md (or in the home page's
list, for the ``/v1/…`` ones) fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.web.app import GatewayApp
from gateway.web.compat_routes import CompatApp
from gateway.web.home import ROUTES
from gateway.web.responses_routes import ResponsesApp

API_DOC = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()


def fixed_routes() -> list[str]:
    """Every route path without a variable part (the Gemini ``…/models/…`` routes have their own table)."""
    return sorted({rule.rule for app in (GatewayApp, CompatApp, ResponsesApp)
                   for rule in app.app.url_map.iter_rules() if "<" not in rule.rule})


@pytest.mark.parametrize("path", fixed_routes())
def test_every_route_is_in_api_md(path: str) -> None:
    assert f"`{path}`" in API_DOC or f"`GET {path}`" in API_DOC or f"`POST {path}`" in API_DOC or f"/{path.lstrip('/')}`" in API_DOC, \
        f"docs/api.md does not list {path}"


@pytest.mark.parametrize("path", [p for p in fixed_routes() if p.startswith("/v1/")])
def test_every_v1_route_is_on_the_home_page_or_named_there(path: str) -> None:
    listed = " ".join(f"{p} {w}" for _, p, w in ROUTES)
    assert path in listed, f"GET / does not name {path}"


def test_the_admin_api_is_in_api_md() -> None:
    for route in ("/admin/accounts", "/admin/", "/admin/usage", "/admin/overview", "/admin/keys"):
        assert route in API_DOC, route
