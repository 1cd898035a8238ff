"""Stream framing: an incremental SSE parser, and the two writers clients expect.

Google ends each SSE event with ``\\r\\n\\r\\n`` and never sends ``[DONE]``;
without ``alt=sse`` the answer is one JSON array streamed element by element.
Must not do I/O: callers feed bytes in and write bytes out.
"""

from __future__ import annotations

import json
from json.encoder import c_make_encoder, encode_basestring, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, Callable

EVENT_END = b"\r\n\r\n"


def compact_encoder(*, ensure_ascii: bool, sort_keys: bool = False,
                    default: Callable[[Any], Any] | None = None) -> Callable[[Any], str]:
    """``JSONEncoder(separators=(",", ":"), ensure_ascii=…, sort_keys=…, default=…).encode``, set up once.

    ``JSONEncoder.encode`` builds json's C encoder again on every call, with
    a registry of every list and dict it enters to detect cycles. The JSON
    the gateway writes is a tree (parsed, or built fresh by a translator), so
    one C encoder without that registry serves every call and writes the
    same text; only a cyclic structure, which cannot occur here, would raise
    RecursionError instead of ValueError.
    """
    plain = json.JSONEncoder(separators=(",", ":"), ensure_ascii=ensure_ascii, sort_keys=sort_keys, default=default)
    if c_make_encoder is None:  # no C accelerator (not CPython): the plain encoder
        return plain.encode
    strings = encode_basestring_ascii if ensure_ascii else encode_basestring
    encoder = c_make_encoder(None, plain.default, strings, None, ":", ",", sort_keys, False, True)
    join = "".join

    def encode(obj: Any) -> str:
        return join(encoder(obj, 0))

    return encode


_compact_utf8 = compact_encoder(ensure_ascii=False)
_compact_ascii = compact_encoder(ensure_ascii=True)
_DECODER = json.JSONDecoder()
_JSON_WHITESPACE = " \t\n\r"


def dumps(obj: Any) -> bytes:
    """Compact one-line JSON (no newline can break an SSE ``data:`` line).

    UTF-8 as is; a string holding a lone surrogate (valid JSON ``\\ud800``
    that cannot be UTF-8) falls back to ASCII escapes instead of raising.
    """
    try:
        return _compact_utf8(obj).encode()
    except UnicodeEncodeError:
        return _compact_ascii(obj).encode("ascii")


def loads(raw: bytes) -> Any:
    """``json.loads(raw)``: the same value or the same error, cheaper for the usual UTF-8 body.

    ``json.loads`` of bytes first guesses the encoding (UTF-8/16/32, BOM) in
    Python on every call; UTF-8 without a BOM is decoded straight away here,
    and anything that does not parse that way goes to ``json.loads`` itself,
    which then answers (or raises) exactly as before.
    """
    try:
        text = raw.decode("utf-8")
        value, end = _DECODER.raw_decode(text)  # the document must start at once (else: json.loads below)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError both
        return json.loads(raw)
    if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
        return json.loads(raw)  # "Extra data", worded by json.loads
    return value


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
    ignored; a UTF-8 BOM opening the stream is dropped. Buffers at most one
    partial event (``max_event_bytes``, ValueError beyond). Work per chunk is
    linear in the chunk: the buffer is never rescanned from its start.
    """

    def __init__(self, max_event_bytes: int = 16 * 1024 * 1024) -> None:
        self._buffer = bytearray()
        self._scanned = 0  # bytes of _buffer known to hold no line end
        self._data: list[bytes] = []
        self._data_size = 0
        self._max = max_event_bytes
        self._started = False

    def feed(self, chunk: bytes) -> list[bytes]:
        """Consume ``chunk``; return the data of every event it completed."""
        buffer = self._buffer
        buffer += chunk
        if not self._started:
            if len(buffer) < 3 and b"\xef\xbb\xbf".startswith(bytes(buffer)):
                return []
            self._started = True
            if buffer.startswith(b"\xef\xbb\xbf"):
                del buffer[:3]
        events: list[bytes] = []
        pos = 0
        size = len(buffer)
        cr = buffer.find(b"\r", self._scanned)
        lf = buffer.find(b"\n", self._scanned)
        while True:
            if cr != -1 and cr < pos:
                cr = buffer.find(b"\r", pos)
            if lf != -1 and lf < pos:
                lf = buffer.find(b"\n", pos)
            if cr == -1 and lf == -1:
                break
            if cr == -1 or (lf != -1 and lf < cr):
                line_end, pos_next = lf, lf + 1
            elif cr == size - 1:
                break  # a lone \r at the very end may be the first half of \r\n: wait for more
            elif buffer[cr + 1] == 0x0A:
                line_end, pos_next = cr, cr + 2
            else:
                line_end, pos_next = cr, cr + 1
            self._line(bytes(buffer[pos:line_end]), events)
            pos = pos_next
        if pos:
            del buffer[:pos]
        self._scanned = len(buffer) - 1 if buffer.endswith(b"\r") else len(buffer)
        if len(buffer) + self._data_size > self._max:
            raise ValueError("SSE event larger than the configured limit")
        return events

    def close(self) -> list[bytes]:
        """End of stream: an event left without its blank line still counts."""
        events: list[bytes] = []
        rest = bytes(self._buffer)
        if not self._started and rest == b"\xef\xbb\xbf"[: len(rest)]:
            rest = b""
        if rest.endswith(b"\r"):
            rest = rest[:-1]
        if rest:
            self._line(rest, events)
        self._buffer = bytearray()
        self._scanned = 0
        self._line(b"", events)
        return events

    def _line(self, line: bytes, events: list[bytes]) -> None:
        if not line:
            if self._data:
                events.append(b"\n".join(self._data))
                self._data = []
                self._data_size = 0
            return
        if line.startswith(b":"):
            return
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            self._data.append(value)
            self._data_size += len(value) + 1


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
        if self.closed:
            raise ValueError("JSON array already ended")
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
