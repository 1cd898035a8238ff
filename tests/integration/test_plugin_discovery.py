"""Twisted finds the ``antigravity-gateway`` and ``antigravity-emulator`` plugins.

In this process (``getPlugins``), through ``twist``/``twistd`` from the venv
(the strict editable install), and from a normal, non-editable install into a
scratch directory. Start-up refusals (bad config, strict auth without keys,
public listener without auth) stop ``twist`` with one line on stderr and no
traceback. Everything runs in subprocesses; no reactor is touched here.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TWIST = str(BIN / "twist") if (BIN / "twist").exists() else (shutil.which("twist") or "twist")
TWISTD = str(BIN / "twistd") if (BIN / "twistd").exists() else (shutil.which("twistd") or "twistd")
TAPNAMES = {"antigravity-gateway", "antigravity-emulator"}
TIMEOUT = 30


def env_for(home: Path, *, checkout: bool = True) -> dict[str, str]:
    """A clean environment: HOME in a temp dir, no config from the outside, this checkout importable."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ANTIGRAVITY_GATEWAY_CONFIG", "STATE_DIRECTORY")}
    env["HOME"] = str(home)
    if checkout:
        env["PYTHONPATH"] = str(ROOT)
    return env


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def assert_refused(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Non-zero exit, exactly one line on stderr that contains every needle, no traceback anywhere."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_get_plugins_in_process() -> None:
    from twisted.application.service import IServiceMaker
    from twisted.plugin import getPlugins

    assert TAPNAMES <= {p.tapname for p in getPlugins(IServiceMaker)}


def test_no_init_next_to_the_dropin() -> None:
    # TWISTED.md: a twisted/__init__.py or twisted/plugins/__init__.py would shadow Twisted's own.
    assert not (ROOT / "twisted" / "__init__.py").exists()
    assert not (ROOT / "twisted" / "plugins" / "__init__.py").exists()


def test_twist_lists_both_plugins(tmp_path: Path) -> None:
    result = run([TWIST, "--help"], tmp_path, env_for(tmp_path))
    assert result.returncode == 0, result.stderr
    for name in TAPNAMES:
        assert name in result.stdout


def test_twist_finds_plugin_from_the_editable_install_alone(tmp_path: Path) -> None:
    """No PYTHONPATH, cwd elsewhere: only the venv's (strict editable) install can provide the plugin."""
    try:
        importlib.metadata.distribution("antigravity-gateway")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("antigravity-gateway is not installed in this venv (pip install -e '.[test]' --config-settings editable_mode=strict)")
    env = env_for(tmp_path, checkout=False)
    result = run([TWIST, "--help"], tmp_path, env)
    assert result.returncode == 0, result.stderr
    missing = [name for name in TAPNAMES if name not in result.stdout]
    assert not missing, (
        f"twist does not list {missing}: install in strict editable mode "
        "(pip install -e . --config-settings editable_mode=strict), see README.md\n" + result.stdout
    )
    result = run([TWIST, "antigravity-gateway", "--help"], tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gateway_help(tmp_path: Path) -> None:
    result = run([TWIST, "antigravity-gateway", "--help"], tmp_path, env_for(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    for option in ("--listen", "--config", "--port"):
        assert option in result.stdout, result.stdout


def test_emulator_help(tmp_path: Path) -> None:
    result = run([TWIST, "antigravity-emulator", "--help"], tmp_path, env_for(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--port" in result.stdout and "--seed" in result.stdout


def test_twistd_help(tmp_path: Path) -> None:
    result = run([TWISTD, "-n", "antigravity-gateway", "--help"], tmp_path, env_for(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--listen" in result.stdout and "--config" in result.stdout


def test_bad_config_value_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nmax_body_bytes = -1\n")
    result = run([TWIST, "antigravity-gateway", "--config", str(bad)], tmp_path, env_for(tmp_path))
    assert_refused(result, "server.max_body_bytes")


def test_unknown_config_key_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "typo.toml"
    bad.write_text("[server]\nmax_body_byte = 10\n")
    result = run([TWIST, "antigravity-gateway", "--config", str(bad)], tmp_path, env_for(tmp_path))
    assert_refused(result, "max_body_byte")


def test_strict_auth_without_keys_refuses(tmp_path: Path) -> None:
    config = tmp_path / "strict.toml"
    config.write_text('[auth]\nmode = "strict"\n')
    args = [TWIST, "antigravity-gateway", "--config", str(config), "--accounts", str(tmp_path / "accounts.json"),
            "--listen", "tcp:0:interface=127.0.0.1"]
    assert_refused(run(args, tmp_path, env_for(tmp_path)), "auth.keys")


def test_public_listener_without_auth_refuses(tmp_path: Path) -> None:
    config = tmp_path / "public.toml"
    config.write_text('[auth]\nmode = "off"\n')
    args = [TWIST, "antigravity-gateway", "--config", str(config), "--accounts", str(tmp_path / "accounts.json"),
            "--listen", "tcp:0:interface=0.0.0.0"]
    line = assert_refused(run(args, tmp_path, env_for(tmp_path)), "0.0.0.0")
    assert "allow_public_without_auth" in line


@pytest.fixture(scope="module")
def normal_install(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """``pip install --target`` of this checkout (a regular wheel install, not editable).

    Returns the target dir, a clean working dir, and an environment whose
    PYTHONPATH is the target then the venv's site-packages (for the
    dependencies). Children run with ``-S`` so the venv's .pth files (the
    editable install's among them) are not processed: the package can only
    come from the target.
    """
    tmp_path = tmp_path_factory.mktemp("normal-install")
    source = tmp_path / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "dropin.cache")
    for name in ("gateway", "twisted"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    target = tmp_path / "site"
    pip = run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-input", "--disable-pip-version-check",
               "--target", str(target), str(source)], tmp_path, env_for(tmp_path, checkout=False))
    if pip.returncode != 0 and "satisfies the requirement setuptools" in pip.stdout + pip.stderr:
        pytest.skip("cannot build: setuptools/wheel not available to pip's isolated build")
    assert pip.returncode == 0, pip.stdout + pip.stderr
    env = env_for(tmp_path, checkout=False)
    env["PYTHONPATH"] = os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]])
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    return target, workdir, env


def test_plugin_found_after_a_normal_install(normal_install: tuple[Path, Path, dict[str, str]]) -> None:
    target, workdir, env = normal_install
    assert (target / "twisted" / "plugins" / "antigravity_gateway_dropin.py").exists()
    assert not (target / "twisted" / "__init__.py").exists()
    assert not (target / "twisted" / "plugins" / "__init__.py").exists()
    probe = (
        "import sys\n"
        "from twisted.application.service import IServiceMaker\n"
        "from twisted.plugin import getPlugins\n"
        "names = {p.tapname for p in getPlugins(IServiceMaker)}\n"
        "import gateway\n"
        "dropin = sys.modules.get('twisted.plugins.antigravity_gateway_dropin')\n"
        "print(sorted(names))\n"
        "print(gateway.__file__)\n"
        "print(dropin.__file__ if dropin else None)\n"
    )
    result = run([sys.executable, "-S", "-c", probe], workdir, env)
    assert result.returncode == 0, result.stderr
    names, gateway_file, dropin_file = result.stdout.strip().splitlines()[-3:]
    for name in TAPNAMES:
        assert repr(name) in names, result.stdout
    assert Path(gateway_file).is_relative_to(target), gateway_file
    assert Path(dropin_file).is_relative_to(target), dropin_file

    # And `twist` itself (python -m twisted) runs the gateway's options from that install.
    result = run([sys.executable, "-S", "-m", "twisted", "antigravity-gateway", "--help"], workdir, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--listen" in result.stdout


def test_console_scripts_of_a_normal_install_resolve(normal_install: tuple[Path, Path, dict[str, str]]) -> None:
    """Every console_scripts entry point the distribution declares imports (pip installs them as commands)."""
    target, workdir, env = normal_install
    probe = (
        "import importlib.metadata as m\n"
        "for ep in m.distribution('antigravity-gateway').entry_points:\n"
        "    if ep.group != 'console_scripts':\n"
        "        continue\n"
        "    try:\n"
        "        ep.load()\n"
        "    except Exception as e:\n"
        "        print(f'{ep.name} = {ep.value}: {type(e).__name__}: {e}')\n"
    )
    result = run([sys.executable, "-S", "-c", probe], workdir, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", "console_scripts that cannot run:\n" + result.stdout
