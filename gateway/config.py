"""The gateway's settings: one TOML file, documented defaults, command-line overrides.

Owns parsing and validation; every error names the key and the problem in one
line. Must not start anything or touch the network.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

# The OAuth clients themselves (Antigravity, the default, and gemini-cli) live in
# gateway.upstream.oauth_clients; [upstream] client_id/client_secret set the default.
DEFAULT_VERSION_URL = "https://antigravity-hub-auto-updater-974169037036.us-central1.run.app/manifest/latest-arm64-mac.yml"
CREDIT_MODES = ("never", "when_quota_exhausted")

DEFAULT_HOSTS = (
    "https://daily-cloudcode-pa.sandbox.googleapis.com",
    "https://daily-cloudcode-pa.googleapis.com",
    "https://cloudcode-pa.googleapis.com",
)
DEFAULT_LISTEN = ("tcp:8045:interface=127.0.0.1",)
AUTH_MODES = ("off", "strict", "all_except_health", "auto")


class ConfigError(Exception):
    """A setting that cannot be used; ``str()`` is the one line shown to the operator."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"config error: {key}: {problem}")
        self.key = key
        self.problem = problem


def data_dir() -> Path:
    """Where the gateway keeps state: systemd's StateDirectory, else XDG data home."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "antigravity-gateway"


def default_config_path() -> Path | None:
    """``$ANTIGRAVITY_GATEWAY_CONFIG``, else the XDG config file when it exists."""
    env = os.environ.get("ANTIGRAVITY_GATEWAY_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    path = Path(base) / "antigravity-gateway" / "config.toml"
    return path if path.exists() else None


@dataclass(frozen=True)
class ServerSettings:
    listen: tuple[str, ...] = DEFAULT_LISTEN
    max_body_bytes: int = 32 * 1024 * 1024
    allow_public_without_auth: bool = False
    drain_seconds: float = 30.0
    max_header_bytes: int = 16384
    max_url_bytes: int = 8192
    client_timeout: float = 30.0
    min_body_rate: int = 1024
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    workers: int | str = 1  # processes serving the listeners (docs/scaling.md); "auto": one per core


@dataclass(frozen=True)
class AuthSettings:
    mode: str = "auto"
    strategy: str = "api-key"
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class UpstreamSettings:
    hosts: tuple[str, ...] = DEFAULT_HOSTS
    token_url: str = "https://oauth2.googleapis.com/token"
    #: When set, they define the default OAuth client (see gateway.upstream.oauth_clients).
    client_id: str = ""
    client_secret: str = ""
    #: ``{version}`` is filled with the client version in use; a literal without it is sent as is.
    user_agent: str = "antigravity/hub/{version} darwin/arm64"
    auth_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    userinfo_url: str = "https://www.googleapis.com/oauth2/v2/userinfo"
    max_attempts: int = 3
    connect_timeout: float = 10.0
    response_timeout: float = 300.0
    stream_idle_timeout: float = 120.0
    body_timeout: float = 60.0
    request_timeout: float = 600.0
    token_timeout: float = 30.0
    max_answer_bytes: int = 32 * 1024 * 1024
    refresh_margin: float = 300.0
    models_cache_seconds: float = 300.0
    proxy: str = ""
    account_proxies: tuple[tuple[str, str], ...] = ()
    #: The client of accounts whose record names none; ``[upstream.oauth_clients.NAME]`` add clients.
    oauth_client: str = "antigravity"
    oauth_clients: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    version_url: str = DEFAULT_VERSION_URL
    version_floor: str = "2.9.1"
    version_refresh_seconds: float = 21600.0
    use_credits: str = "never"


@dataclass(frozen=True)
class AccountsSettings:
    backend: str = "json"
    selection: str = "quota-aware"
    path: str = field(default_factory=lambda: str(data_dir() / "accounts.json"))
    session_ttl: float = 1800.0
    session_header: str = "x-session-id"
    max_in_flight: int = 0
    queue_timeout: float = 30.0
    short_retry_max: float = 3.0
    default_cooldown: float = 60.0
    capacity_backoff: float = 1.0
    #: How long an account answered with 403 VALIDATION_REQUIRED rests (it stays enabled).
    validation_rest_seconds: float = 600.0
    quota_poll_interval: float = 300.0
    #: Seconds between two looks (a ``stat``) at the account store for other writers' changes on the
    #: request path; 0: at every request.
    store_check_interval: float = 1.0


@dataclass(frozen=True)
class ImageFetchSettings:
    """Remote images named in OpenAI/Anthropic requests (``gateway.upstream.fetch``)."""

    allow_networks: tuple[str, ...] = ()
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 3
    timeout: float = 15.0


@dataclass(frozen=True)
class ModelsSettings:
    mapper: str = "table"
    mapping: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class MetricsSettings:
    enabled: bool = True
    public: bool = False
    listen: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoggingSettings:
    account_label: str = "email"
    #: "text" (readable lines, the default everywhere) or "json" (one flat object a line, for log shippers).
    format: str = "text"


@dataclass(frozen=True)
class TeamSettings:
    """Per-person keys, usage recording and the dashboard (docs/team.md)."""

    store: str = ""  # "": team.sqlite3 beside [accounts] path
    admin_key: str = ""  # the dashboard's and the admin API's key ("": dashboard off)
    record_usage: bool = True
    retention_days: float = 90.0
    flush_seconds: float = 1.0
    batch_size: int = 200
    keys_poll_seconds: float = 2.0


@dataclass(frozen=True)
class ResponsesSettings:
    """``/v1/responses``: how many recent responses ``previous_response_id`` can name, and for how long."""

    store_entries: int = 1000
    store_ttl: float = 3600.0
    store_max_bytes: int = 256 * 1024 * 1024


@dataclass(frozen=True)
class StoreSettings:
    """Where keys and usage live: "" keeps the embedded SQLite file ([team] store); postgresql://… shares them."""

    url: str = ""


@dataclass(frozen=True)
class SharedSettings:
    """State several instances agree on (docs/scaling.md): ``local`` (this process alone) or ``redis``."""

    backend: str = "local"
    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "agw:"
    deadline: float = 0.25  # seconds any one Redis call may take before the instance decides locally
    retry_seconds: float = 1.0  # how often an unreachable Redis is tried again


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    accounts: AccountsSettings = field(default_factory=AccountsSettings)
    models: ModelsSettings = field(default_factory=ModelsSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    team: TeamSettings = field(default_factory=TeamSettings)
    responses: ResponsesSettings = field(default_factory=ResponsesSettings)
    image_fetch: ImageFetchSettings = field(default_factory=ImageFetchSettings)
    shared: SharedSettings = field(default_factory=SharedSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    source: str | None = None

    def effective_auth_mode(self) -> str:
        """``auto`` resolved: off when every listener is loopback, else all_except_health."""
        if self.auth.mode != "auto":
            return self.auth.mode
        if self.auth.strategy == "keys":  # per-person keys are pointless without asking for one
            return "all_except_health"
        return "off" if all(is_loopback_endpoint(e) for e in self.server.listen) else "all_except_health"


# --- validators: each returns the clean value or raises ValueError(problem) ---

def _string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"must be a positive integer, got {value!r}")
    return value


def _positive_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"must be a positive number of seconds, got {value!r}")
    return float(value)


def _non_negative_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"must be zero or a positive number of seconds, got {value!r}")
    return float(value)


def _string_list(value: Any, *, allow_empty: bool = True) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"must be a list of non-empty strings, got {value!r}")
    if not value and not allow_empty:
        raise ValueError("must not be empty")
    return tuple(value)


def _url(value: Any) -> str:
    text = _string(value)
    if not re.match(r"^https?://[^/\s]+", text):
        raise ValueError(f"must be an http:// or https:// URL, got {text!r}")
    return text.rstrip("/")


def _url_list(value: Any) -> tuple[str, ...]:
    return tuple(_url(v) for v in _string_list(value, allow_empty=False))


def _listen_list(value: Any) -> tuple[str, ...]:
    return _string_list(value, allow_empty=False)


def _auth_mode(value: Any) -> str:
    if value not in AUTH_MODES:
        raise ValueError(f"must be one of {', '.join(AUTH_MODES)}, got {value!r}")
    return value


def _mapping(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise ValueError(f"must be a table of pattern = model, got {value!r}")
    pairs = []
    for pattern, target in value.items():
        if not isinstance(target, str) or not target or not pattern:
            raise ValueError(f"entry {pattern!r} must map to a non-empty model id, got {target!r}")
        if "*" in target:
            raise ValueError(f"entry {pattern!r}: the target {target!r} must be a literal model id")
        pairs.append((pattern, target))
    return tuple(pairs)


def _non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"must be zero or a positive integer, got {value!r}")
    return value


def _proxy_url(value: Any) -> str:
    """``http://[user:password@]host:port`` ("" = no proxy); HTTPS upstreams go through CONNECT."""
    if value == "":
        return ""
    text = _string(value)
    match = re.match(r"^http://(?:[^@/\s]+@)?([^:@/\s]+|\[[0-9a-fA-F:]+\]):(\d{1,5})/?$", text)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ValueError("must be an http://[user:password@]host:port proxy URL")
    return text.rstrip("/")


def _account_proxies(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise ValueError(f"must be a table of account email = proxy URL, got {type(value).__name__}")
    pairs = []
    for email, url in value.items():
        try:
            pairs.append((_string(email), _proxy_url(url)))
        except ValueError as e:
            raise ValueError(f"entry {email!r}: {e}") from None
    return tuple(pairs)


def _version(value: Any) -> str:
    text = _string(value).strip()
    if not re.fullmatch(r"\d+(?:\.\d+){0,3}", text):
        raise ValueError(f"must be a dotted version such as 2.9.1, got {value!r}")
    return text


def _version_url(value: Any) -> str:
    """The manifest URL (``""``: do not fetch; the floor is used)."""
    return "" if value == "" else _url(value)


def _credit_mode(value: Any) -> str:
    if value not in CREDIT_MODES:
        raise ValueError(f"must be one of {', '.join(CREDIT_MODES)}, got {value!r}")
    return value


def _client_name(value: Any) -> str:
    text = _string(value)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", text):
        raise ValueError(f"must be a client name (letters, digits, '-', '_', '.'), got {value!r}")
    return text


def _oauth_clients(value: Any) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    """``[upstream.oauth_clients.NAME]`` tables of client_id, client_secret and optional scopes."""
    if not isinstance(value, dict):
        raise ValueError("must be tables [upstream.oauth_clients.NAME] with client_id and client_secret")
    out = []
    for name, table in value.items():
        try:
            _client_name(name)
        except ValueError as e:
            raise ValueError(f"{name!r}: {e}") from None
        if not isinstance(table, dict):
            raise ValueError(f"{name!r} must be a table with client_id and client_secret")
        unknown = set(table) - {"client_id", "client_secret", "scopes"}
        if unknown:
            raise ValueError(f"{name!r}: unknown key(s) {', '.join(sorted(unknown))} (known: client_id, client_secret, scopes)")
        try:
            clean: dict[str, Any] = {"client_id": _string(table.get("client_id")), "client_secret": _string(table.get("client_secret"))}
            if "scopes" in table:
                clean["scopes"] = _string_list(table["scopes"], allow_empty=False)
        except ValueError as e:
            raise ValueError(f"{name!r}: {e}") from None
        out.append((name, clean))
    return tuple(out)


def _origins(value: Any) -> tuple[str, ...]:
    origins = _string_list(value)
    for origin in origins:
        if origin != "*" and not re.match(r"^https?://[^/\s]+$", origin):
            raise ValueError(f"{origin!r} is not an origin: use \"*\" or scheme://host[:port] without a path")
    return origins


def _networks(value: Any) -> tuple[str, ...]:
    entries = _string_list(value)
    for entry in entries:
        if entry == "unix":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address, a network (10.0.0.0/8) or \"unix\"") from None
    return entries


def _endpoint_list(value: Any) -> tuple[str, ...]:
    return _string_list(value)


def _account_label(value: Any) -> str:
    if value not in ("email", "hash", "none"):
        raise ValueError(f"must be one of email, hash, none, got {value!r}")
    return value

def _log_format(value: Any) -> str:
    if value not in ("text", "json"):
        raise ValueError(f"must be text or json, got {value!r}")
    return value


def _in_flight_limit(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"must be 0 (no limit) or a positive integer, got {value!r}")
    return value


def _header_name(value: Any) -> str:
    text = _string(value)
    if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", text):
        raise ValueError(f"must be an HTTP header name, got {text!r}")
    return text.lower()


def _workers(value: Any) -> int | str:
    from gateway.workers import worker_count

    if isinstance(value, str) and value.isdigit():
        value = int(value)
    worker_count(value, 1)
    return value


def _shared_backend(value: Any) -> str:
    if value not in ("local", "redis"):
        raise ValueError(f'must be "local" or "redis", got {value!r}')
    return value


def _store_url(value: Any) -> str:
    if value == "":
        return value
    text = _string(value)
    if not text.startswith(("postgresql://", "postgres://")):
        raise ValueError(f'must be "" (the embedded SQLite store) or a postgresql:// URL, got {text.split(":", 1)[0]!r}')
    return text


def _redis_url(value: Any) -> str:
    from gateway.shared.resp import parse_url

    parse_url(_string(value))
    return value


SCHEMA: dict[str, dict[str, Callable[[Any], Any]]] = {
    "server": {
        "listen": _listen_list,
        "max_body_bytes": _positive_int,
        "allow_public_without_auth": _bool,
        "drain_seconds": _non_negative_float,
        "max_header_bytes": _positive_int,
        "max_url_bytes": _positive_int,
        "client_timeout": _positive_float,
        "min_body_rate": _non_negative_int,
        "cors_origins": _origins,
        "trusted_proxies": _networks,
        "workers": _workers,
    },
    "auth": {"mode": _auth_mode, "strategy": _string, "keys": _string_list},
    "upstream": {
        "hosts": _url_list,
        "token_url": _url,
        "client_id": _string,
        "client_secret": _string,
        "user_agent": _string,
        "auth_url": _url,
        "userinfo_url": _url,
        "max_attempts": _positive_int,
        "connect_timeout": _positive_float,
        "response_timeout": _positive_float,
        "stream_idle_timeout": _positive_float,
        "body_timeout": _positive_float,
        "request_timeout": _positive_float,
        "token_timeout": _positive_float,
        "max_answer_bytes": _positive_int,
        "refresh_margin": _non_negative_float,
        "models_cache_seconds": _non_negative_float,
        "proxy": _proxy_url,
        "account_proxies": _account_proxies,
        "oauth_client": _client_name,
        "oauth_clients": _oauth_clients,
        "version_url": _version_url,
        "version_floor": _version,
        "version_refresh_seconds": _positive_float,
        "use_credits": _credit_mode,
    },
    "accounts": {
        "backend": _string,
        "selection": _string,
        "path": _string,
        "session_ttl": _non_negative_float,
        "session_header": _header_name,
        "max_in_flight": _in_flight_limit,
        "queue_timeout": _positive_float,
        "short_retry_max": _non_negative_float,
        "default_cooldown": _positive_float,
        "validation_rest_seconds": _positive_float,
        "capacity_backoff": _non_negative_float,
        "quota_poll_interval": _non_negative_float,
        "store_check_interval": _non_negative_float,
    },
    "models": {"mapper": _string, "mapping": _mapping},
    "metrics": {"enabled": _bool, "public": _bool, "listen": _endpoint_list},
    "logging": {"account_label": _account_label, "format": _log_format},
    "team": {
        "store": _string,
        "admin_key": _string,
        "record_usage": _bool,
        "retention_days": _non_negative_float,
        "flush_seconds": _positive_float,
        "batch_size": _positive_int,
        "keys_poll_seconds": _positive_float,
    },
    "responses": {"store_entries": _non_negative_int, "store_ttl": _positive_float, "store_max_bytes": _positive_int},
    "image_fetch": {"allow_networks": _networks, "max_bytes": _positive_int, "max_redirects": _non_negative_int,
                    "timeout": _positive_float},
    "shared": {
        "backend": _shared_backend,
        "url": _redis_url,
        "prefix": _string,
        "deadline": _positive_float,
        "retry_seconds": _positive_float,
    },
    "store": {"url": _store_url},
}

_SECTION_TYPES = {
    "server": ServerSettings,
    "auth": AuthSettings,
    "upstream": UpstreamSettings,
    "accounts": AccountsSettings,
    "models": ModelsSettings,
    "metrics": MetricsSettings,
    "logging": LoggingSettings,
    "team": TeamSettings,
    "responses": ResponsesSettings,
    "image_fetch": ImageFetchSettings,
    "shared": SharedSettings,
    "store": StoreSettings,
}


def parse(document: Mapping[str, Any], source: str | None = None, base: Settings | None = None) -> Settings:
    """Validate a parsed TOML document into Settings; unknown keys are errors (typos bite)."""
    settings = base or Settings()
    sections: dict[str, Any] = {}
    for section, values in document.items():
        if section not in SCHEMA:
            raise ConfigError(f"[{section}]", f"unknown section (known: {', '.join(SCHEMA)})")
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}]", "must be a table")
        changes = {}
        for key, value in values.items():
            validator = SCHEMA[section].get(key)
            if validator is None:
                raise ConfigError(f"{section}.{key}", f"unknown key (known: {', '.join(SCHEMA[section])})")
            try:
                changes[key] = validator(value)
            except ValueError as e:
                raise ConfigError(f"{section}.{key}", str(e)) from None
        sections[section] = replace(getattr(settings, section), **changes)
    if "upstream" in sections:
        from gateway.upstream.oauth_clients import UnknownClient, from_settings

        try:
            from_settings(sections["upstream"])
        except UnknownClient as e:
            raise ConfigError("upstream.oauth_client", str(e)) from None
    if "accounts" in sections:
        path = os.path.expanduser(sections["accounts"].path)
        if source and not os.path.isabs(path):
            path = os.path.join(os.path.dirname(os.path.abspath(source)), path)
        sections["accounts"] = replace(sections["accounts"], path=path)
    if "team" in sections and sections["team"].store:
        path = os.path.expanduser(sections["team"].store)
        if source and not os.path.isabs(path):
            path = os.path.join(os.path.dirname(os.path.abspath(source)), path)
        sections["team"] = replace(sections["team"], store=path)
    return replace(settings, source=source or settings.source, **sections)


def load(path: str | os.PathLike[str] | None) -> Settings:
    """Read the TOML file at ``path`` (None: defaults only)."""
    if path is None:
        return Settings()
    path = str(path)
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except PermissionError:
        raise ConfigError(path, "permission denied") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, f"not valid TOML: {e}") from None
    return parse(document, source=path)


def override(settings: Settings, section: str, **changes: Any) -> Settings:
    """Apply command-line values (already typed) through the same validators."""
    clean = {}
    for key, value in changes.items():
        validator = SCHEMA[section][key]
        raw = list(value) if isinstance(value, tuple) else value
        if key in ("mapping", "account_proxies", "oauth_clients") and isinstance(value, tuple):
            raw = dict(value)
        try:
            clean[key] = validator(raw)
        except ValueError as e:
            raise ConfigError(f"--{key.replace('_', '-')}", str(e)) from None
    return replace(settings, **{section: replace(getattr(settings, section), **clean)})


def is_loopback_endpoint(description: str) -> bool:
    """Whether a Twisted server endpoint string only accepts local connections.

    ``unix:`` sockets are local. TCP endpoints are loopback only with an explicit
    loopback ``interface``; ``systemd:`` sockets are unknown, so not loopback.
    """
    kind, _, rest = description.partition(":")
    kind = kind.strip().lower()
    if kind == "unix":
        return True
    if kind not in ("tcp", "tcp6", "ssl"):
        return False
    params = _endpoint_params(rest)
    interface = params.get("interface")
    if interface is None:
        return False
    if interface == "localhost":
        return True
    try:
        return ipaddress.ip_address(interface).is_loopback
    except ValueError:
        return False


def _endpoint_params(rest: str) -> dict[str, str]:
    params: dict[str, str] = {}
    parts = re.split(r"(?<!\\):", rest)
    for part in parts:
        if "=" in part:
            key, _, value = part.partition("=")
            params[key.strip()] = value.replace("\\:", ":").strip()
    return params
