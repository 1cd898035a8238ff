"""Fixtures for the real-SDK tests: one ``twist``-started emulator + gateway pair.

The blocking SDKs run on the test thread; the gateway is another process, so
no reactor is involved here (and pytest-twisted is not used). See ``stack.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.clients.stack import ClientStack, write_files
from tests.integration.processes import free_port, spawn, wait_until_up


@pytest.fixture(scope="session")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientStack]:
    """The emulator and a gateway wired to it, both ``twist`` subprocesses on free loopback ports."""
    directory = tmp_path_factory.mktemp("clients")
    emulator_port = free_port()
    gateway_port = free_port()
    while gateway_port == emulator_port:
        gateway_port = free_port()
    config = write_files(directory, gateway_port, emulator_port)
    stack = ClientStack(f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{emulator_port}", directory)
    try:
        stack.processes.append(
            spawn(
                "emulator",
                ["antigravity-emulator", "--port", str(emulator_port), "--seed", str(directory / "seed.json"),
                 "--event-delay", "0"],
                directory,
            )
        )
        wait_until_up(f"{stack.emulator_url}/_emulator/health", stack.processes)
        stack.processes.append(spawn("gateway", ["antigravity-gateway", "--config", str(config)], directory))
        wait_until_up(f"{stack.url}/healthz", stack.processes)
        yield stack
    finally:
        for process in reversed(stack.processes):
            process.stop()


SDK_ENV = ("GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_API_KEY", "GEMINI_API_KEY",
           "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
           "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _fresh_emulator(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Reset the emulator around each test that uses ``gw``; keep SDK env vars and proxies out of the way."""
    for name in SDK_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    if "gw" not in request.fixturenames:
        yield
        return
    stack: ClientStack = request.getfixturevalue("gw")
    stack.reset()
    yield
    stack.reset()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/clients carries the ``clients`` marker (``-m "not clients"`` skips them)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.clients)
