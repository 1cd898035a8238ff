"""The fault matrix: each upstream fault on each door ends in bounded time with the right status.

Every door (Gemini JSON and SSE, OpenAI and Anthropic, streamed and not) meets
the same faults, fired at once for one fault: stalls before and after the
headers, a cut body, a body trickling bytes, malformed JSON, a lone surrogate,
an answer too large to buffer, a 401 that survives the refresh, a slow token
endpoint. Deadlines are short here so the whole matrix takes a few seconds;
the bound asserted is generous (a hang would hit it, scheduling noise would not).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet.defer import gatherResults

from tests.integration.harness import accounts, start_stack

TEXT = [{"role": "user", "parts": [{"text": "hello"}]}]
DOORS: dict[str, tuple[str, Any, bool]] = {
    "gemini": ("/v1beta/models/gemini-3-flash:generateContent", {"contents": TEXT}, False),
    "gemini-sse": ("/v1beta/models/gemini-3-flash:streamGenerateContent?alt=sse", {"contents": TEXT}, True),
    "openai": ("/v1/chat/completions", {"model": "gemini-3-flash", "messages": [{"role": "user", "content": "hi"}]}, False),
    "openai-stream": ("/v1/chat/completions", {"model": "gemini-3-flash", "stream": True,
                                               "messages": [{"role": "user", "content": "hi"}]}, True),
    "anthropic": ("/v1/messages", {"model": "claude-sonnet-4-6", "max_tokens": 64,
                                   "messages": [{"role": "user", "content": "hi"}]}, False),
    "anthropic-stream": ("/v1/messages", {"model": "claude-sonnet-4-6", "max_tokens": 64, "stream": True,
                                          "messages": [{"role": "user", "content": "hi"}]}, True),
}
#: Generous: the slowest fault here needs about 2 s; a hang or multiplied timeouts would take far longer.
BOUND = 12.0
SETTINGS = dict(
    upstream={"response_timeout": 0.6, "body_timeout": 0.4, "request_timeout": 2.5, "token_timeout": 0.5,
              "stream_idle_timeout": 0.6, "max_answer_bytes": 64 * 1024, "max_attempts": 2},
)


def door_shaped(door: str, document: Any) -> bool:
    """Whether ``document`` is an error in the shape ``door``'s clients parse."""
    if not isinstance(document, dict):
        return False
    error = document.get("error")
    if door.startswith("anthropic"):
        return document.get("type") == "error" and isinstance(error, dict) and {"type", "message"} <= set(error)
    if door.startswith("openai"):
        return isinstance(error, dict) and {"message", "type"} <= set(error)
    return isinstance(error, dict) and {"code", "message", "status"} <= set(error)


async def _ask(stack: Any, door: str) -> tuple[int, bytes, float]:
    path, body, _ = DOORS[door]
    started = time.monotonic()
    response = await stack.post(path, body)
    raw = await treq.content(response)
    return response.code, raw, time.monotonic() - started


async def _all_doors(stack: Any) -> dict[str, tuple[int, bytes, float]]:
    names = list(DOORS)
    results = await gatherResults([_deferred(_ask(stack, d)) for d in names])
    return dict(zip(names, results))


def _deferred(coroutine: Any) -> Any:
    from twisted.internet.defer import Deferred

    return Deferred.fromCoroutine(coroutine)


def _stream_failed(raw: bytes) -> bool:
    """A stream that reports an error event (its 200 was already sent)."""
    return b"error" in raw


#: fault name -> (emulator faults, expected outcome for non-streamed doors, for streamed doors)
#: Outcomes: a status, or "stream-error" (HTTP 200 with an error event, or a door-shaped 5xx before it).
MATRIX: dict[str, tuple[list[dict[str, Any]], Any, Any]] = {
    "stall before headers": (
        [{"method": m, "kind": "delay", "seconds": 3, "times": -1} for m in ("generateContent", "streamGenerateContent")],
        {503, 504}, {503, 504}),
    "stall after headers": (
        [{"method": "generateContent", "kind": "stall_body", "times": -1},
         {"method": "streamGenerateContent", "kind": "stall", "after_events": 0, "times": -1}],
        {502}, "stream-error"),
    "cut body": (
        [{"method": "generateContent", "kind": "cut_body", "times": -1},
         {"method": "streamGenerateContent", "kind": "cut", "after_events": 1, "times": -1}],
        {502}, "stream-error"),
    "trickling bytes": (
        [{"method": m, "kind": "trickle", "seconds": 0.05, "times": -1} for m in ("generateContent", "streamGenerateContent")],
        {502, 504}, "stream-error"),
    "malformed JSON": (
        [{"method": "generateContent", "kind": "error", "status": 200, "body": "{not json", "times": -1},
         {"method": "streamGenerateContent", "kind": "stream_error", "status": 200, "body": "{not json", "after_events": 1,
          "times": -1}],
        {503}, "stream-error"),
    "huge answer": (
        [{"method": "generateContent", "kind": "huge", "size": 256 * 1024, "times": -1}],
        {502}, {200}),
    "401 surviving refresh": (
        [{"method": m, "kind": "error", "status": 401, "times": -1} for m in ("generateContent", "streamGenerateContent")],
        {503}, {503}),
}


@pytest.mark.parametrize("name", list(MATRIX))
@pytest_twisted.ensureDeferred
async def test_fault_on_every_door(tmp_path: Path, name: str) -> None:
    faults, plain, streamed = MATRIX[name]
    async with start_stack(tmp_path, accounts(2), **SETTINGS) as stack:
        for fault in faults:
            stack.emulator.state.add_fault(fault)
        results = await _all_doors(stack)
        stack.emulator.state.faults.clear()
    for door, (code, raw, seconds) in results.items():
        expected = streamed if DOORS[door][2] else plain
        assert seconds < BOUND, f"{name} on {door} took {seconds:.1f} s"
        assert code != 500 and b"Traceback" not in raw, (name, door, code, raw[:300])
        assert b"Internal gateway error" not in raw, (name, door, raw[:300])
        if expected == "stream-error":
            if code == 200:
                assert _stream_failed(raw), (name, door, raw[:300])
            else:
                assert code in (502, 503, 504) and door_shaped(door, json.loads(raw)), (name, door, code, raw[:300])
            continue
        assert code in expected, (name, door, code, raw[:300])
        if code >= 400:
            document = json.loads(raw)
            assert door_shaped(door, document), (name, door, raw[:300])
            if name == "401 surviving refresh":
                assert "re-authorise" in raw.decode() and "authentication_error" not in raw.decode()


@pytest_twisted.ensureDeferred
async def test_a_lone_surrogate_from_upstream_is_valid_utf8_on_every_door(tmp_path: Path) -> None:
    lone = '{"response":{"candidates":[{"content":{"role":"model","parts":[{"text":"\\ud800x"}]},"finishReason":"STOP"}]}}'
    async with start_stack(tmp_path, accounts(1)) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "kind": "error", "status": 200, "body": lone, "times": -1})
        stack.emulator.state.add_fault({"method": "streamGenerateContent", "kind": "stream_error", "status": 200,
                                        "body": lone[:-1] + "}", "after_events": 0, "times": -1})
        results = await _all_doors(stack)
    for door, (code, raw, _) in results.items():
        assert code == 200, (door, code, raw[:300])
        raw.decode("utf-8")  # strict: no invalid UTF-8 anywhere in the answer


@pytest_twisted.ensureDeferred
async def test_a_token_endpoint_stalling_mid_body_does_not_wedge_the_account(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), **SETTINGS) as stack:
        stack.emulator.state.add_fault({"method": "token", "kind": "stall_body", "times": 1})
        code, raw, seconds = await _ask(stack, "gemini")
        assert stack.emulator.state.stats.faults_fired == 1  # the stalled refresh happened
        # Bounded either way. The stall may hit the catalogue poll that resolves the model (then
        # this request's own refresh starts afresh and succeeds) or this request's refresh (a 503).
        assert seconds < BOUND and code in (200, 503), (code, raw)
        if code == 503:
            assert "Could not prepare a pool account" in json.loads(raw)["error"]["message"]
        # The endpoint recovered: the next request refreshes afresh instead of waiting on the stuck one.
        code, raw, _ = await _ask(stack, "anthropic")
        assert code == 200, raw


@pytest_twisted.ensureDeferred
async def test_a_slow_token_endpoint_is_bounded_on_every_door(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(2), **SETTINGS) as stack:
        stack.emulator.state.add_fault({"method": "token", "kind": "delay", "seconds": 2, "times": -1})
        results = await _all_doors(stack)
        stack.emulator.state.faults.clear()
    for door, (code, raw, seconds) in results.items():
        assert code == 503 and seconds < BOUND and door_shaped(door, json.loads(raw)), (door, code, raw[:300])


@pytest_twisted.ensureDeferred
async def test_timeouts_do_not_multiply(tmp_path: Path) -> None:
    """A response_timeout cancel is a timeout, not a stale pooled connection: one send per host and account,
    and the overall deadline caps the whole chain however many hosts and accounts there are."""
    async with start_stack(tmp_path, accounts(3), hosts=("a", "b"),
                           upstream={"response_timeout": 0.4, "request_timeout": 1.0, "max_attempts": 3}) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "kind": "delay", "seconds": 2, "times": -1})
        code, raw, seconds = await _ask(stack, "gemini")
        stack.emulator.state.faults.clear()
        sent = len(stack.emulator.state.requests("generateContent"))
    # 3 accounts x 2 hosts x 0.4 s would be 2.4 s; the overall deadline ends it at 1 s.
    assert code == 504 and "request_timeout" in json.loads(raw)["error"]["message"], raw
    assert seconds < BOUND
    assert sent <= 3, sent  # 1 s / 0.4 s per send: never a second send of a timed-out attempt to the same host


RESPONSES = ("/v1/responses", {"model": "gemini-3-flash", "input": "hi"}, False)


@pytest.mark.parametrize("door", ["gemini", "openai", "anthropic", "responses"])
@pytest_twisted.ensureDeferred
async def test_the_overall_deadline_ends_a_request_on_every_door_in_its_shape(tmp_path: Path, door: str) -> None:
    """Each door's handler is cancelled by the overall deadline itself (no Deferred layer of its own):
    a 504 naming request_timeout, in the door's shape, after about request_timeout, and the account
    is free again for the next request."""

    async def ask(stack: Any) -> tuple[int, bytes, float]:
        if door != "responses":
            return await _ask(stack, door)
        started = time.monotonic()
        response = await stack.post(RESPONSES[0], RESPONSES[1])
        return response.code, await treq.content(response), time.monotonic() - started

    async with start_stack(tmp_path, accounts(1), upstream={"response_timeout": 5.0, "request_timeout": 0.8,
                                                           "max_attempts": 1}) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "kind": "delay", "seconds": 3, "times": 1})
        code, raw, seconds = await ask(stack)
        again, raw_again, _ = await ask(stack)
    document = json.loads(raw)
    shape = "openai" if door == "responses" else door
    assert code == 504 and door_shaped(shape, document) and "request_timeout" in raw.decode(), raw
    assert 0.7 < seconds < BOUND
    assert again == 200, raw_again  # the cancelled attempt released its account


@pytest_twisted.ensureDeferred
async def test_a_timed_out_attempt_is_not_resent_as_a_stale_connection(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), hosts=("a", "b"),
                           upstream={"response_timeout": 0.3, "request_timeout": 10.0, "max_attempts": 1}) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "kind": "delay", "seconds": 2, "times": -1})
        code, raw, _ = await _ask(stack, "gemini")
        stack.emulator.state.faults.clear()
        hosts = [r.get("host") for r in stack.emulator.state.requests("generateContent")]
    assert code == 503, raw
    assert sorted(hosts) == ["a", "b"], hosts  # one send per host: the cancel was not taken for a stale connection
