"""What a newcomer sees first, over loopback: GET /, route labels, the requested and mapped model per door.

And as a ``twist`` process: the start-up summary, text logs off a terminal,
``--version``, and a listener that cannot bind ending the process with status
1 and one line.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
import pytest_twisted
import treq

from tests.integration.harness import Events, accounts, body_json, start_stack
from tests.integration.processes import ROOT, TWIST, child_env, gateway_toml, free_port, start
from tests.integration.test_observability import scrape, value

KEY = "gw-key-0123456789abcdef"


@pytest_twisted.ensureDeferred
async def test_root_page_names_the_gateway_in_json_or_html(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        answer = await stack.get("/")
        page = await body_json(answer)
        assert answer.code == 200 and page["name"] == "antigravity-gateway"
        assert any(r["path"] == "/v1/chat/completions" for r in page["routes"]) and "docs" in page
        browser = await stack.get("/", headers={b"Accept": [b"text/html,application/xhtml+xml,*/*;q=0.8"]})
        html = (await treq.content(browser)).decode()
        assert browser.headers.getRawHeaders(b"content-type")[0].startswith(b"text/html")
        assert "<h1>antigravity-gateway" in html and "/v1/messages" in html
    async with start_stack(tmp_path, accounts(1), auth={"mode": "all_except_health", "keys": (KEY,)}) as stack:
        refused = await stack.get("/")
        assert refused.code == 401 and (await body_json(refused))["error"]["status"] == "UNAUTHENTICATED"


@pytest_twisted.ensureDeferred
async def test_every_door_logs_requested_and_mapped_model_and_its_own_route(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        with Events() as seen:
            chat = await stack.post("/v1/chat/completions", {"model": "gemini-3-flash", "messages": [{"role": "user", "content": "Hi"}]})
            await treq.content(chat)
            msg = await stack.post("/v1/messages", {"model": "claude-sonnet-4-6", "max_tokens": 64,
                                                    "messages": [{"role": "user", "content": "Hi"}]})
            await treq.content(msg)
            count = await stack.post("/v1/messages/count_tokens", {"model": "claude-sonnet-4-6",
                                                                   "messages": [{"role": "user", "content": "Hi"}]})
            await treq.content(count)
            admin = await stack.get("/admin/accounts")
            await treq.content(admin)
        assert (chat.code, msg.code, count.code, admin.code) == (200, 200, 200, 200)
        by_route = {e["route"]: e for e in seen.events}
        assert set(by_route) == {"chat.completions", "messages", "messages.count_tokens", "admin.accounts"}
        assert by_route["chat.completions"]["model"] == "gemini-3-flash" and by_route["chat.completions"]["mapped_model"]
        assert by_route["messages"]["model"] == "claude-sonnet-4-6" and by_route["messages"]["mapped_model"]
        assert by_route["messages.count_tokens"]["model"] == "claude-sonnet-4-6"
        samples = await scrape(stack)
        labels = {dict(k[1]).get("route") for k in samples if k[0] == "antigravity_gateway_requests_total"}
        assert {"messages.count_tokens", "admin.accounts"} <= labels and "other" not in labels
        assert value(samples, "antigravity_gateway_requests_total", route="admin.accounts", model="", status="200") == 1


def _twist(*args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TWIST, *args], cwd=str(cwd), env=child_env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_version_is_the_gateways(tmp_path: Path) -> None:
    from gateway import __version__

    done = _twist("antigravity-gateway", "--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"antigravity-gateway {__version__}"
    console = subprocess.run([str(Path(TWIST).parent / "antigravity-gateway"), "--version"], capture_output=True, text=True, timeout=30)
    assert console.returncode == 0 and console.stdout.strip() == f"antigravity-gateway {__version__}"


def test_a_taken_port_ends_start_up_with_status_1_and_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = tmp_path / "gateway.toml"
        config.write_text(gateway_toml(f"tcp:{port}:interface=127.0.0.1", "http://127.0.0.1:9", tmp_path / "accounts.json"))
        done = _twist("antigravity-gateway", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [lines[0]] and f"cannot listen on tcp:{port}:interface=127.0.0.1" in lines[0]
    assert "in use" in lines[0].lower()


def test_start_up_summary_in_text_lines_when_stdout_is_not_a_terminal(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "gateway.toml"
    store = tmp_path / "accounts.json"
    store.write_text(json.dumps({"accounts": [{"email": "gone@example.com", "refresh_token": "1//x", "disabled": True,
                                               "disabled_reason": "invalid_grant"}]}))
    config.write_text(gateway_toml(f"tcp:{port}:interface=127.0.0.1", "http://127.0.0.1:9", store))
    log = tmp_path / "gw.log"
    with open(log, "w") as out:
        popen = subprocess.Popen([TWIST, "antigravity-gateway", "--config", str(config)], cwd=str(tmp_path), env=child_env(),
                                 stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        from tests.integration.processes import Process

        process = Process("gateway", popen, log)
        process.wait_for_log("plugins:", timeout=20)
        text = process.text()
    finally:
        popen.terminate()
        popen.wait(15)
    assert not any(line.startswith("{") for line in text.splitlines()), text
    assert "unpersistable" not in text
    assert "antigravity-gateway 0.1" in text and f"listening: tcp:{port}:interface=127.0.0.1" in text
    assert "auth:      off" in text and f"store:     JSON store {store}" in text
    assert "accounts:  0 usable of 1" in text and "gone@example.com: disabled: invalid_grant" in text
    assert "upstream client: " in text and "plugins:   backend=json" in text


def test_json_lines_when_asked_carry_no_unpersistable_markers(tmp_path: Path) -> None:
    stack = start(tmp_path, gateway_args=["--log-json"])
    try:
        from tests.integration.processes import call

        assert call("GET", f"{stack.gateway_url}/")[0] == 200
        stack.gateway.wait_for_log('"route":"home"')
    finally:
        stack.close()
    text = stack.gateway.text()
    assert "unpersistable" not in text
    assert "manifest" in text and "Starting factory" not in text  # upstream connections are made, not logged one by one
    events = stack.gateway.events()
    assert any(e.get("route") == "home" and e.get("log_namespace") == "antigravity_gateway.request" for e in events)


@pytest.mark.parametrize("toml, store, needle", [
    ("[server]\nbogus = 1\n", None, "server.bogus: unknown key"),
    ('[accounts]\nselection = "nope"\n', None, "no plugin named 'nope'"),
    ("", "{bad", "not valid JSON"),
])
def test_every_start_up_failure_is_status_1_and_one_line(tmp_path: Path, toml: str, store: str | None, needle: str) -> None:
    accounts = tmp_path / "accounts.json"
    if store is not None:
        accounts.write_text(store)
    config = tmp_path / "gateway.toml"
    config.write_text(toml)
    done = _twist("antigravity-gateway", "--config", str(config), "--accounts", str(accounts), "--port", str(free_port()), cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and needle in lines[0], done.stderr
    assert lines[0].startswith("antigravity-gateway: ")


def test_demo_refuses_a_taken_port_you_named_and_lists_its_flags(tmp_path: Path) -> None:
    demo = str(ROOT / "scripts" / "demo")
    shown = subprocess.run(["bash", demo, "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "--port N" in shown.stdout and "--emulator-port N" in shown.stdout and "--serve" in shown.stdout
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(["bash", demo, "--port", str(port)], capture_output=True, text=True, timeout=120,
                              env=child_env(), stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and f"port {port} for the gateway is in use" in done.stderr and "--port N" in done.stderr
