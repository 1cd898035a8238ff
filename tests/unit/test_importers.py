"""Importers on sample files made here: Antigravity-Manager's data directory, gemini-cli's
oauth_creds.json, another gateway's store; recognised by content, never by name."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from gateway.pool import importers
from gateway.pool.account import Account


def manager_dir(root: Path) -> Path:
    """An Antigravity-Manager data directory, shaped as the app writes it (index v2.0 + accounts/<id>.json)."""
    data = root / "antigravity_tools"
    (data / "accounts").mkdir(parents=True)
    index = {"version": "2.0", "current_account_id": "id-1", "accounts": []}
    for n, (email, disabled) in enumerate([("one@gmail.com", False), ("two@gmail.com", True)], start=1):
        account_id = f"id-{n}"
        index["accounts"].append({"id": account_id, "email": email, "name": email.split("@")[0], "created_at": 1700000000, "last_used": 1700000100})
        record = {
            "id": account_id,
            "email": email,
            "name": None,
            "token": {
                "access_token": f"ya29.access-{n}",
                "refresh_token": f"1//refresh-{n}",
                "expires_in": 3599,
                "expiry_timestamp": 1700003600 + n,
                "token_type": "Bearer",
                "email": email,
                "project_id": f"bright-project-{n}",
                "is_gcp_tos": False,
            },
            "quota": None,
            "disabled": disabled,
            "created_at": 1700000000,
            "last_used": 1700000100,
        }
        if disabled:
            record["disabled_reason"] = "invalid_grant"
        (data / "accounts" / f"{account_id}.json").write_text(json.dumps(record))
    index["accounts"].append({"id": "id-missing", "email": "gone@gmail.com", "created_at": 0, "last_used": 0})
    (data / "accounts.json").write_text(json.dumps(index))
    return data


def jwt(claims: dict) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def gemini_creds(root: Path, *, id_token: bool = True) -> Path:
    gemini = root / ".gemini"
    gemini.mkdir()
    creds = {
        "access_token": "ya29.gemini-access",
        "refresh_token": "1//gemini-refresh",
        "scope": "https://www.googleapis.com/auth/cloud-platform openid https://www.googleapis.com/auth/userinfo.email",
        "token_type": "Bearer",
        "expiry_date": 1700003600123,
    }
    if id_token:
        creds["id_token"] = jwt({"iss": "https://accounts.google.com", "email": "cli@gmail.com", "email_verified": True})
    path = gemini / "oauth_creds.json"
    path.write_text(json.dumps(creds))
    return path


def test_antigravity_manager_directory(tmp_path: Path) -> None:
    found = importers.load(str(manager_dir(tmp_path)))
    assert found.kind == importers.ANTIGRAVITY_MANAGER
    one, two = found.accounts
    assert (one.email, one.refresh_token, one.access_token, one.expiry, one.project_id) == (
        "one@gmail.com", "1//refresh-1", "ya29.access-1", 1700003601.0, "bright-project-1")
    assert two.disabled and "Antigravity-Manager" in (two.disabled_reason or "") and "invalid_grant" in (two.disabled_reason or "")
    assert any("gone@gmail.com" in note for note in found.notes)


def test_antigravity_manager_index_file_or_one_account_file(tmp_path: Path) -> None:
    data = manager_dir(tmp_path)
    assert [a.email for a in importers.load(str(data / "accounts.json")).accounts] == ["one@gmail.com", "two@gmail.com"]
    [single] = importers.load(str(data / "accounts" / "id-1.json")).accounts
    assert single.email == "one@gmail.com"


def test_gemini_cli_creds_with_the_email_in_the_id_token(tmp_path: Path) -> None:
    for path in (gemini_creds(tmp_path), tmp_path / ".gemini"):
        found = importers.load(str(path))
        [account] = found.accounts
        assert found.kind == importers.GEMINI_CLI
        assert (account.email, account.refresh_token, account.access_token) == ("cli@gmail.com", "1//gemini-refresh", "ya29.gemini-access")
        assert account.expiry == pytest.approx(1700003600.123)


def test_gemini_cli_creds_email_from_google_accounts_json_or_the_caller(tmp_path: Path) -> None:
    path = gemini_creds(tmp_path, id_token=False)
    with pytest.raises(importers.NeedsEmail) as missing:
        importers.load(str(path))
    assert missing.value.refresh_token == "1//gemini-refresh"
    assert importers.load(str(path), email="given@gmail.com").accounts[0].email == "given@gmail.com"
    (path.parent / "google_accounts.json").write_text(json.dumps({"active": "active@gmail.com", "old": []}))
    assert importers.load(str(path)).accounts[0].email == "active@gmail.com"


def test_another_gateways_store(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps({"accounts": [{"email": "a@x.com", "refresh_token": "1//a", "tier": "free-tier"}]}))
    found = importers.load(str(path))
    assert found.kind == importers.GATEWAY_STORE and found.accounts[0].tier == "free-tier"


@pytest.mark.parametrize("content", ['{"hello": 1}', "[]", "not json"])
def test_anything_else_is_refused_saying_what_was_expected(tmp_path: Path, content: str) -> None:
    path = tmp_path / "thing.json"
    path.write_text(content)
    with pytest.raises(importers.ImportProblem, match="Antigravity-Manager|not JSON"):
        importers.load(str(path))
    with pytest.raises(importers.ImportProblem, match="not recognised"):
        importers.load(str(tmp_path))


def test_reimport_refreshes_credentials_and_keeps_learned_state() -> None:
    existing = Account("a@x.com", "1//old", project_id="p", tier="standard-tier", cooldown_until=5.0)
    merged = importers.merge(existing, Account("a@x.com", "1//new", access_token="ya29.n", expiry=9.0))
    assert (merged.refresh_token, merged.access_token, merged.project_id, merged.tier, merged.cooldown_until) == (
        "1//new", "ya29.n", "p", "standard-tier", 5.0)
