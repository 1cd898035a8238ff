"""Request heads a well-behaved client never sends: slowloris, odd targets, bad bytes, HEAD with a key.

Each gets a JSON answer in the shape of the door its path names, promptly,
and nothing that names a credential or a traceback in the log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.logger import globalLogPublisher, formatEvent

from tests.integration.harness import accounts, start_stack
from tests.integration.rawhttp import dechunk, exchange, parse

KEY = "sk-heads-0123456789abcdef"


class Log:
    """Every log event published while the block runs, as text (format + failure)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, event: dict[str, Any]) -> None:
        text = formatEvent(event) or ""
        failure = event.get("log_failure")
        if failure is not None:
            text += "\nTraceback " + failure.getTraceback()
        self.lines.append(text + " " + repr({k: v for k, v in event.items() if not k.startswith("log_")}))

    def __enter__(self) -> "Log":
        globalLogPublisher.addObserver(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        globalLogPublisher.removeObserver(self)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _json(raw: bytes) -> tuple[int, dict[str, str], Any]:
    status, headers, body = parse(raw)
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return status, headers, json.loads(body)


@pytest_twisted.ensureDeferred
async def test_slowloris_request_lines_get_408(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), server={"client_timeout": 0.4}) as stack:
        port = stack.port.getHost().port
        # One byte at a time, never completing a line: the deadline runs from the first byte.
        dribble: list[Any] = [b"POST /v1/messages ", 0.05]
        for byte in b"HTTP/1.1\r\nHost: x\r\n" * 3:
            dribble += [bytes([byte]), 0.05]
        status, _, document = _json(await exchange(port, dribble, timeout=5))
        assert status == 408 and document["type"] == "error", document
        # LF-only line endings, never ending the head.
        pieces: list[Any] = [b"GET /v1beta/models HTTP/1.1\n"]
        for i in range(20):
            pieces += [b"X-A%d: b\n" % i, 0.05]
        status, _, document = _json(await exchange(port, pieces, timeout=5))
        assert status == 408 and document["error"]["status"] == "DEADLINE_EXCEEDED"
        # Only empty lines: answered (a malformed request line, or too slow), never left open.
        status, _, document = _json(await exchange(port, [b"\r\n", 0.1] * 20, timeout=5))
        assert status in (400, 408) and document["error"]["code"] == status


@pytest.mark.parametrize("path,shape", [("/v1/chat/completions", "openai"), ("/v1/messages", "anthropic"),
                                        ("/v1/responses", "openai"), ("/v1beta/models", "gemini")])
@pytest_twisted.ensureDeferred
async def test_limit_refusals_take_the_doors_shape(tmp_path: Path, path: str, shape: str) -> None:
    async with start_stack(tmp_path, accounts(1), server={"max_body_bytes": 100, "max_url_bytes": 200,
                                                          "max_header_bytes": 300}) as stack:
        port = stack.port.getHost().port
        cases = [
            (413, b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" % path.encode()),
            (414, b"GET %s?%s HTTP/1.1\r\nHost: x\r\n\r\n" % (path.encode(), b"a" * 300)),
            (431, b"GET %s HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n" % (path.encode(), b"b" * 400)),
        ]
        for code, head in cases:
            status, _, document = _json(await exchange(port, [head], timeout=5))
            assert status == code, (code, document)
            if shape == "anthropic":
                assert document["type"] == "error" and document["error"]["type"] in ("request_too_large", "invalid_request_error")
                if code == 413:
                    assert document["error"]["type"] == "request_too_large"
            elif shape == "openai":
                assert {"message", "type", "param", "code"} == set(document["error"])
            else:
                assert document["error"]["code"] == code and "status" in document["error"]


@pytest_twisted.ensureDeferred
async def test_odd_targets_and_bytes_answer_json(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), auth={"mode": "all_except_health", "keys": (KEY,)}) as stack:
        port = stack.port.getHost().port
        key = KEY.encode()
        with Log() as log:
            cases = [
                (b"GET /v1beta//models HTTP/1.1\r\nHost: x\r\nx-goog-api-key: %s\r\n\r\n" % key, 404, "gemini"),
                (b"GET /v1beta/models//gemini-3-flash HTTP/1.1\r\nHost: x\r\nx-goog-api-key: %s\r\n\r\n" % key, 404, "gemini"),
                (b"POST //v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-api-key: %s\r\nContent-Length: 2\r\n\r\n{}" % key, 404, "gemini"),
                (b"GET /v1beta/%FF HTTP/1.1\r\nHost: x\r\nx-goog-api-key: " + key + b"\r\n\r\n", 400, "gemini"),
                (b"GET /v1/messages/%FF HTTP/1.1\r\nHost: x\r\nx-api-key: " + key + b"\r\n\r\n", 400, "anthropic"),
                (b"GET /v1beta/models HTTP/1.1\r\nHost: \xff\xfe\r\nx-goog-api-key: " + key + b"\r\n\r\n", 400, "gemini"),
                (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 405, "gemini"),
                (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 200, None),
                (b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 2\r\n\r\n{}" % key, 400, "openai"),
                (b"POST /v1beta/models/gemini-3-flash:countTokens HTTP/1.1\r\nHost: x\r\nx-goog-api-key: %s\r\n"
                 b"Content-Length: 2000\r\n\r\n%s" % (key, b"[" * 1000 + b"]" * 1000), 400, "gemini"),
            ]
            for head, code, shape in cases:
                head = head.replace(b"\r\n", b"\r\nConnection: close\r\n", 1)
                status, headers, document = _json(await exchange(port, [head], timeout=5))
                assert status == code, (head[:60], status, document)
                assert headers["content-type"].startswith("application/json"), head[:60]
                if shape == "anthropic":
                    assert document["type"] == "error"
                elif shape == "openai":
                    assert "type" in document["error"] and "status" not in document["error"]
                elif shape == "gemini":
                    assert document["error"]["code"] == code
            # HEAD with the key in the query: answered without a body, and no warning naming the URL.
            for path in (b"/admin/accounts", b"/healthz"):
                raw = await exchange(port, [b"HEAD %s?key=%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (path, key)], timeout=5)
                assert parse(raw)[0] == 200, raw[:200]
        assert KEY not in log.text
        assert "Traceback" not in log.text and "HEAD request" not in log.text, log.text[-2000:]
