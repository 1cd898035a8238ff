"""A real gateway and emulator, started with ``twist`` as users start them (helpers).

``conftest.py`` starts one pair per test session (``gw``): the emulator plays Cloud Code and Google's
token endpoint, the gateway is wired to it by a config file in a temporary
directory, and the blocking SDKs under test talk to the gateway over loopback
from the test thread (the gateway runs in another process, so nothing here
touches a reactor). Faults are injected and the emulator's record of upstream
requests is read through its ``/_emulator/`` control API; every test starts
with the emulator reset (no faults, no records, initial settings).
Processes are started and stopped by ``tests.integration.processes``.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.integration.processes import Process, call, gateway_toml

ACCOUNTS = [
    {"email": "alice@example.com", "refresh_token": "1//alice-refresh", "project_id": "alice-project", "tier": "standard-tier"},
    {"email": "bob@example.com", "refresh_token": "1//bob-refresh", "project_id": "bob-project", "tier": "standard-tier"},
]


@dataclass
class ClientStack:
    """What tests get: where to point the SDKs, and the emulator's control API."""

    url: str
    emulator_url: str
    directory: Path
    processes: list[Process] = field(default_factory=list)

    # -- emulator control --

    def control(self, method: str, path: str, body: Any = None) -> Any:
        status, _, raw = call(method, f"{self.emulator_url}/_emulator/{path}", body)
        if status != 200:
            raise AssertionError(f"emulator {method} /_emulator/{path} -> {status}: {raw!r}")
        return json.loads(raw) if raw else None

    def add_fault(self, **spec: Any) -> str:
        """One fault rule (see ``Fault`` in gateway/emulator/state.py); returns its id."""
        return self.control("POST", "faults", spec)["id"]

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")

    def reset(self) -> None:
        """No faults, no recorded requests, no quotas, initial settings (accounts kept).

        The gateway learns from failures (cooldowns, disabled accounts), so a
        test's faults would leak into the next: every account is re-enabled
        the way an operator does it (``antigravity-gateway accounts enable``),
        which the running gateway picks up from the store.
        """
        self.control("POST", "reset", {})
        from gateway.cli import main as cli

        with contextlib.redirect_stdout(io.StringIO()):
            for account in ACCOUNTS:
                assert cli(["accounts", "enable", account["email"], "--config", str(self.directory / "gateway.toml")]) == 0

    def requests(self, method: str | None = None) -> list[dict[str, Any]]:
        """Upstream calls the emulator saw since the last reset (secrets redacted)."""
        query = f"?method={method}" if method else ""
        return self.control("GET", "requests" + query)["requests"]

    def logs(self) -> str:
        return "\n".join(f"===== {p.name} ({p.log}) =====\n{p.text()}" for p in self.processes)


#: gemini-cli's default models (gemini-3.8-flash, its gemini-3.5-flash-lite classifier, …) are newer than the
#: emulator's catalogue; until the live-catalogue resolver maps them, the test config does (docs/clients.md).
CLIENT_DEFAULTS_MAPPING = (
    '[models]\nmapping = { "gemini-3.*-flash-lite*" = "gemini-3-flash", "gemini-3.*-flash" = "gemini-3-flash", '
    '"gemini-3.*-pro-preview" = "gemini-3-flash" }\n'
)


def write_files(directory: Path, gateway_port: int, emulator_port: int) -> Path:
    """Seed (emulator side), account store and config (gateway side); returns the config."""
    (directory / "seed.json").write_text(json.dumps({"accounts": ACCOUNTS}))
    store = directory / "accounts.json"
    store.write_text(json.dumps({"accounts": [{"email": a["email"], "refresh_token": a["refresh_token"]} for a in ACCOUNTS]}))
    store.chmod(0o600)
    config = directory / "gateway.toml"
    config.write_text(gateway_toml(
        f"tcp:{gateway_port}:interface=127.0.0.1", f"http://127.0.0.1:{emulator_port}", store,
        upstream="max_attempts = 3\nstream_idle_timeout = 10\n", extra=CLIENT_DEFAULTS_MAPPING,
    ))
    return config
