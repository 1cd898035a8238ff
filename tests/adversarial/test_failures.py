"""A resource that raises: a JSON 500 in the door's shape, and a log entry without the secret it held."""

from __future__ import annotations

import json
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.web.resource import Resource

from gateway.web.site import GatewaySite
from tests.adversarial.test_heads import Log, _json
from tests.integration.rawhttp import exchange

SECRET = "sk-raised-00112233445566778899"


class Broken(Resource):
    isLeaf = True

    def render(self, request: Any) -> bytes:
        raise RuntimeError(f"failed calling http://internal/x?key={SECRET} with Authorization: Bearer {SECRET}")


@pytest_twisted.ensureDeferred
async def test_a_raising_resource_answers_json_and_logs_no_secret() -> None:
    site = GatewaySite(Broken(), 1024, reactor=reactor)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    try:
        with Log() as log:
            for path, check in ((b"/v1/messages", lambda d: d["type"] == "error" and d["error"]["type"] == "api_error"),
                                (b"/v1beta/models", lambda d: d["error"]["status"] == "INTERNAL"),
                                (b"/v1/chat/completions", lambda d: d["error"]["type"] == "server_error")):
                raw = await exchange(port.getHost().port, [b"GET %s?key=%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                                                           % (path, SECRET.encode())], timeout=5)
                status, headers, document = _json(raw)
                assert status == 500 and headers["content-type"].startswith("application/json") and check(document), document
        assert "RuntimeError" in log.text and "Traceback" in log.text  # the bug is still visible…
        assert SECRET not in log.text  # …without the secret it carried
    finally:
        await port.stopListening()
