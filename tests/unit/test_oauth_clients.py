"""OAuth clients per account: the built-ins, configured clients, client_id/client_secret, the choice."""

from __future__ import annotations

import pytest

from gateway import config
from gateway.config import ConfigError
from gateway.pool import importers
from gateway.pool.account import Account
from gateway.protocol import credits
from gateway.upstream import oauth_clients as oc


def test_antigravity_is_the_default_with_its_five_scopes() -> None:
    clients = oc.from_settings(config.Settings().upstream)
    default = clients.named(None)
    assert default.name == "antigravity"
    assert default.client_id == "1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com"
    assert default.client_secret == "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"
    assert [s.rsplit("/", 1)[-1] for s in default.scopes] == [
        "cloud-platform", "userinfo.email", "userinfo.profile", "cclog", "experimentsandconfigs"]
    assert clients.named("gemini-cli").client_id.startswith("681255809395-")
    assert "GOCSPX" not in repr(default)  # the secret stays out of logs


def test_each_account_uses_its_own_client() -> None:
    clients = oc.build()
    assert clients.for_account(Account("a@x", "r")).name == "antigravity"
    assert clients.for_account(Account("a@x", "r", oauth_client="gemini-cli")).name == "gemini-cli"
    with pytest.raises(oc.UnknownClient, match="known: antigravity, gemini-cli"):
        clients.for_account(Account("a@x", "r", oauth_client="nope"))


def test_configured_clients_and_the_default_name() -> None:
    settings = config.parse({"upstream": {
        "oauth_client": "corp",
        "oauth_clients": {"corp": {"client_id": "corp-id", "client_secret": "corp-secret", "scopes": ["s1"]},
                          "gemini-cli": {"client_id": "other-id", "client_secret": "other-secret"}},
    }})
    clients = oc.from_settings(settings.upstream)
    assert clients.named(None) == oc.OAuthClient("corp", "corp-id", "corp-secret", ("s1",))
    assert clients.named("gemini-cli").client_id == "other-id"  # same name replaces the built-in
    assert clients.named("gemini-cli").scopes == oc.BASE_SCOPES


def test_upstream_client_id_sets_the_default_client() -> None:
    known = oc.build(client_id=oc.BUILTIN["gemini-cli"].client_id)
    assert known.default == "gemini-cli"
    custom = oc.build(client_id="my-id", client_secret="my-secret")
    assert custom.default == oc.CONFIGURED and custom.named(None).client_secret == "my-secret"
    settings = config.override(config.Settings(), "upstream", client_id="my-id", client_secret="my-secret")
    assert oc.from_settings(settings.upstream).named(None).client_id == "my-id"


@pytest.mark.parametrize("document,key", [
    ({"upstream": {"oauth_client": "missing"}}, "upstream.oauth_client"),
    ({"upstream": {"oauth_clients": {"x": {"client_id": "a"}}}}, "upstream.oauth_clients"),
    ({"upstream": {"oauth_clients": {"x": {"client_id": "a", "client_secret": "b", "colour": 1}}}}, "upstream.oauth_clients"),
    ({"upstream": {"version_floor": "two"}}, "upstream.version_floor"),
    ({"upstream": {"use_credits": "always"}}, "upstream.use_credits"),
    ({"upstream": {"version_url": "ftp://x"}}, "upstream.version_url"),
])
def test_bad_client_and_version_settings_name_their_key(document: dict, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        config.parse(document)
    assert e.value.key == key


def test_version_and_credit_defaults() -> None:
    up = config.Settings().upstream
    assert up.version_url.endswith("/manifest/latest-arm64-mac.yml")
    assert (up.version_floor, up.version_refresh_seconds, up.user_agent, up.use_credits) == (
        "2.9.1", 21600.0, "antigravity/hub/{version} darwin/arm64", "never")


def test_importers_name_the_client(tmp_path) -> None:
    creds = tmp_path / "oauth_creds.json"
    creds.write_text('{"refresh_token": "1//x", "scope": "https://www.googleapis.com/auth/cloud-platform"}')
    assert importers.load(str(creds), "a@x").accounts[0].oauth_client == "gemini-cli"
    assert importers.load(str(creds), "a@x", "antigravity").accounts[0].oauth_client == "antigravity"
    creds.write_text('{"refresh_token": "1//x", "scope": "https://www.googleapis.com/auth/cclog openid"}')
    assert importers.load(str(creds), "a@x").accounts[0].oauth_client == "antigravity"


def test_the_retired_client_reason_gives_the_exact_command() -> None:
    reason = oc.unsupported_client_reason("me@gmail.com", "gemini-cli")
    assert "accounts add --client antigravity --login-hint me@gmail.com`" in reason
    assert oc.unsupported_client("UNSUPPORTED_CLIENT", "") and oc.unsupported_client(None, "This client is no longer supported for …")
    assert not oc.unsupported_client("PERMISSION_DENIED", "denied")


def test_credits_retry_decision_and_envelope() -> None:
    assert credits.retry_with_credits("quota_exhausted", "when_quota_exhausted", ["GOOGLE_ONE_AI"], False)
    assert not credits.retry_with_credits("quota_exhausted", "never", ["GOOGLE_ONE_AI"], False)
    assert not credits.retry_with_credits("quota_exhausted", "when_quota_exhausted", [], False)
    assert not credits.retry_with_credits("quota_exhausted", "when_quota_exhausted", ["GOOGLE_ONE_AI"], True)
    assert not credits.retry_with_credits("rate_limited", "when_quota_exhausted", ["GOOGLE_ONE_AI"], False)
    assert credits.enable(b'{"model":"m"}', ["GOOGLE_ONE_AI"]) == b'{"model":"m","enabledCreditTypes":["GOOGLE_ONE_AI"]}'


def test_account_records_keep_client_credits_and_windows() -> None:
    record = {"email": "a@x", "refresh_token": "r", "oauth_client": "gemini-cli",
              "credits": [{"type": "GOOGLE_ONE_AI", "amount": 10, "minimum": 50}],
              "quota_windows": [{"group": "weekly", "name": "Weekly", "remaining": 0.5, "reset": 100.0, "seconds": 604800}]}
    account = Account.from_json(record, "t")
    assert account.usable_credits == []  # below the minimum
    again = Account.from_json(account.to_json(), "t")
    assert again == account and again.to_json()["oauth_client"] == "gemini-cli"


def test_load_code_assist_credits_and_unsupported_client_are_read() -> None:
    from gateway.upstream.onboarding import read_load_answer

    found = read_load_answer({
        "currentTier": {"id": "standard-tier"}, "cloudaicompanionProject": "p",
        "paidTier": {"id": "g1-pro-tier", "availableCredits": [
            {"creditType": "GOOGLE_ONE_AI", "creditAmount": "500", "minimumCreditAmountForUsage": "50"}, {"creditType": 5}]},
    })
    assert [(c.credit_type, c.amount, c.minimum, c.usable) for c in found.credits] == [("GOOGLE_ONE_AI", 500.0, 50.0, True)]
    assert not found.unsupported_client
    refused = read_load_answer({"ineligibleTiers": [{"reasonCode": "UNSUPPORTED_CLIENT", "tierId": "free-tier"}]})
    assert refused.unsupported_client and refused.project is None


def test_quota_summary_windows_are_read() -> None:
    from gateway.upstream.quota_windows import read

    windows = read({"quotaGroups": [
        {"groupId": "five-hour", "displayName": "5-hour limit", "windowSeconds": 18000, "remainingFraction": 0.5,
         "resetTime": "2026-01-01T00:00:00Z"},
        {"name": "weekly", "remainingFraction": "0.25", "windowSeconds": "604800s"},
        {"groupId": "broken"},
    ]})
    assert [(w.group, w.name, w.remaining, w.seconds) for w in windows] == [
        ("five-hour", "5-hour limit", 0.5, 18000.0), ("weekly", "weekly", 0.25, 604800.0)]
    assert windows[0].reset == 1767225600.0
