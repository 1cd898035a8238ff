"""Config: defaults, the documented contract, overrides, and one-line errors naming the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway import config
from gateway.config import ConfigError, Settings

CONTRACT = """
[server]
listen = ["tcp:8045:interface=127.0.0.1"]
max_body_bytes = 33554432
[auth]
mode = "auto"
strategy = "api-key"
keys = ["k1", "k2"]
[upstream]
hosts = ["https://daily-cloudcode-pa.sandbox.googleapis.com", "https://daily-cloudcode-pa.googleapis.com", "https://cloudcode-pa.googleapis.com"]
token_url = "https://oauth2.googleapis.com/token"
client_id = "cid"
client_secret = "csecret"
user_agent = "antigravity/9.9 linux/amd64"
max_attempts = 3
[accounts]
backend = "json"
path = "accounts.json"
[models]
mapping = { "gemini-pro" = "gemini-2.5-pro", "gemini-exp-*" = "gemini-2.5-flash" }
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return str(path)


def test_contract_file_parses_with_every_documented_key(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, CONTRACT))
    assert settings.server.listen == ("tcp:8045:interface=127.0.0.1",)
    assert settings.server.max_body_bytes == 33554432
    assert settings.auth.keys == ("k1", "k2")
    assert settings.upstream.hosts[0] == "https://daily-cloudcode-pa.sandbox.googleapis.com"
    assert settings.upstream.client_id == "cid"
    assert settings.upstream.user_agent == "antigravity/9.9 linux/amd64"
    # a relative store path is relative to the config file, not the cwd
    assert settings.accounts.path == str(tmp_path / "accounts.json")
    assert dict(settings.models.mapping) == {"gemini-pro": "gemini-2.5-pro", "gemini-exp-*": "gemini-2.5-flash"}


def test_defaults_are_googles_hosts_and_loopback() -> None:
    settings = Settings()
    assert settings.server.listen == ("tcp:8045:interface=127.0.0.1",)
    assert settings.upstream.hosts[-1] == "https://cloudcode-pa.googleapis.com"
    assert settings.upstream.token_url == "https://oauth2.googleapis.com/token"
    assert settings.upstream.max_attempts == 3
    assert settings.effective_auth_mode() == "off"


@pytest.mark.parametrize(
    "text, key",
    [
        ("[server]\nmax_body_bytes = -1\n", "server.max_body_bytes"),
        ("[server]\nlisten = []\n", "server.listen"),
        ("[server]\nlisen = ['tcp:1']\n", "server.lisen"),
        ("[auth]\nmode = 'sometimes'\n", "auth.mode"),
        ("[upstream]\nhosts = ['ftp://x']\n", "upstream.hosts"),
        ("[upstream]\nmax_attempts = 0\n", "upstream.max_attempts"),
        ("[upstream]\ntoken_url = 5\n", "upstream.token_url"),
        ("[models]\nmapping = { 'a' = 'b*' }\n", "models.mapping"),
        ("[bogus]\nx = 1\n", "[bogus]"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text))
    message = str(caught.value)
    assert message.startswith(f"config error: {key}: ")
    assert "\n" not in message


def test_invalid_toml_and_missing_file_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "[server\n"))
    with pytest.raises(ConfigError, match="file not found"):
        config.load(str(tmp_path / "nope.toml"))


def test_override_runs_the_same_validators() -> None:
    settings = config.override(Settings(), "upstream", hosts=("http://127.0.0.1:1/",))
    assert settings.upstream.hosts == ("http://127.0.0.1:1",)
    with pytest.raises(ConfigError, match="--max-attempts"):
        config.override(Settings(), "upstream", max_attempts=0)


@pytest.mark.parametrize(
    "endpoint, loopback",
    [
        ("tcp:8045:interface=127.0.0.1", True),
        ("tcp:8045:interface=127.0.0.5", True),
        ("tcp6:8045:interface=\\:\\:1", True),
        ("tcp:8045:interface=localhost", True),
        ("unix:/run/gw.sock:mode=660", True),
        ("tcp:8045", False),
        ("tcp:8045:interface=0.0.0.0", False),
        ("tcp:8045:interface=192.168.1.10", False),
        ("systemd:domain=INET:index=0", False),
    ],
)
def test_loopback_detection(endpoint: str, loopback: bool) -> None:
    assert config.is_loopback_endpoint(endpoint) is loopback


def test_auto_mode_turns_on_for_public_listeners() -> None:
    settings = config.override(Settings(), "server", listen=("tcp:8045:interface=0.0.0.0",))
    assert settings.effective_auth_mode() == "all_except_health"


def test_state_directory_wins_for_the_default_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/antigravity-gateway")
    assert config.AccountsSettings().path == "/var/lib/antigravity-gateway/accounts.json"
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("XDG_DATA_HOME", "/tmp/xdg")
    assert config.AccountsSettings().path == os.path.join("/tmp/xdg", "antigravity-gateway", "accounts.json")


def test_shared_section_defaults_to_local_and_checks_redis_urls() -> None:
    from gateway import config

    assert config.Settings().shared.backend == "local"
    s = config.parse({"shared": {"backend": "redis", "url": "rediss://:pw@h:6380/1", "prefix": "gw1:", "deadline": 0.1}})
    assert (s.shared.backend, s.shared.prefix, s.shared.deadline) == ("redis", "gw1:", 0.1)
    with pytest.raises(config.ConfigError, match="shared.url"):
        config.parse({"shared": {"url": "http://h"}})
    with pytest.raises(config.ConfigError, match="shared.backend"):
        config.parse({"shared": {"backend": "memcached"}})
