"""Reading accounts that other tools already authorised, recognised by their content.

* Antigravity-Manager's data directory (``~/.antigravity_tools``): an
  ``accounts.json`` index (``{"accounts": [{"id", "email", …}]}``) and one
  ``accounts/<id>.json`` per account with ``token.refresh_token``,
  ``token.access_token``, ``token.expiry_timestamp`` (unix seconds) and
  ``token.project_id``. The index file or a single account file work too.
* gemini-cli's ``~/.gemini/oauth_creds.json`` (``refresh_token``,
  ``access_token``, ``expiry_date`` in milliseconds, ``id_token``). The email
  comes from the ``id_token``, else from ``google_accounts.json`` next to it.
* Another antigravity-gateway store (``{"accounts": [{"email", "refresh_token", …}]}``).

Every imported record names its OAuth client (``oauth_client``), since a
refresh token works only with the client that issued it: Antigravity-Manager
signs in with the Antigravity desktop client; ``oauth_creds.json`` is written
by gemini-cli and by the Antigravity CLI (``agy``) alike, so its granted
``scope`` decides (Antigravity's own ``cclog``/``experimentsandconfigs``
scopes mean ``antigravity``), else the caller's ``client`` (``--client``),
else ``gemini-cli``. A gateway store keeps what its records say.

Reads files only: no network, nothing written. What to do with the records
(add, or refresh an existing account's token) is the caller's business.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any

import attrs

from gateway.pool.account import Account, AccountFormatError

ANTIGRAVITY_MANAGER = "Antigravity-Manager data directory"
GEMINI_CLI = "gemini-cli oauth_creds.json"
GATEWAY_STORE = "antigravity-gateway store"
#: The OAuth client names (gateway.upstream.oauth_clients) importers assign.
MANAGER_CLIENT = "antigravity"
CREDS_DEFAULT_CLIENT = "gemini-cli"
ANTIGRAVITY_ONLY_SCOPES = ("auth/cclog", "auth/experimentsandconfigs")


class ImportProblem(ValueError):
    """The path is not something we can import; the message says what was expected."""


class NeedsEmail(ImportProblem):
    """The credentials carry no email; ``refresh_token``/``access_token`` let a caller look it up."""

    def __init__(self, message: str, refresh_token: str, access_token: str | None, expiry: float, client: str | None = None) -> None:
        super().__init__(message)
        self.refresh_token = refresh_token
        self.access_token = access_token
        self.expiry = expiry
        #: The OAuth client the credentials belong to.
        self.client = client


@attrs.frozen
class Imported:
    kind: str
    accounts: list[Account]
    notes: list[str] = attrs.Factory(list)


def _read_json(path: str) -> Any:
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        raise ImportProblem(f"{path}: no such file") from None
    except OSError as e:
        raise ImportProblem(f"{path}: cannot read: {e.strerror}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ImportProblem(f"{path}: not JSON ({e})") from None


def _is_manager_index(document: Any) -> bool:
    return (
        isinstance(document, dict)
        and isinstance(document.get("accounts"), list)
        and all(isinstance(a, dict) and "id" in a and "refresh_token" not in a for a in document["accounts"])
    )


def _is_manager_account(document: Any) -> bool:
    return isinstance(document, dict) and isinstance(document.get("token"), dict) and "refresh_token" in document["token"]


def _is_gemini_creds(document: Any) -> bool:
    return (
        isinstance(document, dict)
        and isinstance(document.get("refresh_token"), str)
        and "email" not in document
        and any(k in document for k in ("expiry_date", "token_type", "scope", "id_token", "access_token"))
    )


def _is_gateway_store(document: Any) -> bool:
    return (
        isinstance(document, dict)
        and isinstance(document.get("accounts"), list)
        and bool(document["accounts"])
        and all(isinstance(a, dict) and "email" in a and "refresh_token" in a for a in document["accounts"])
    )


def creds_client(document: Any, client: str | None) -> str:
    """The OAuth client of an ``oauth_creds.json``: an explicit ``client`` wins, then the granted
    scopes (Antigravity's own scopes mean ``antigravity``), else gemini-cli (the file's original writer)."""
    if client:
        return client
    scope = document.get("scope") if isinstance(document, dict) else None
    if isinstance(scope, str) and any(s in scope for s in ANTIGRAVITY_ONLY_SCOPES):
        return MANAGER_CLIENT
    return CREDS_DEFAULT_CLIENT


def load(path: str, email: str | None = None, client: str | None = None) -> Imported:
    """Whatever ``path`` holds, recognised by content; ``email`` names a gemini-cli account;
    ``client`` overrides the OAuth client the importer would assign."""
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isdir(path):
        index = os.path.join(path, "accounts.json")
        if os.path.isfile(index) and os.path.isdir(os.path.join(path, "accounts")):
            return _with_client(_manager_directory(path), client)
        creds = os.path.join(path, "oauth_creds.json")
        if os.path.isfile(creds):
            return _gemini_creds(creds, email, client=client)
        raise ImportProblem(_unrecognised(path))
    document = _read_json(path)
    if _is_manager_account(document):
        return _with_client(Imported(ANTIGRAVITY_MANAGER, [_manager_account(document, path)]), client)
    if _is_gemini_creds(document):
        return _gemini_creds(path, email, document, client)
    if _is_gateway_store(document):
        accounts = []
        for i, record in enumerate(document["accounts"]):
            try:
                accounts.append(Account.from_json(record, f"{path}: accounts[{i}]"))
            except AccountFormatError as e:
                raise ImportProblem(str(e)) from None
        if client:
            accounts = [attrs.evolve(a, oauth_client=client) for a in accounts]
        return Imported(GATEWAY_STORE, accounts)
    if _is_manager_index(document) and os.path.isdir(os.path.join(os.path.dirname(path), "accounts")):
        return _with_client(_manager_directory(os.path.dirname(path)), client)
    raise ImportProblem(_unrecognised(path))


def _with_client(found: Imported, client: str | None) -> Imported:
    """Antigravity-Manager's accounts are the Antigravity client's (unless ``client`` says otherwise)."""
    name = client or MANAGER_CLIENT
    return attrs.evolve(found, accounts=[attrs.evolve(a, oauth_client=name) for a in found.accounts])


def _unrecognised(path: str) -> str:
    return (
        f"{path}: not recognised. Expected an Antigravity-Manager data directory (accounts.json and "
        "accounts/<id>.json, usually ~/.antigravity_tools), gemini-cli's ~/.gemini/oauth_creds.json, "
        "or an antigravity-gateway accounts.json"
    )


# -- Antigravity-Manager ------------------------------------------------------


def _manager_directory(directory: str) -> Imported:
    index_path = os.path.join(directory, "accounts.json")
    index = _read_json(index_path)
    if not _is_manager_index(index):
        raise ImportProblem(f'{index_path}: expected Antigravity-Manager\'s index {{"accounts": [{{"id", "email"}}]}}')
    accounts: list[Account] = []
    notes: list[str] = []
    seen: set[str] = set()
    for entry in index["accounts"]:
        account_id = str(entry.get("id"))
        if not account_id or "/" in account_id or account_id.startswith("."):
            notes.append(f"skipped an index entry with a strange id {account_id!r}")
            continue
        path = os.path.join(directory, "accounts", account_id + ".json")
        try:
            document = _read_json(path)
            if not _is_manager_account(document):
                raise ImportProblem(f"{path}: no token.refresh_token")
            account = _manager_account(document, path, fallback_email=entry.get("email"))
        except ImportProblem as e:
            notes.append(f"skipped {entry.get('email') or account_id}: {e}")
            continue
        if account.email in seen:
            notes.append(f"skipped a second record for {account.email}")
            continue
        seen.add(account.email)
        accounts.append(account)
    return Imported(ANTIGRAVITY_MANAGER, accounts, notes)


def _manager_account(document: dict[str, Any], path: str, fallback_email: Any = None) -> Account:
    token = document["token"]
    email = document.get("email") or token.get("email") or fallback_email
    refresh = token.get("refresh_token")
    if not isinstance(email, str) or "@" not in email:
        raise ImportProblem(f"{path}: no email")
    if not isinstance(refresh, str) or not refresh:
        raise ImportProblem(f"{path}: empty token.refresh_token")
    access = token.get("access_token") if isinstance(token.get("access_token"), str) else None
    expiry = token.get("expiry_timestamp")
    expiry = float(expiry) if isinstance(expiry, (int, float)) and not isinstance(expiry, bool) else 0.0
    project = token.get("project_id") if isinstance(token.get("project_id"), str) else None
    account = Account(email=email, refresh_token=refresh, access_token=access or None, expiry=expiry if access else 0.0, project_id=project or None)
    if document.get("disabled") is True:
        reason = document.get("disabled_reason")
        account = attrs.evolve(
            account,
            disabled=True,
            disabled_reason="disabled in Antigravity-Manager" + (f": {reason}" if isinstance(reason, str) and reason else ""),
        )
    return account


# -- gemini-cli ---------------------------------------------------------------


def email_from_id_token(id_token: Any) -> str | None:
    """The ``email`` claim of a JWT, read without verifying it (it only names the account)."""
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return None
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        return None
    email = claims.get("email") if isinstance(claims, dict) else None
    return email if isinstance(email, str) and "@" in email else None


def _gemini_creds(path: str, email: str | None, document: Any = None, client: str | None = None) -> Imported:
    document = document if document is not None else _read_json(path)
    if not _is_gemini_creds(document):
        raise ImportProblem(f"{path}: expected gemini-cli credentials with a refresh_token")
    refresh = document["refresh_token"]
    access = document.get("access_token") if isinstance(document.get("access_token"), str) else None
    expiry_ms = document.get("expiry_date")
    expiry = float(expiry_ms) / 1000.0 if isinstance(expiry_ms, (int, float)) and not isinstance(expiry_ms, bool) else 0.0
    found = email or email_from_id_token(document.get("id_token")) or _active_google_account(os.path.dirname(path))
    if not found:
        raise NeedsEmail(
            f"{path}: the credentials do not say which account they are for (no id_token); pass --email",
            refresh,
            access,
            expiry,
            creds_client(document, client),
        )
    return Imported(GEMINI_CLI, [Account(found, refresh, access_token=access or None, expiry=expiry if access else 0.0,
                                         oauth_client=creds_client(document, client))])


def _active_google_account(directory: str) -> str | None:
    """gemini-cli's ``google_accounts.json``: ``{"active": "me@gmail.com", "old": [...]}``."""
    try:
        with open(os.path.join(directory, "google_accounts.json"), "rb") as f:
            document = json.loads(f.read())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    active = document.get("active") if isinstance(document, dict) else None
    return active if isinstance(active, str) and "@" in active else None


def merge(existing: Account, imported: Account) -> Account:
    """Re-importing a known account: new credentials (and project, if it has one); learned state stays."""
    return attrs.evolve(
        existing,
        refresh_token=imported.refresh_token,
        access_token=imported.access_token,
        expiry=imported.expiry,
        project_id=imported.project_id or existing.project_id,
        oauth_client=imported.oauth_client or existing.oauth_client,
    )
