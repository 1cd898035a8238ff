"""Stream framing: an incremental SSE parser, and the two writers clients expect.

Google ends each SSE event with ``\\r\\n\\r\\n`` and never sends ``[DONE]``;
without ``alt=sse`` the answer is one JSON array streamed element by element.
Must not do I/O: callers feed bytes in and write bytes out.
"""

from __future__ import annotations

import json
from typing import Any

EVENT_END = b"\r\n\r\n"


def dumps(obj: Any) -> bytes:
    """Compact one-line JSON (no newline can break an SSE ``data:`` line)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def sse_event(obj: Any) -> bytes:
    """One SSE event carrying ``obj`` as one-line JSON, ended as Google ends it."""
    return b"data: " + dumps(obj) + EVENT_END


def sse_event_raw(payload: bytes) -> bytes:
    """An SSE event around JSON that is already serialised on one line."""
    return b"data: " + payload + EVENT_END


class SSEParser:
    """Turns arbitrary network chunks into the ``data`` payloads of whole events.

    Events end at a blank line (``\\n\\n``, ``\\r\\n\\r\\n`` or ``\\r\\r``); multi-line
    ``data:`` fields are joined with ``\\n``; comments and other fields are
    ignored. Buffers at most one partial event.
    """

    def __init__(self, max_event_bytes: int = 16 * 1024 * 1024) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> list[bytes]:
        """Consume ``chunk``; return the data of every event it completed."""
        self._buffer += chunk
        events: list[bytes] = []
        while True:
            line, sep, rest = self._next_line(self._buffer)
            if not sep:
                break
            self._buffer = rest
            self._line(line, events)
        if len(self._buffer) > self._max:
            raise ValueError("SSE event larger than the configured limit")
        return events

    def close(self) -> list[bytes]:
        """End of stream: an event left without its blank line still counts."""
        events: list[bytes] = []
        if self._buffer:
            self._line(self._buffer, events)
            self._buffer = b""
        self._line(b"", events)
        return events

    @staticmethod
    def _next_line(buffer: bytes) -> tuple[bytes, bool, bytes]:
        cr = buffer.find(b"\r")
        lf = buffer.find(b"\n")
        if cr == -1 and lf == -1:
            return b"", False, buffer
        if cr == -1 or (lf != -1 and lf < cr):
            return buffer[:lf], True, buffer[lf + 1 :]
        # A lone \r at the very end may be the first half of \r\n: wait for more.
        if cr == len(buffer) - 1:
            return b"", False, buffer
        if buffer[cr + 1 : cr + 2] == b"\n":
            return buffer[:cr], True, buffer[cr + 2 :]
        return buffer[:cr], True, buffer[cr + 1 :]

    def _line(self, line: bytes, events: list[bytes]) -> None:
        if not line:
            if self._data:
                events.append(b"\n".join(self._data))
                self._data = []
            return
        if line.startswith(b":"):
            return
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            self._data.append(value)


class JSONArrayWriter:
    """Writes stream elements as one JSON array: ``[`` a ``,`` b … ``]``.

    Google's non-SSE stream; google-generativeai's REST transport parses it
    incrementally, so each element is emitted as soon as it exists.
    """

    def __init__(self) -> None:
        self._started = False
        self.closed = False

    def element(self, payload: bytes) -> bytes:
        """Bytes that add one already-serialised JSON element to the array."""
        if self._started:
            return b",\r\n" + payload
        self._started = True
        return b"[" + payload

    def end(self) -> bytes:
        """Bytes that close the array (an empty stream is ``[]``)."""
        self.closed = True
        if self._started:
            return b"]"
        self._started = True
        return b"[]"
