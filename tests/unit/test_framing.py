"""SSE parsing at every chunk boundary, and the two stream writers, to the byte."""

from __future__ import annotations

import json

import pytest

from gateway.protocol.framing import EVENT_END, JSONArrayWriter, SSEParser, dumps, sse_event, sse_event_raw

# A stream exercising every rule: CRLF, LF and CR line ends, multi-line data,
# comments, other fields, a field without a space after the colon, an empty
# data line, and non-ASCII text split across chunks.
STREAM = (
    b": keep-alive comment\r\n"
    b'data: {"response":{"n":1}}\r\n\r\n'
    b"event: message\n"
    b"id: 7\n"
    b'data: {"n":2,\n'
    b'data: "t":"h\xc3\xa9"}\n\n'
    b"data:no-space\r\r"
    b"data\n\n"
    b"retry: 1000\r\n"
    b"data: last\r\n\r\n"
)
EXPECTED = [
    b'{"response":{"n":1}}',
    b'{"n":2,\n"t":"h\xc3\xa9"}',
    b"no-space",
    b"",
    b"last",
]


def parse_all(chunks: list[bytes]) -> list[bytes]:
    parser = SSEParser()
    events: list[bytes] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.close())
    return events


def test_whole_stream_in_one_chunk() -> None:
    assert parse_all([STREAM]) == EXPECTED


def test_byte_by_byte() -> None:
    assert parse_all([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@pytest.mark.parametrize("split", range(1, len(STREAM)))
def test_every_split_point(split: int) -> None:
    assert parse_all([STREAM[:split], STREAM[split:]]) == EXPECTED


def test_every_pair_of_split_points_on_crlf_events() -> None:
    stream = b"data: a\r\n\r\ndata: b\r\ndata: c\r\n\r\n"
    for i in range(len(stream) + 1):
        for j in range(i, len(stream) + 1):
            assert parse_all([stream[:i], stream[i:j], stream[j:]]) == [b"a", b"b\nc"], (i, j)


def test_events_are_returned_as_soon_as_complete() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: one\r\n") == []
    assert parser.feed(b"\r\n") == [b"one"]
    assert parser.feed(b"data: two\n\ndata: three\n\n") == [b"two", b"three"]


def test_cr_at_chunk_end_waits_for_possible_lf() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    # \n completes the CRLF: one line end, not two, so no event yet.
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\r\n") == [b"a"]


def test_lone_cr_line_ends() -> None:
    assert parse_all([b"data: a\rdata: b\r\rdata: c\r\r"]) == [b"a\nb", b"c"]


@pytest.mark.parametrize("end", [b"\n\n", b"\r\n\r\n", b"\r\r"])
def test_each_blank_line_style_ends_an_event(end: bytes) -> None:
    parser = SSEParser()
    events = parser.feed(b"data: x" + end + b"data: y" + end)
    events += parser.feed(b"")  # a trailing lone \r may wait for the next chunk
    events += parser.close()
    assert events == [b"x", b"y"]


def test_comments_and_other_fields_are_ignored() -> None:
    assert parse_all([b": ping\n\nevent: x\nid: 1\nretry: 5\n\n"]) == []


def test_only_one_leading_space_is_stripped() -> None:
    assert parse_all([b"data:  two spaces\n\n"]) == [b" two spaces"]


def test_colon_inside_value_is_kept() -> None:
    assert parse_all([b'data: {"a":"b:c"}\n\n']) == [b'{"a":"b:c"}']


def test_close_flushes_event_without_blank_line() -> None:
    assert parse_all([b"data: tail"]) == [b"tail"]
    assert parse_all([b"data: tail\n"]) == [b"tail"]
    assert parse_all([b"data: tail\r\n"]) == [b"tail"]


def test_close_does_not_keep_a_trailing_cr_in_the_data() -> None:
    assert parse_all([b"data: tail\r"]) == [b"tail"]


def test_close_on_empty_stream() -> None:
    assert parse_all([]) == []
    assert parse_all([b""]) == []


def test_leading_bom_is_dropped_even_when_split() -> None:
    stream = b"\xef\xbb\xbfdata: a\n\n"
    for split in range(len(stream) + 1):
        assert parse_all([stream[:split], stream[split:]]) == [b"a"], split


def test_bom_later_in_stream_is_data() -> None:
    assert parse_all([b"data: a\n\ndata: \xef\xbb\xbfb\n\n"]) == [b"a", b"\xef\xbb\xbfb"]


def test_oversized_partial_line_raises() -> None:
    parser = SSEParser(max_event_bytes=16)
    with pytest.raises(ValueError):
        parser.feed(b"data: " + b"x" * 32)


def test_oversized_event_of_many_lines_raises() -> None:
    parser = SSEParser(max_event_bytes=32)
    with pytest.raises(ValueError):
        for _ in range(20):
            parser.feed(b"data: 0123456789\n")


def test_limit_counts_one_event_not_the_stream() -> None:
    parser = SSEParser(max_event_bytes=32)
    for _ in range(100):
        assert parser.feed(b"data: 0123456789\n\n") == [b"0123456789"]


def test_large_event_fed_in_small_chunks_stays_correct() -> None:
    payload = json.dumps({"text": "z" * 100_000}).encode()
    stream = b"data: " + payload + b"\r\n\r\n"
    chunks = [stream[i : i + 7] for i in range(0, len(stream), 7)]
    assert parse_all(chunks) == [payload]


def test_dumps_is_compact_utf8_one_line() -> None:
    assert dumps({"a": [1, 2], "t": "é\nx"}) == '{"a":[1,2],"t":"é\\nx"}'.encode()


def test_dumps_escapes_lone_surrogates_instead_of_failing() -> None:
    out = dumps({"t": "\ud800"})
    assert out == b'{"t":"\\ud800"}'
    assert json.loads(out) == {"t": "\ud800"}


def test_sse_event_matches_google_framing() -> None:
    assert sse_event({"a": 1}) == b'data: {"a":1}\r\n\r\n'
    assert sse_event_raw(b'{"b":2}') == b'data: {"b":2}\r\n\r\n'
    assert EVENT_END == b"\r\n\r\n"


def test_sse_writer_round_trips_through_parser() -> None:
    objs = [{"i": i, "t": "line1\nline2"} for i in range(3)]
    stream = b"".join(sse_event(o) for o in objs)
    assert [json.loads(e) for e in parse_all([stream])] == objs


def test_json_array_writer_empty() -> None:
    writer = JSONArrayWriter()
    assert writer.end() == b"[]"
    assert writer.closed


def test_json_array_writer_one() -> None:
    writer = JSONArrayWriter()
    out = writer.element(b'{"a":1}') + writer.end()
    assert out == b'[{"a":1}]'
    assert json.loads(out) == [{"a": 1}]


def test_json_array_writer_many() -> None:
    writer = JSONArrayWriter()
    parts = [writer.element(dumps({"i": i})) for i in range(3)]
    assert parts[0] == b'[{"i":0}'
    assert parts[1].startswith(b",")
    out = b"".join(parts) + writer.end()
    assert json.loads(out) == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_json_array_writer_refuses_elements_after_end() -> None:
    writer = JSONArrayWriter()
    writer.end()
    with pytest.raises(ValueError):
        writer.element(b"{}")
