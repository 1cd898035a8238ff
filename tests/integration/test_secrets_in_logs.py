"""A full run of the gateway process, then a scan of its log and of every answer for every secret used.

Keys (right and wrong, in every placement), refresh tokens, the access tokens
Google issued during the run, the OAuth client secret and the request
bodies must never appear in the log; no answer may carry a credential.
"""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path

from tests.integration.processes import CLIENT_SECRET, EMULATOR_ACCOUNTS, StreamReader, ask, call, start

KEY = "gw-key-Zq8vLr2nW4tY6uP0"
WRONG_KEY = "wrong-key-Hh3kJ5mN7pQ9"
PROMPT = "prompt-marker-Xc1Vb2Nm3"
GENERATE = "/v1beta/models/gemini-3-flash:generateContent"


def raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_no_secret_reaches_the_log_or_an_answer(tmp_path: Path) -> None:
    stack = start(tmp_path, store_accounts=3, extra_toml=f'[auth]\nmode = "all_except_health"\nkeys = ["{KEY}"]\n',
                  server_toml="max_url_bytes = 512\nmax_header_bytes = 2048\n")
    answers: list[bytes] = []
    try:
        url = stack.gateway_url
        port = int(url.rsplit(":", 1)[1])
        header = {"x-goog-api-key": KEY}
        stack.fault(method="token", kind="invalid_grant", email="user2@example.com", times=-1)

        def keep(answer: tuple[int, dict[str, str], bytes]) -> tuple[int, dict[str, str], bytes]:
            answers.append(json.dumps(answer[1]).encode() + answer[2])
            return answer

        assert keep(call("POST", url + GENERATE, ask(f"Hello {PROMPT}"), header))[0] == 200
        assert keep(call("POST", url + GENERATE + f"?key={KEY}", ask(f"Again {PROMPT}")))[0] == 200
        stream = StreamReader(url, f"stream 3 events {PROMPT}", {"Authorization": f"Bearer {KEY}"})
        stream.rest()
        assert stream.response.status == 200
        assert keep(call("POST", url + "/v1beta/models/gemini-3-flash:countTokens", ask(PROMPT), {"x-api-key": KEY}))[0] == 200
        assert keep(call("GET", url + "/v1beta/models", headers=header))[0] == 200
        assert keep(call("POST", url + GENERATE, ask(PROMPT), {"x-goog-api-key": WRONG_KEY}))[0] == 401
        assert keep(call("POST", url + GENERATE + f"?key={WRONG_KEY}", ask(PROMPT)))[0] == 401
        stack.fault(method="generateContent", status=429, reason="RATE_LIMIT_EXCEEDED", retry_delay=30, times=-1)
        assert keep(call("POST", url + GENERATE, ask(PROMPT), header))[0] == 429
        call("DELETE", stack.emulator_url + "/_emulator/faults")
        for i in range(12):  # until the third account has been tried, and disabled (new prompts: no stickiness)
            if any(a.get("disabled") for a in json.loads(stack.store.read_text())["accounts"]):
                break
            keep(call("POST", url + GENERATE, ask(f"{PROMPT} {i}"), header))
        stack.fault(method="streamGenerateContent", kind="cut", after_events=1)
        stream = StreamReader(url, f"stream 4 events {PROMPT}", header)
        answers.append(json.dumps(stream.rest()).encode())
        assert keep(call("GET", url + "/metrics", headers=header))[0] == 200
        # Refused before routing, with the key in the very bytes refused.
        answers.append(raw(port, b"GET /v1beta/models?key=" + KEY.encode() + b"&pad=" + b"a" * 600 + b" HTTP/1.1\r\nHost: gw\r\n\r\n"))
        answers.append(raw(port, b"GET /v1beta/models HTTP/1.1\r\nHost: gw\r\nx-goog-api-key: " + KEY.encode() + b"\r\nX-Pad: " + b"p" * 3000 + b"\r\n\r\n"))
        answers.append(raw(port, b"POST " + GENERATE.encode() + b"?key=" + KEY.encode() + b" HTTP/1.1\r\nHost: gw\r\nBad header line\r\n\r\n"))
        assert b" 414 " in answers[-3] and b" 431 " in answers[-2] and b" 400 " in answers[-1]
        stack.gateway.signal(signal.SIGHUP)
        stack.gateway.wait_for_log("reloaded:")
        stack.gateway.signal(signal.SIGTERM)
        stack.gateway.wait(15)
    finally:
        stack.close()

    store = json.loads(stack.store.read_text())["accounts"]
    access_tokens = [a["access_token"] for a in store if a.get("access_token")]
    assert len(access_tokens) >= 2, store  # the run really used Google's tokens
    assert any(a.get("disabled") for a in store)
    secrets = {"api key": KEY, "wrong key": WRONG_KEY, "client secret": CLIENT_SECRET}
    secrets.update({f"refresh token {a['email']}": a["refresh_token"] for a in EMULATOR_ACCOUNTS})
    secrets.update({f"access token {i}": t for i, t in enumerate(access_tokens)})
    secrets.update({f"rotated refresh token {a['email']}": a["refresh_token"] for a in store})

    log = stack.gateway.text()
    events = stack.gateway.events()
    assert sum(1 for e in events if e.get("log_namespace") == "antigravity_gateway.request") >= 12
    for name, secret in secrets.items():
        assert secret not in log, f"the {name} is in the gateway log"
        for answer in answers:
            assert secret.encode() not in answer, f"the {name} is in an answer: {answer[:300]!r}"
    assert PROMPT not in log, "a request body reached the log"
    assert '"contents"' not in log
