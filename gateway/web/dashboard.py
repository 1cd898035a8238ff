"""``/admin/``: the team dashboard (static files) and its JSON API, behind ``[team] admin_key``.

``AdminFront`` sits before the client-key check: a request to ``/admin…``
carrying the admin key (``Authorization: Bearer`` or ``x-admin-key``) is
served here; the page and its static files need no key (they hold no data;
the page asks for the key). Anything else goes on to the normal chain, so
``GET /admin/accounts`` with a client key keeps working as before. Store
work runs in threads; the pool and the team tables are read in memory.
"""

from __future__ import annotations

import json
import os
from typing import Any, Awaitable, Callable
from urllib.parse import unquote

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET

from gateway import __version__
from gateway.protocol.credentials import keys_match
from gateway.protocol.errors import error_body
from gateway.team import operations
from gateway.team.keys import KeyProblem, key_view
from gateway.team.usage import GROUPS, parse_since

JSON = b"application/json; charset=UTF-8"
FILES = os.path.join(os.path.dirname(__file__), "dashboard_files")
STATIC = {
    b"/admin/": ("index.html", b"text/html; charset=UTF-8"),
    b"/admin/static/app.js": ("app.js", b"text/javascript; charset=UTF-8"),
    b"/admin/static/app.css": ("app.css", b"text/css; charset=UTF-8"),
}
log = Logger(namespace="antigravity_gateway.dashboard")


def admin_credential(request: IRequest) -> str | None:
    value = request.getHeader(b"x-admin-key")
    if value:
        return value.decode("latin-1").strip()
    auth = request.getHeader(b"authorization")
    if auth and auth[:7].lower() == b"bearer ":
        return auth[7:].decode("latin-1").strip()
    return None


class Problem(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class AdminFront(Resource):
    """Sends the dashboard and admin-key requests to ``dashboard``, everything else to ``inner``."""

    isLeaf = True

    def __init__(self, inner: IResource, dashboard: "Dashboard") -> None:
        super().__init__()
        self.inner = inner
        self.dashboard = dashboard

    def render(self, request: IRequest) -> Any:
        path = request.path
        if path == b"/admin" or path.startswith(b"/admin/"):
            if path in STATIC or path == b"/admin":
                return self.dashboard.render_static(request)
            key = self.dashboard.admin_key
            if key and keys_match(admin_credential(request), (key,)):
                return self.dashboard.render(request)
            if path != b"/admin/accounts":  # the one admin route a client key may read (as before)
                request.setResponseCode(401 if key else 403)
                request.setHeader(b"Content-Type", JSON)
                message = ("This admin route needs the admin key ([team] admin_key) as Authorization: Bearer or x-admin-key."
                           if key else "The dashboard and admin API are off: set [team] admin_key in the config and restart.")
                return error_body(401 if key else 403, message, "UNAUTHENTICATED" if key else "PERMISSION_DENIED")
        return self.inner.render(request)


class Dashboard:
    def __init__(self, team: Any, pool: Any, accounts_view: IResource, admin_key: str, clock: Callable[[], float],
                 quota: Any = None, user_agent: Any = "") -> None:
        self.team = team
        self.pool = pool
        self.accounts_view = accounts_view
        self.admin_key = admin_key
        self.clock = clock
        self.quota = quota
        self.user_agent = user_agent

    # -- static --

    def render_static(self, request: IRequest) -> bytes:
        if request.path == b"/admin":
            request.setResponseCode(301)
            request.setHeader(b"Location", b"/admin/")
            return b""
        name, kind = STATIC[request.path]
        with open(os.path.join(FILES, name), "rb") as f:
            body = f.read()
        request.setHeader(b"Content-Type", kind)
        request.setHeader(b"Cache-Control", b"no-cache")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.setHeader(b"Content-Security-Policy", b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'")
        return body

    # -- the API --

    def render(self, request: IRequest) -> Any:
        path = request.path.rstrip(b"/").decode("utf-8", "replace")
        method = request.method
        parts = [unquote(p) for p in path.split("/")[2:]]  # after /admin
        request.setHeader(b"Cache-Control", b"no-store")
        if parts == ["accounts"]:
            return self.accounts_view.render(request)
        try:
            handler = self._route(method, parts)
        except Problem as p:
            return self._error(request, p)
        return self._run(request, handler)

    def _route(self, method: bytes, parts: list[str]) -> Callable[[IRequest], Awaitable[Any]]:
        get, post = method in (b"GET", b"HEAD"), method == b"POST"
        if parts == ["overview"] and get:
            return self.overview
        if parts == ["usage"] and get:
            return self.usage
        if parts == ["keys"] and get:
            return self.list_keys
        if parts == ["keys"] and post:
            return self.create_key
        if len(parts) == 2 and parts[0] == "keys" and post:
            return lambda r: self.edit_key(r, parts[1])
        if len(parts) == 3 and parts[0] == "keys" and parts[2] == "revoke" and post:
            return lambda r: self.revoke_key(r, parts[1])
        if len(parts) == 3 and parts[0] == "accounts" and parts[2] in ("enable", "disable", "refresh") and post:
            return lambda r: self.account_action(r, parts[1], parts[2])
        raise Problem(404, f"Unknown admin route {'/'.join(['', 'admin', *parts])} for {method.decode()}: see docs/team.md.")

    def _run(self, request: IRequest, handler: Callable[[IRequest], Awaitable[Any]]) -> Any:
        d = Deferred.fromCoroutine(handler(request))  # type: ignore[arg-type]

        def answer(result: Any) -> None:
            request.setHeader(b"Content-Type", JSON)
            request.write(json.dumps(result, indent=1).encode())
            request.finish()

        def failed(failure: Any) -> None:
            if failure.check(Problem):
                body = self._error(request, failure.value)
            elif failure.check(KeyProblem, ValueError):
                body = self._error(request, Problem(400, str(failure.value)))
            else:
                log.failure("admin route failed", failure=failure)
                body = self._error(request, Problem(500, "Internal gateway error; it has been logged."))
            request.write(body)
            request.finish()

        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        d.addCallbacks(lambda r: None if gone else answer(r), lambda f: None if gone else failed(f))
        return NOT_DONE_YET

    @staticmethod
    def _error(request: IRequest, problem: Problem) -> bytes:
        request.setResponseCode(problem.code)
        request.setHeader(b"Content-Type", JSON)
        return error_body(problem.code, problem.message)

    # -- handlers --

    async def overview(self, request: IRequest) -> dict[str, Any]:
        now = self.clock()
        return {
            "version": __version__,
            "user_agent": self.user_agent() if callable(self.user_agent) else self.user_agent,
            "now": now,
            "live": self.team.live_rates(),
            "keys": len(self.team.by_name),
        }

    async def usage(self, request: IRequest) -> dict[str, Any]:
        now = self.clock()
        args = request.args or {}
        since_text = _arg(args, b"since")
        by = _arg(args, b"by") or "key"
        if by not in GROUPS:
            raise Problem(400, f"by={by!r} is not a grouping: use one of {', '.join(GROUPS)}.")
        since = parse_since(since_text, now)
        await self.team.flush()
        store = self.team.writer.store if self.team.writer is not None else self.team.store
        rows = await deferToThread(store.summary, since, by)
        answer: dict[str, Any] = {"since": since, "by": by, "rows": rows}
        if _arg(args, b"series"):
            answer["series"] = await deferToThread(store.series, since, by)
        return answer

    async def list_keys(self, request: IRequest) -> dict[str, Any]:
        now = self.clock()
        records = await deferToThread(self.team.store.keys)
        return {"keys": [self._key(r, now) for r in records]}

    def _key(self, record: Any, now: float) -> dict[str, Any]:
        view = key_view(record, now)
        view["tokens_today"] = self.team.tokens.get(record.name, now)
        view["requests_last_minute"] = len(self.team.windows.recent(record.name, now))
        return view

    async def create_key(self, request: IRequest) -> dict[str, Any]:
        body = _body(request)
        now = self.clock()
        models = body.get("models") or []
        if isinstance(models, str):
            models = [models]
        secret, record = await deferToThread(
            lambda: operations.create(self.team.store, str(body.get("name", "")), now, expires=body.get("expires") or None,
                                      ttl_days=_float(body.get("ttl_days")), rpm=body.get("rpm"),
                                      tokens_per_day=body.get("tokens_per_day"), models=models, note=body.get("note") or "")
        )
        self.team.replace(record)
        return {"key": secret, "record": self._key(record, now)}

    async def edit_key(self, request: IRequest, name: str) -> dict[str, Any]:
        body = _body(request)
        now = self.clock()
        models = body.get("models")
        if isinstance(models, str):
            models = [models]
        record = await deferToThread(
            lambda: operations.edit(self.team.store, name, now, rpm=body.get("rpm"), tokens_per_day=body.get("tokens_per_day"),
                                    models=models, note=body.get("note"), expires=body.get("expires") or None,
                                    ttl_days=_float(body.get("ttl_days")))
        )
        self.team.replace(record)
        return {"record": self._key(record, now)}

    async def revoke_key(self, request: IRequest, name: str) -> dict[str, Any]:
        now = self.clock()
        record = await deferToThread(operations.revoke, self.team.store, name, now)
        self.team.replace(record)
        return {"record": self._key(record, now)}

    async def account_action(self, request: IRequest, email: str, action: str) -> dict[str, Any]:
        if self.pool.get(email) is None:
            raise Problem(404, f"No account {email} in the pool.")
        if action == "enable":
            self.pool.enable(email)
        elif action == "disable":
            self.pool.disable(email, "disabled from the dashboard")
        elif self.quota is not None:
            await self.quota.poll(email)
        return {"email": email, "done": action}


def _arg(args: dict[bytes, list[bytes]], name: bytes) -> str | None:
    values = args.get(name)
    return values[-1].decode("utf-8", "replace") if values else None


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Problem(400, "ttl_days must be a number of days") from None


def _body(request: IRequest) -> dict[str, Any]:
    raw = request.content.read() if request.content is not None else b""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise Problem(400, "The body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise Problem(400, "The body must be a JSON object.")
    return body
