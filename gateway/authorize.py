"""Adding a Google account: the OAuth installed-app flow, for the command line.

Two ways to get the authorization code: a loopback redirect
(``http://127.0.0.1:<port>/oauth2callback``, answered by a one-shot local
server while a browser on this machine signs in) and, for headless servers,
a pasted code — the browser elsewhere is redirected to a loopback address that
does not answer there, and the operator pastes that address (or just its
``code``). Both use PKCE (S256) and a ``state`` check. Then the code is
exchanged at ``[upstream] token_url`` and the email read from
``[upstream] userinfo_url``.

Blocking I/O (urllib, a thread for the local server): this runs in the CLI
process, never inside the gateway's reactor.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable

import attrs

SCOPES = (
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
)
CALLBACK_PATH = "/oauth2callback"
PASTE_PORT = 8085
TIMEOUT = 30.0

_opener = urllib.request.build_opener()


def use_proxy(proxy: str) -> None:
    """Send the token and userinfo calls through ``[upstream] proxy`` ("" = direct, or the environment's)."""
    global _opener
    _opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy, "https": proxy})) if proxy else urllib.request.build_opener()


class AuthorizationFailed(Exception):
    """The flow did not give us an account; ``str()`` says why, without secrets."""


@attrs.frozen
class Tokens:
    refresh_token: str
    access_token: str
    expires_in: float


@attrs.frozen
class Request:
    """One authorization attempt: its URL and what must come back."""

    url: str
    redirect_uri: str
    state: str
    verifier: str


def start(auth_url: str, client_id: str, redirect_uri: str, login_hint: str | None = None,
          scopes: tuple[str, ...] = SCOPES) -> Request:
    """The consent URL (offline access, consent prompt, PKCE S256, state)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    state = secrets.token_urlsafe(16)
    params = {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": " ".join(scopes),
        "access_type": "offline",
        "prompt": "consent",
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if login_hint:
        params["login_hint"] = login_hint
    separator = "&" if "?" in auth_url else "?"
    return Request(auth_url + separator + urllib.parse.urlencode(params), redirect_uri, state, verifier)


def code_from_paste(text: str, expected_state: str) -> str:
    """The code in what the operator pasted: the whole redirected address, its query, or the bare code."""
    text = text.strip().strip('"').strip("'")
    if not text:
        raise AuthorizationFailed("nothing was pasted")
    if "code=" in text or "error=" in text:
        query = urllib.parse.urlsplit(text).query if "://" in text else text.lstrip("?")
        return code_from_query(urllib.parse.parse_qs(query), expected_state)
    return text


def code_from_query(query: dict[str, list[str]], expected_state: str) -> str:
    if "error" in query:
        raise AuthorizationFailed(f"Google refused the authorization: {query['error'][0]}")
    state = query.get("state", [None])[0]
    if state != expected_state:
        raise AuthorizationFailed("the answer's state does not match this request (an old or foreign link?); run add again")
    code = query.get("code", [""])[0]
    if not code:
        raise AuthorizationFailed("the answer has no code")
    return code


def _post_form(url: str, form: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        method="POST",
    )
    return _json_call(request, url)


def _json_call(request: urllib.request.Request, url: str) -> dict[str, Any]:
    try:
        with _opener.open(request, timeout=TIMEOUT) as response:
            body = response.read()
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            document = json.loads(body)
        except ValueError:
            document = {}
        problem = document.get("error_description") or document.get("error") if isinstance(document, dict) else None
        if isinstance(problem, dict):
            problem = problem.get("message")
        raise AuthorizationFailed(f"{url} answered HTTP {e.code}" + (f": {problem}" if problem else "")) from None
    except (urllib.error.URLError, OSError) as e:
        raise AuthorizationFailed(f"cannot reach {url}: {getattr(e, 'reason', e)}") from None
    try:
        document = json.loads(body)
    except ValueError:
        raise AuthorizationFailed(f"{url} answered something that is not JSON") from None
    if not isinstance(document, dict):
        raise AuthorizationFailed(f"{url} answered something that is not a JSON object")
    return document


def exchange(token_url: str, client_id: str, client_secret: str, code: str, request: Request) -> Tokens:
    answer = _post_form(
        token_url,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": request.redirect_uri,
            "client_id": client_id,
            "client_secret": client_secret,
            "code_verifier": request.verifier,
        },
    )
    refresh, access = answer.get("refresh_token"), answer.get("access_token")
    if not isinstance(access, str) or not access:
        raise AuthorizationFailed("the token endpoint gave no access_token")
    if not isinstance(refresh, str) or not refresh:
        raise AuthorizationFailed(
            "the token endpoint gave no refresh_token (the consent was not for offline access); "
            "remove the app's access at https://myaccount.google.com/permissions and run add again"
        )
    expires = answer.get("expires_in", 3600)
    return Tokens(refresh, access, float(expires) if isinstance(expires, (int, float)) else 3600.0)


def refresh(token_url: str, client_id: str, client_secret: str, refresh_token: str) -> Tokens:
    """A fresh access token for a refresh token (for looking up an imported account's email)."""
    answer = _post_form(
        token_url,
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id, "client_secret": client_secret},
    )
    access = answer.get("access_token")
    if not isinstance(access, str) or not access:
        raise AuthorizationFailed("the token endpoint gave no access_token")
    rotated = answer.get("refresh_token")
    expires = answer.get("expires_in", 3600)
    return Tokens(rotated if isinstance(rotated, str) and rotated else refresh_token, access, float(expires) if isinstance(expires, (int, float)) else 3600.0)


def email_of(userinfo_url: str, access_token: str) -> str:
    request = urllib.request.Request(userinfo_url, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"})
    answer = _json_call(request, userinfo_url)
    email = answer.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise AuthorizationFailed(f"{userinfo_url} did not say which email signed in (is the userinfo.email scope granted?)")
    return email


class LoopbackReceiver:
    """A one-shot HTTP server on 127.0.0.1 that waits for Google's redirect with the code."""

    def __init__(self, port: int = 0) -> None:
        self.query: dict[str, list[str]] | None = None
        self._arrived = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                parts = urllib.parse.urlsplit(self.path)
                if parts.path != CALLBACK_PATH:
                    self.send_error(404)
                    return
                receiver.query = urllib.parse.parse_qs(parts.query)
                ok = "code" in receiver.query
                body = (
                    b"<!doctype html><title>antigravity-gateway</title><p>"
                    + (b"Signed in. You can close this window." if ok else b"Sign-in failed; see the terminal.")
                    + b"</p>"
                )
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                receiver._arrived.set()

            def log_message(self, format: str, *args: Any) -> None:  # the query holds the code: never log it
                pass

        try:
            self._server = http.server.HTTPServer(("127.0.0.1", port), Handler)
        except OSError as e:
            raise AuthorizationFailed(f"cannot listen on 127.0.0.1:{port} for the redirect: {e.strerror}") from None
        self.redirect_uri = f"http://127.0.0.1:{self._server.server_port}{CALLBACK_PATH}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="oauth-redirect", daemon=True)
        self._thread.start()

    def wait(self, timeout: float) -> dict[str, list[str]]:
        try:
            if not self._arrived.wait(timeout):
                raise AuthorizationFailed(f"no sign-in arrived within {timeout:g}s; run add again (or use --no-browser)")
            assert self.query is not None
            return self.query
        finally:
            self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def loopback_flow(
    auth_url: str,
    client_id: str,
    open_browser: Callable[[str], bool],
    say: Callable[[str], None],
    *,
    port: int = 0,
    login_hint: str | None = None,
    timeout: float = 300.0,
    scopes: tuple[str, ...] = SCOPES,
) -> tuple[str, Request]:
    """Listen on loopback, open the browser, wait for the redirect: (code, request)."""
    receiver = LoopbackReceiver(port)
    try:
        request = start(auth_url, client_id, receiver.redirect_uri, login_hint, scopes)
        say("Opening your browser to sign in to Google. If it does not open, visit:\n\n  " + request.url + "\n")
        try:
            opened = open_browser(request.url)
        except Exception:  # a broken browser setup must not lose the URL we printed
            opened = False
        if not opened:
            say("(could not start a browser; open the address above on this machine)")
        query = receiver.wait(timeout)
    except BaseException:
        receiver.close()
        raise
    return code_from_query(query, request.state), request


def paste_flow(
    auth_url: str,
    client_id: str,
    read_line: Callable[[str], str],
    say: Callable[[str], None],
    *,
    port: int = PASTE_PORT,
    login_hint: str | None = None,
    scopes: tuple[str, ...] = SCOPES,
) -> tuple[str, Request]:
    """Print the URL, read back the redirected address or the code: (code, request)."""
    request = start(auth_url, client_id, f"http://127.0.0.1:{port}{CALLBACK_PATH}", login_hint, scopes)
    say(
        "Open this address in a browser on any machine and sign in:\n\n  "
        + request.url
        + "\n\nAfterwards the browser is sent to http://127.0.0.1:"
        + str(port)
        + CALLBACK_PATH
        + "?… and shows an error page: that is expected.\nCopy the whole address from its address bar (or just the code= value) and paste it here."
    )
    return code_from_paste(read_line("Address or code: "), request.state), request
