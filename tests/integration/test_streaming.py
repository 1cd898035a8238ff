"""Streaming mechanics over real sockets: mid-stream failures, stalls, disconnects, backpressure."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from tests.integration.harness import accounts, body_json, channel_transport, start_stack

SSE = "/v1beta/models/gemini-3-flash:streamGenerateContent?alt=sse"
ARRAY = "/v1beta/models/gemini-3-flash:streamGenerateContent"


def ask(text: str) -> dict:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def sse_events(raw: bytes) -> list[dict]:
    assert raw.endswith(b"\r\n\r\n")
    return [json.loads(e[len(b"data: "):]) for e in raw.split(b"\r\n\r\n") if e]


async def sleep(seconds: float) -> None:
    await deferLater(reactor, seconds, lambda: None)


@pytest_twisted.ensureDeferred
async def test_upstream_cut_mid_stream_ends_with_an_error_event(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        stack.emulator.state.add_fault({"method": "streamGenerateContent", "kind": "cut", "after_events": 2})
        response = await stack.post(SSE, ask("stream 6 events"))
        events = sse_events(await treq.content(response))
        assert response.code == 200
        assert [("candidates" in e) for e in events] == [True, True, False]
        assert events[-1]["error"]["code"] == 503 and events[-1]["error"]["status"] == "UNAVAILABLE"


@pytest_twisted.ensureDeferred
async def test_upstream_stall_hits_the_idle_timeout(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), upstream={"stream_idle_timeout": 0.3}) as stack:
        stack.emulator.state.add_fault({"method": "streamGenerateContent", "kind": "stall", "after_events": 1})
        started = reactor.seconds()
        response = await stack.post(SSE, ask("stream 6 events"))
        events = sse_events(await treq.content(response))
        assert 0.25 < reactor.seconds() - started < 5
        assert "candidates" in events[0]
        assert events[-1]["error"]["status"] == "DEADLINE_EXCEEDED" and events[-1]["error"]["code"] == 504
        assert len(events) == 2


@pytest_twisted.ensureDeferred
async def test_upstream_error_event_passes_through_as_google_sends_it(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        stack.emulator.state.add_fault({"method": "streamGenerateContent", "kind": "stream_error", "after_events": 2, "status": 503})
        response = await stack.post(SSE, ask("stream 5 events"))
        events = sse_events(await treq.content(response))
        assert len(events) == 3 and events[-1]["error"]["code"] == 503


@pytest_twisted.ensureDeferred
async def test_json_array_stream_stays_valid_json_after_a_cut(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        stack.emulator.state.add_fault({"method": "streamGenerateContent", "kind": "cut", "after_events": 2})
        response = await stack.post(ARRAY, ask("stream 6 events"))
        elements = json.loads(await treq.content(response))
        assert len(elements) == 3 and elements[-1]["error"]["code"] == 503


@pytest_twisted.ensureDeferred
async def test_stream_errors_before_the_first_byte_keep_their_status(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        stack.emulator.state.add_fault({"method": "streamGenerateContent", "status": 400, "message": "bad field"})
        response = await stack.post(SSE, ask("stream 3 events"))
        error = (await body_json(response))["error"]
        assert response.code == 400 and error["status"] == "INVALID_ARGUMENT"


@pytest_twisted.ensureDeferred
async def test_events_are_forwarded_as_they_arrive(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), emulator_settings={"event_delay": 0.25}) as stack:
        response = await stack.post(SSE, ask("stream 3 events"), unbuffered=True)
        arrivals: list[float] = []
        await treq.collect(response, lambda chunk: arrivals.append(reactor.seconds()))
        # three events spaced ~0.25 s apart upstream arrive spaced apart here too
        assert len(arrivals) >= 3
        assert arrivals[-1] - arrivals[0] > 0.4


def _read_one_event_then_hang_up(port: int, path: str, body: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(
            b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        data = b""
        while b"\r\n\r\n" not in data.split(b"\r\n\r\n", 1)[-1]:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


@pytest_twisted.ensureDeferred
async def test_client_hang_up_aborts_the_upstream_stream(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), emulator_settings={"event_delay": 0.05}) as stack:
        port = stack.port.getHost().port
        body = json.dumps(ask("stream 60 events")).encode()
        head = await deferToThread(_read_one_event_then_hang_up, port, SSE, body)
        assert b"data: " in head
        for _ in range(40):
            if stack.emulator.state.stats.open_streams == 0:
                break
            await sleep(0.05)
        stats = stack.emulator.state.stats
        assert stats.open_streams == 0
        assert stats.disconnects == 1
        assert stats.stream_events < 30


class Flood(Resource):
    """An upstream that writes SSE as fast as it can, ignoring backpressure."""

    isLeaf = True

    def __init__(self, total: int, event_size: int) -> None:
        super().__init__()
        self.total = total
        self.event = b"data: " + json.dumps({"response": {"candidates": [{"content": {"parts": [{"text": "x" * event_size}]}}]}}).encode() + b"\r\n\r\n"
        self.written = 0
        self.requests: list = []

    def render_POST(self, request):  # type: ignore[no-untyped-def]
        request.setHeader(b"Content-Type", b"text/event-stream")
        self.requests.append(request)
        self._pump(request)
        return NOT_DONE_YET

    def _pump(self, request) -> None:  # type: ignore[no-untyped-def]
        if request.finished or request._disconnected:
            return
        for _ in range(16):
            request.write(self.event)
            self.written += len(self.event)
        if self.written >= self.total:
            request.finish()
            return
        reactor.callLater(0, self._pump, request)


def _send_and_stall(port: int, path: str, body: bytes, hold: float) -> None:
    import time

    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.connect(("127.0.0.1", port))
    s.sendall(
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    time.sleep(hold)
    s.close()


@pytest_twisted.ensureDeferred
async def test_a_client_that_stops_reading_pauses_the_upstream(tmp_path: Path) -> None:
    flood = Flood(total=64 * 1024 * 1024, event_size=32 * 1024)
    upstream = reactor.listenTCP(0, Site(flood), interface="127.0.0.1")
    store = [{"email": "user0@example.com", "refresh_token": "1//refresh-0", "project_id": "project-0"}]
    try:
        async with start_stack(tmp_path, accounts(1), store_accounts=store) as stack:
            await stack.gateway.forwarder.catalogue.snapshot()  # the model list comes from the emulator, the flood after
            stack.gateway.forwarder.client.hosts = (f"http://127.0.0.1:{upstream.getHost().port}",)
            port = stack.port.getHost().port
            stalled = deferToThread(_send_and_stall, port, SSE, json.dumps(ask("flood")).encode(), 1.5)
            await sleep(1.0)
            [channel] = [p for p in stack.port.factory._open]
            transport = channel_transport(channel)
            buffered_to_client = len(transport.dataBuffer) + transport._tempDataLen
            # The upstream pushed 64 MiB as fast as it could; the gateway holds only a bounded
            # amount, because it stopped reading upstream (the rest waits in the upstream's buffers).
            assert flood.written > 8 * 1024 * 1024
            assert buffered_to_client < 8 * 1024 * 1024
            upstream_request = flood.requests[0]
            upstream_pending = len(upstream_request.transport.dataBuffer) + upstream_request.transport._tempDataLen
            assert upstream_pending > 8 * 1024 * 1024
            await stalled
            for _ in range(40):
                if not upstream_request.transport.connected:
                    break
                await sleep(0.05)
            assert not upstream_request.transport.connected, "client hang-up did not abort the upstream request"
    finally:
        await upstream.stopListening()
        for request in flood.requests:
            if request.transport.connected:
                request.transport.abortConnection()
        await sleep(0.05)
