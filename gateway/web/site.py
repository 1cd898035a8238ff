"""The Site and Request subclasses: limits checked before buffering, request ids.

twisted.web buffers a whole body before ``render`` and has no size limit, so
the limit is enforced here as headers and chunks arrive: an oversized body is
answered 413 at once and the connection closed, without reading the rest.
"""

from __future__ import annotations

import io
import re
import uuid
from typing import Any

from twisted.web.server import Request, Site

from gateway.protocol.errors import error_body

REQUEST_ID = b"x-request-id"
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")


class _Discard(io.RawIOBase):
    def write(self, data: Any) -> int:
        return len(data)


class GatewayRequest(Request):
    max_body_bytes: int = 32 * 1024 * 1024
    _received = 0
    _rejected = False
    request_id = ""

    def gotLength(self, length: int | None) -> None:
        limit = self.max_body_bytes = getattr(self.channel.site, "max_body_bytes", self.max_body_bytes)
        if length is not None and length > limit:
            self._reject_too_large()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._rejected:
            return
        self._received += len(data)
        if self._received > self.max_body_bytes:
            self._reject_too_large()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._rejected:
            return
        super().requestReceived(command, path, version)

    def process(self) -> None:
        incoming = self.requestHeaders.getRawHeaders(REQUEST_ID)
        rid = incoming[-1] if incoming and _SAFE_ID.match(incoming[-1]) else uuid.uuid4().hex.encode()
        self.request_id = rid.decode()
        self.responseHeaders.setRawHeaders(REQUEST_ID, [rid])
        super().process()

    def _reject_too_large(self) -> None:
        """Answer 413 straight on the transport; the body is never read."""
        self._rejected = True
        self.content = _Discard()
        body = error_body(
            413,
            f"Request body is larger than the gateway's limit of {self.max_body_bytes} bytes "
            "([server] max_body_bytes). Send a smaller request.",
        )
        head = (
            b"HTTP/1.1 413 Request Entity Too Large\r\n"
            b"Content-Type: application/json; charset=UTF-8\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n"
            b"Connection: close\r\n\r\n"
        )
        self.channel.transport.write(head + body)
        self.channel.transport.loseConnection()


class GatewaySite(Site):
    requestFactory = GatewayRequest

    def __init__(self, resource: Any, max_body_bytes: int, **kwargs: Any) -> None:
        super().__init__(resource, **kwargs)
        self.max_body_bytes = max_body_bytes
        self.displayTracebacks = False

    def log(self, request: Any) -> None:
        """No combined-log lines: their URLs can carry ``?key=`` secrets."""
