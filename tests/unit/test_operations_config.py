"""The service-operation settings (drain, limits, CORS, proxies, metrics, logging): defaults and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import config
from gateway.config import ConfigError, Settings

DOCUMENTED = """
[server]
drain_seconds = 30
max_header_bytes = 16384
max_url_bytes = 8192
client_timeout = 30
min_body_rate = 1024
cors_origins = ["https://app.example.com", "http://localhost:5173"]
trusted_proxies = ["127.0.0.1", "10.0.0.0/8", "::1", "unix"]
[upstream]
proxy = "http://user:pa%40ss@proxy.internal:3128"
account_proxies = { "alice@example.com" = "http://10.1.2.3:8888" }
[metrics]
enabled = true
public = false
listen = ["tcp:9464:interface=127.0.0.1"]
[logging]
account_label = "hash"
"""


def test_defaults() -> None:
    s = Settings()
    assert (s.server.drain_seconds, s.server.max_header_bytes, s.server.max_url_bytes) == (30.0, 16384, 8192)
    assert (s.server.client_timeout, s.server.min_body_rate) == (30.0, 1024)
    assert s.server.cors_origins == () and s.server.trusted_proxies == ()
    assert s.upstream.proxy == "" and s.upstream.account_proxies == ()
    assert (s.metrics.enabled, s.metrics.public, s.metrics.listen) == (True, False, ())
    assert s.logging.account_label == "email"


def test_documented_keys_parse(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(DOCUMENTED)
    s = config.load(path)
    assert s.server.cors_origins == ("https://app.example.com", "http://localhost:5173")
    assert s.server.trusted_proxies == ("127.0.0.1", "10.0.0.0/8", "::1", "unix")
    assert s.upstream.proxy == "http://user:pa%40ss@proxy.internal:3128"
    assert s.upstream.account_proxies == (("alice@example.com", "http://10.1.2.3:8888"),)
    assert s.metrics.listen == ("tcp:9464:interface=127.0.0.1",)
    assert s.logging.account_label == "hash"


@pytest.mark.parametrize(
    "section, values, key",
    [
        ("server", {"drain_seconds": -1}, "server.drain_seconds"),
        ("server", {"max_header_bytes": 0}, "server.max_header_bytes"),
        ("server", {"max_url_bytes": "8k"}, "server.max_url_bytes"),
        ("server", {"client_timeout": 0}, "server.client_timeout"),
        ("server", {"min_body_rate": -5}, "server.min_body_rate"),
        ("server", {"cors_origins": ["https://a.example/path"]}, "server.cors_origins"),
        ("server", {"trusted_proxies": ["proxy.example"]}, "server.trusted_proxies"),
        ("upstream", {"proxy": "https://proxy:3128"}, "upstream.proxy"),
        ("upstream", {"proxy": "http://proxy"}, "upstream.proxy"),
        ("upstream", {"account_proxies": {"a@b": "socks5://x:1"}}, "upstream.account_proxies"),
        ("metrics", {"public": "yes"}, "metrics.public"),
        ("metrics", {"port": 9}, "metrics.port"),
        ("logging", {"account_label": "token"}, "logging.account_label"),
    ],
)
def test_bad_values_name_the_key(section: str, values: dict, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.parse({section: values})
    assert caught.value.key == key
    assert "\n" not in str(caught.value)


def test_a_proxy_password_is_never_echoed_in_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        config.parse({"upstream": {"proxy": "socks5://user:hunter2-secret@proxy:1080"}})
    assert "hunter2-secret" not in str(caught.value)


def test_zero_turns_the_body_rate_check_off_and_drain_may_be_immediate() -> None:
    s = config.parse({"server": {"min_body_rate": 0, "drain_seconds": 0}})
    assert s.server.min_body_rate == 0 and s.server.drain_seconds == 0.0


def test_override_accepts_account_proxies_as_pairs() -> None:
    s = config.override(Settings(), "upstream", account_proxies=(("a@example.com", "http://127.0.0.1:3128"),))
    assert s.upstream.account_proxies == (("a@example.com", "http://127.0.0.1:3128"),)
