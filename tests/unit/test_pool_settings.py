"""The [accounts]/[upstream] keys of the account pool: defaults and one-line errors."""

from __future__ import annotations

import pytest

from gateway import config
from gateway.config import ConfigError, Settings


def test_defaults() -> None:
    accounts = Settings().accounts
    assert (accounts.selection, accounts.session_ttl, accounts.session_header, accounts.max_in_flight) == (
        "quota-aware", 1800.0, "x-session-id", 0)
    assert (accounts.queue_timeout, accounts.short_retry_max, accounts.default_cooldown, accounts.capacity_backoff,
            accounts.quota_poll_interval) == (30.0, 3.0, 60.0, 1.0, 300.0)
    upstream = Settings().upstream
    assert upstream.auth_url == "https://accounts.google.com/o/oauth2/v2/auth"
    assert upstream.userinfo_url == "https://www.googleapis.com/oauth2/v2/userinfo"


def test_values_are_read() -> None:
    settings = config.parse({
        "accounts": {"session_ttl": 0, "session_header": "X-Conversation", "max_in_flight": 4, "queue_timeout": 5,
                     "short_retry_max": 1.5, "default_cooldown": 30, "capacity_backoff": 0, "quota_poll_interval": 0},
        "upstream": {"auth_url": "http://127.0.0.1:9/o/oauth2/v2/auth", "userinfo_url": "http://127.0.0.1:9/userinfo"},
    })
    assert settings.accounts.session_header == "x-conversation" and settings.accounts.max_in_flight == 4
    assert settings.accounts.session_ttl == 0.0 and settings.accounts.quota_poll_interval == 0.0
    assert settings.upstream.auth_url.endswith("/auth")


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("accounts", "max_in_flight", -1),
        ("accounts", "max_in_flight", 1.5),
        ("accounts", "session_header", "no spaces please"),
        ("accounts", "queue_timeout", 0),
        ("accounts", "default_cooldown", 0),
        ("accounts", "session_ttl", -5),
        ("upstream", "auth_url", "accounts.google.com"),
        ("upstream", "userinfo_url", 3),
    ],
)
def test_bad_values_name_the_key(section: str, key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"{section}.{key}"):
        config.parse({section: {key: value}})
