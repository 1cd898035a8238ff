"""The shipped systemd units: valid for systemd, sandboxed, and consistent with the gateway's options."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.tap import Options

UNITS = Path(__file__).resolve().parents[2] / "contrib" / "systemd"
SERVICE = UNITS / "antigravity-gateway.service"
SOCKET = UNITS / "antigravity-gateway.socket"


def unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    text = path.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def exec_start() -> list[str]:
    return shlex.split(unit(SERVICE)["Service"]["ExecStart"][0])


def test_the_service_is_sandboxed_and_runs_as_its_own_user() -> None:
    service = unit(SERVICE)["Service"]
    expected = {
        "User": "antigravity-gateway", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "StateDirectory": "antigravity-gateway", "Type": "exec", "KillSignal": "SIGTERM",
        "ExecReload": "/bin/kill -HUP $MAINPID", "CapabilityBoundingSet": "",
    }
    for key, value in expected.items():
        assert service.get(key) == [value], key
    assert int(service["TimeoutStopSec"][0]) > 30  # longer than the default drain
    assert "antigravity-gateway" in (UNITS / "antigravity-gateway.sysusers").read_text()


def test_exec_start_adopts_the_socket_the_socket_unit_names() -> None:
    argv = exec_start()
    assert argv[0].endswith("/twist") and "--log-format=text" in argv  # twist itself: LISTEN_PID is its pid
    name = unit(SOCKET)["Socket"]["FileDescriptorName"][0]
    listen = argv[argv.index("--listen") + 1]
    assert listen == f"systemd:domain=INET:name={name}"
    assert unit(SERVICE)["Unit"]["Requires"] == ["antigravity-gateway.socket"]


def test_exec_start_options_are_the_gateways(tmp_path: Path) -> None:
    argv = exec_start()
    args = argv[argv.index("antigravity-gateway") + 1:]
    config = tmp_path / "config.toml"
    config.write_text('[auth]\nkeys = ["k"]\n[accounts]\npath = "accounts.json"\n')
    (tmp_path / "accounts.json").write_text('{"accounts": []}')
    args[args.index("--config") + 1] = str(config)
    options = Options()
    options.parseOptions(args)
    assert options.settings is not None and options.settings.server.listen == ("systemd:domain=INET:name=http",)
    assert options.settings.effective_auth_mode() == "all_except_health"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    twist = Path(sys.executable).parent / "twist"
    for source in (SERVICE, SOCKET):
        text = source.read_text().replace("/opt/antigravity-gateway/venv/bin/twist", str(twist))
        (tmp_path / source.name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / SOCKET.name), str(tmp_path / SERVICE.name)],
        capture_output=True, text=True, timeout=60,
    )
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "antigravity-gateway" in line and "/usr/lib/systemd" not in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr
