"""``GET /admin/accounts``: the pool's live state as JSON, for the operator.

A leaf resource mounted in front of the Klein app (``AdminDispatch``), inside
the auth wrapper: with auth on it needs an API key like every route. With
auth off it answers only connections from a loopback address or a unix
socket that did not come through a proxy (no ``Forwarded``/``X-Forwarded-*``
headers). It never shows a token.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Callable

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from gateway.pool.view import pool_view
from gateway.protocol.errors import error_body

JSON = b"application/json; charset=UTF-8"
PREFIX = b"/admin"
PROXY_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-forwarded-host", b"x-real-ip")


def is_loopback_client(request: IRequest) -> bool:
    """A direct connection from this host (loopback TCP or a unix socket), not a proxied one."""
    if any(request.getHeader(name) is not None for name in PROXY_HEADERS):
        return False
    address = request.getClientAddress()
    if isinstance(address, UNIXAddress):
        return True
    if isinstance(address, (IPv4Address, IPv6Address)):
        try:
            return ipaddress.ip_address(address.host.split("%")[0]).is_loopback
        except ValueError:
            return False
    return False


class AdminResource(Resource):
    isLeaf = True

    def __init__(self, pool: Any, clock: Callable[[], float], auth_mode: str, policy: str | None = None) -> None:
        super().__init__()
        self.pool = pool
        self.clock = clock
        self.auth_mode = auth_mode
        self.policy = policy
        #: The live client version and the OAuth client table (set by assembly), for the view.
        self.version: Any = None
        self.clients: Any = None
        self.shared: Any = None  # gateway.shared backend: its status joins the view
        self.worker: Any = None  # {"index", "pid"} when this process is one of [server] workers

    def render(self, request: IRequest) -> bytes:
        request.setHeader(b"Content-Type", JSON)
        request.setHeader(b"Cache-Control", b"no-store")
        if self.auth_mode == "off" and not is_loopback_client(request):
            request.setResponseCode(403)
            return error_body(
                403,
                "The admin view answers only loopback clients while auth is off; set [auth] mode and keys "
                "to reach it from elsewhere.",
            )
        path = request.path.rstrip(b"/")
        if path != PREFIX + b"/accounts":
            request.setResponseCode(404)
            return error_body(404, f"Unknown admin route {path.decode('latin-1', 'replace')}: see GET /admin/accounts.")
        if request.method not in (b"GET", b"HEAD"):
            request.setResponseCode(405)
            request.setHeader(b"Allow", b"GET, HEAD")
            return error_body(405, "Only GET is allowed on /admin/accounts.", "NOT_FOUND")
        self.pool.maybe_reload()
        view = pool_view(self.pool, self.clock(), self.policy, clients=self.clients)
        if self.version is not None:
            view["client_version"] = self.version.view()
        if self.shared is not None:
            view["shared"] = self.shared.status()
        if self.worker is not None:
            view["worker"] = self.worker
        return json.dumps(view, indent=1).encode()


class AdminDispatch(Resource):
    """Sends ``/admin/…`` to the admin resource and everything else to the API."""

    isLeaf = True

    def __init__(self, api: Any, admin: AdminResource) -> None:
        super().__init__()
        self.api = api
        self.admin = admin

    def render(self, request: IRequest) -> Any:
        if request.path == PREFIX or request.path.startswith(PREFIX + b"/"):
            return self.admin.render(request)
        return self.api.render(request)
