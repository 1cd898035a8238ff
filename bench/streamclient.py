"""Stream clients for the benchmark, run as their own process (never in the driver).

``latency``: one keep-alive connection, N sequential ``streamGenerateContent
?alt=sse`` requests; for each, the time from sending the request to the first
complete event and to the end of the stream, and the event count. Blocking
sockets and ``perf_counter``: the least client overhead Python offers.

``hold``: opens N streams at once (asyncio), prints ``READY {json}`` once every
stream has delivered its first event, keeps reading (counting events) for
``--hold`` seconds, prints ``DONE {json}`` and hangs up on all of them.

Both speak just enough HTTP/1.1 (chunked or content-length bodies).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import time
from urllib.parse import urlsplit

EVENT_END = b"\r\n\r\n"


def request_bytes(host: str, port: int, path: str, body: bytes, token: str) -> bytes:
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if token:
        head.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class ChunkedBody:
    """Incremental HTTP/1.1 body decoder (chunked or Content-Length)."""

    def __init__(self, headers: bytes) -> None:
        lower = headers.lower()
        self.chunked = b"transfer-encoding: chunked" in lower
        self.remaining = -1
        if not self.chunked:
            for line in lower.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    self.remaining = int(line.split(b":", 1)[1])
        self.buf = b""
        self.chunk_left = 0
        self.done = False

    def feed(self, data: bytes) -> bytes:
        if not self.chunked:
            self.remaining -= len(data)
            if self.remaining <= 0:
                self.done = True
            return data
        self.buf += data
        out = []
        while True:
            if self.chunk_left > 0:
                take = self.buf[: self.chunk_left]
                out.append(take)
                self.buf = self.buf[len(take):]
                self.chunk_left -= len(take)
                if self.chunk_left > 0:
                    break
                continue
            if self.chunk_left == 0 and self.buf.startswith(b"\r\n"):
                self.buf = self.buf[2:]
            line_end = self.buf.find(b"\r\n")
            if line_end < 0:
                break
            size = int(self.buf[:line_end].split(b";")[0], 16)
            self.buf = self.buf[line_end + 2:]
            if size == 0:
                self.done = True
                break
            self.chunk_left = size
        return b"".join(out)


def _read_head(sock: socket.socket, pending: bytes) -> tuple[bytes, bytes]:
    while b"\r\n\r\n" not in pending:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        pending += data
    head, _, rest = pending.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if b" 200 " not in status + b" ":
        raise RuntimeError(f"stream answered {status.decode(errors='replace')}")
    return head, rest


def latency(url: str, path: str, body: bytes, token: str, count: int, warmup: int) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    message = request_bytes(host, port, path, body, token)
    first: list[float] = []
    total: list[float] = []
    events_seen: list[int] = []
    for i in range(warmup + count):
        t0 = time.perf_counter()
        sock.sendall(message)
        head, rest = _read_head(sock, b"")
        decoder = ChunkedBody(head)
        text = decoder.feed(rest)
        t_first = None
        events = 0
        while True:
            if t_first is None and EVENT_END in text:
                t_first = time.perf_counter()
            if decoder.done:
                break
            data = sock.recv(262144)
            if not data:
                raise ConnectionError("server closed the stream early")
            text += decoder.feed(data)
        t_end = time.perf_counter()
        events = text.count(EVENT_END)
        if t_first is None:
            t_first = t_end
        if i >= warmup:
            first.append((t_first - t0) * 1e6)
            total.append((t_end - t0) * 1e6)
            events_seen.append(events)
    sock.close()
    return {
        "count": count,
        "events": statistics.median(events_seen),
        "first_event_us": _summary(first),
        "total_us": _summary(total),
    }


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    return {"p50": round(pct(50), 1), "p90": round(pct(90), 1), "p99": round(pct(99), 1),
            "mean": round(statistics.fmean(ordered), 1), "min": round(ordered[0], 1)}


async def hold(url: str, path: str, body: bytes, token: str, n: int, seconds: float, open_timeout: float) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    message = request_bytes(host, port, path, body, token)
    counts = [0] * n
    started = [asyncio.get_running_loop().create_future() for _ in range(n)]
    errors: list[str] = []
    writers: list[asyncio.StreamWriter] = []

    async def one(i: int) -> None:
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writers.append(writer)
            writer.write(message)
            head = await reader.readuntil(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
                raise RuntimeError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
            tail = b""
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                window = tail + data
                counts[i] += window.count(EVENT_END) - tail.count(EVENT_END)
                tail = window[-3:]
                if counts[i] and not started[i].done():
                    started[i].set_result(None)
        except (OSError, RuntimeError, asyncio.IncompleteReadError) as e:
            errors.append(f"{type(e).__name__}: {e}")
        finally:
            if not started[i].done():
                started[i].set_result(None)

    t0 = time.monotonic()
    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    try:
        await asyncio.wait_for(asyncio.gather(*started), open_timeout)
    except asyncio.TimeoutError:
        pass
    opened = sum(1 for c in counts if c > 0)
    before = sum(counts)
    print("READY " + json.dumps({"open": opened, "errors": len(errors), "seconds_to_open": round(time.monotonic() - t0, 3),
                                 "error_sample": errors[:3]}), flush=True)
    t1 = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - t1
    after = sum(counts)
    still = sum(1 for t in tasks if not t.done())
    print("DONE " + json.dumps({"events_during_hold": after - before, "events_per_s": round((after - before) / elapsed, 1),
                                "still_open": still, "errors": len(errors), "error_sample": errors[:3]}), flush=True)
    for w in writers:
        w.transport.abort()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["latency", "hold"])
    p.add_argument("--url", required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--body", required=True, help="file with the request body")
    p.add_argument("--token", default="")
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--streams", type=int, default=1000)
    p.add_argument("--hold", type=float, default=5.0)
    p.add_argument("--open-timeout", type=float, default=60.0)
    a = p.parse_args()
    with open(a.body, "rb") as f:
        body = f.read()
    if a.mode == "latency":
        print(json.dumps(latency(a.url, a.path, body, a.token, a.count, a.warmup)))
    else:
        asyncio.run(hold(a.url, a.path, body, a.token, a.streams, a.hold, a.open_timeout))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
