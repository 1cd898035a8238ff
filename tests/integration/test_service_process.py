"""The gateway as a process: SIGTERM drains, SIGHUP reloads, systemd hands it its socket.

Each test starts ``twist antigravity-emulator`` and ``twist antigravity-gateway``
subprocesses (``processes.py``) and signals the gateway as systemd would.
"""

from __future__ import annotations

import errno
import json
import shutil
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.processes import StreamReader, ask, call, free_port, start

GENERATE = "/v1beta/models/gemini-3-flash:generateContent"
KEY_A = "gw-key-aaaaaaaaaaaaaaaa"
KEY_B = "gw-key-bbbbbbbbbbbbbbbb"
# twist ends by re-raising the signal it stopped for (systemd counts SIGTERM as a clean stop).
STOPPED = (0, -signal.SIGTERM)


def refused(url: str) -> bool:
    host, port = url.split("://", 1)[1].split(":")
    with socket.socket() as s:
        s.settimeout(2)
        try:
            s.connect((host, int(port)))
        except ConnectionRefusedError:
            return True
        except OSError as e:
            return e.errno == errno.ECONNREFUSED
    return False


def wait_refused(url: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not refused(url):
        assert time.monotonic() < deadline, "the gateway still accepts connections after SIGTERM"
        time.sleep(0.05)


def test_sigterm_lets_an_in_flight_stream_finish_and_refuses_new_connections(tmp_path: Path) -> None:
    stack = start(tmp_path, event_delay=0.2, extra_toml="")
    try:
        idle = socket.create_connection(("127.0.0.1", int(stack.gateway_url.rsplit(":", 1)[1])))
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
        assert b"200 OK" in idle.recv(65536)  # a keep-alive connection, idle from now on
        stream = StreamReader(stack.gateway_url, "stream 10 events")
        assert stream.response.status == 200
        assert stream.next_event() is not None
        stack.gateway.signal(signal.SIGTERM)
        wait_refused(stack.gateway_url)
        idle.settimeout(5)
        assert idle.recv(65536) == b""  # the idle connection is closed at once, not left to the reactor
        idle.close()
        events = stream.rest()
        assert len(events) == 10 and all("candidates" in e for e in events)
        assert stack.gateway.wait(15) in STOPPED
        log = stack.gateway.text()
        assert "antigravity-gateway stopping" in log and "antigravity-gateway stopped" in log
    finally:
        stack.close()


def test_sigterm_lets_an_in_flight_generate_finish(tmp_path: Path) -> None:
    stack = start(tmp_path)
    try:
        stack.fault(method="generateContent", kind="delay", seconds=1.5)
        result: dict[str, Any] = {}

        def request() -> None:
            result["answer"] = call("POST", stack.gateway_url + GENERATE, ask("Hello"))

        worker = threading.Thread(target=request)
        worker.start()
        deadline = time.monotonic() + 10
        while not stack.upstream_requests("generateContent"):  # in flight: upstream is working on it
            assert time.monotonic() < deadline
            time.sleep(0.02)
        stack.gateway.signal(signal.SIGTERM)
        wait_refused(stack.gateway_url)
        worker.join(15)
        status, headers, body = result["answer"]
        assert status == 200, body
        assert json.loads(body)["candidates"] and headers.get("connection") == "close"
        assert stack.gateway.wait(15) in STOPPED
    finally:
        stack.close()


def test_a_stream_still_running_when_the_grace_period_ends_gets_an_error_event(tmp_path: Path) -> None:
    stack = start(tmp_path, server_toml="drain_seconds = 0.5\n")
    try:
        stack.fault(method="streamGenerateContent", kind="stall", after_events=1)
        stream = StreamReader(stack.gateway_url, "stream 5 events")
        assert stream.next_event() is not None
        started = time.monotonic()
        stack.gateway.signal(signal.SIGTERM)
        events = stream.rest()
        assert time.monotonic() - started < 5
        assert "candidates" in events[0] and len(events) == 2
        error = events[-1]["error"]
        assert error["code"] == 503 and error["status"] == "UNAVAILABLE" and "restarting" in error["message"]
        assert stack.gateway.wait(10) in STOPPED
    finally:
        stack.close()


def test_sighup_reloads_keys_mapping_and_accounts_without_dropping_connections(tmp_path: Path) -> None:
    auth = f'[auth]\nmode = "all_except_health"\nkeys = ["{KEY_A}"]\n[models]\nmapping = {{ "gemini-pro" = "gemini-3.1-pro-low" }}\n'
    stack = start(tmp_path, event_delay=0.2, extra_toml=auth, health_url=None)
    try:
        key_a, key_b = {"x-goog-api-key": KEY_A}, {"x-goog-api-key": KEY_B}
        assert call("POST", stack.gateway_url + "/v1beta/models/gemini-pro:generateContent", ask("hi"), key_a)[0] == 200
        stream = StreamReader(stack.gateway_url, "stream 10 events", key_a)
        assert stream.next_event() is not None

        # New key, new mapping, one more account in the store.
        stack.config.write_text(stack.config.read_text().replace(KEY_A, KEY_B).replace('"gemini-3.1-pro-low"', '"gemini-3-flash"'))
        accounts = json.loads(stack.store.read_text())["accounts"]
        accounts.append({"email": "user1@example.com", "refresh_token": "1//proc-refresh-1"})
        stack.store.write_text(json.dumps({"accounts": accounts}))
        stack.gateway.signal(signal.SIGHUP)
        stack.gateway.wait_for_log("reloaded:")

        assert call("POST", stack.gateway_url + GENERATE, ask("hi"), key_a)[0] == 401
        status, _, body = call("POST", stack.gateway_url + "/v1beta/models/gemini-pro:generateContent", ask("hi"), key_b)
        assert status == 200, body
        assert stack.upstream_requests("generateContent")[-1]["body"]["model"] == "gemini-3-flash"
        _, _, metrics = call("GET", stack.gateway_url + "/metrics", headers=key_b)
        assert 'antigravity_gateway_accounts{state="active"} 2.0' in metrics.decode()
        events = stream.rest()  # the stream opened before the reload ran to its end
        assert len(events) == 10 and all("candidates" in e for e in events)

        # A bad file is refused with a log line; the settings in force stay.
        stack.config.write_text(stack.config.read_text() + "[server_typo]\nx = 1\n")
        stack.gateway.signal(signal.SIGHUP)
        stack.gateway.wait_for_log("reload refused")
        assert "server_typo" in stack.gateway.text()
        assert call("POST", stack.gateway_url + GENERATE, ask("hi"), key_b)[0] == 200
        stack.config.write_text(stack.config.read_text().replace("[server_typo]\nx = 1\n", ""))
        stack.store.write_text("{not json")
        stack.gateway.signal(signal.SIGHUP)
        stack.gateway.wait_for_log("reload refused", count=2)
        assert call("POST", stack.gateway_url + GENERATE, ask("hi"), key_b)[0] == 200
        _, _, metrics = call("GET", stack.gateway_url + "/metrics", headers=key_b)
        text = metrics.decode()
        assert 'antigravity_gateway_reloads_total{result="refused"} 2.0' in text
        assert 'antigravity_gateway_reloads_total{result="ok"} 1.0' in text
        assert 'antigravity_gateway_accounts{state="active"} 2.0' in text
        assert stack.gateway.popen.poll() is None
    finally:
        stack.close()


SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")


@pytest.mark.skipif(SOCKET_ACTIVATE is None, reason="systemd-socket-activate is not installed (Debian package: systemd)")
def test_systemd_socket_activation_serves_through_the_inherited_socket(tmp_path: Path) -> None:
    port = free_port()
    prefix = [SOCKET_ACTIVATE, "-l", f"127.0.0.1:{port}", "--fdname=http", "-E", "PYTHONPATH", "-E", "PYTHONUNBUFFERED"]
    stack = start(
        tmp_path,
        extra_toml=f'[auth]\nkeys = ["{KEY_A}"]\n',
        gateway_args=["--listen", "systemd:domain=INET:name=http"],
        prefix=prefix,
        gateway_port=port,
    )
    try:
        status, _, body = call("POST", stack.gateway_url + GENERATE, ask("Hello"), {"x-goog-api-key": KEY_A})
        assert status == 200, body
        assert json.loads(body)["candidates"]
        # systemd sockets are not known to be loopback: auth is on (all_except_health) without a key...
        assert call("POST", stack.gateway_url + GENERATE, ask("Hello"))[0] == 401
        log = stack.gateway.text()
        assert "systemd:domain=INET:name=http" in log
        stack.gateway.signal(signal.SIGTERM)
        assert stack.gateway.wait(15) in STOPPED
    finally:
        stack.close()
