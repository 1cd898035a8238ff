"""GET /metrics and the per-request log event, over loopback against the emulator.

/metrics speaks Prometheus text from the gateway's own registry, behind the
API key unless configured open; the counters and histograms move with real
requests (retries, rotations, host fallbacks, token refreshes, streams).
Every request logs one structured event with ids, labels and token usage.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.logger import globalLogPublisher

from tests.integration.harness import Events, accounts, body_json, start_stack
from tests.integration.rawhttp import exchange, until

HELLO = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
GENERATE = "/v1beta/models/gemini-3-flash:generateContent"
SSE = "/v1beta/models/gemini-3-flash:streamGenerateContent?alt=sse"
KEY = "gw-key-0123456789abcdef"


async def scrape(stack: Any, **kwargs: Any) -> dict[tuple[str, tuple], float]:
    response = await stack.get("/metrics", **kwargs)
    text = (await treq.content(response)).decode()
    assert response.code == 200, text
    assert response.headers.getRawHeaders(b"content-type")[0].startswith(b"text/plain; version=")
    samples: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest_twisted.ensureDeferred
async def test_metrics_are_behind_the_api_key_by_default(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), auth={"mode": "all_except_health", "keys": (KEY,)}) as stack:
        refused = await stack.get("/metrics")
        body = await body_json(refused)
        assert refused.code == 401 and body["error"]["status"] == "UNAUTHENTICATED"
        samples = await scrape(stack, headers={b"Authorization": [b"Bearer " + KEY.encode()]})
        assert value(samples, "antigravity_gateway_requests_total", route="metrics", model="", status="401") == 1


@pytest_twisted.ensureDeferred
async def test_metrics_can_be_open_to_scrapers_or_turned_off(tmp_path: Path) -> None:
    settings = {"auth": {"mode": "strict", "keys": (KEY,)}, "metrics": {"public": True}}
    async with start_stack(tmp_path, accounts(1), **settings) as stack:
        await scrape(stack)  # no key
        refused = await stack.post(GENERATE, HELLO)
        assert refused.code == 401  # everything else still needs it
        await treq.content(refused)
    async with start_stack(tmp_path, accounts(1), metrics={"enabled": False}) as stack:
        gone = await stack.get("/metrics")
        body = await body_json(gone)
        assert gone.code == 404 and body["error"]["status"] == "NOT_FOUND"


@pytest_twisted.ensureDeferred
async def test_requests_latency_ttfb_overhead_tokens_and_accounts(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(2)) as stack:
        for _ in range(2):
            response = await stack.post(GENERATE, HELLO)
            assert response.code == 200
            await treq.content(response)
        missing = await stack.post("/v1beta/models/gemini-3-flash:bogus", HELLO)
        await treq.content(missing)
        s = await scrape(stack)
        assert value(s, "antigravity_gateway_requests_total", route="generateContent", model="gemini-3-flash", status="200") == 2
        assert value(s, "antigravity_gateway_requests_total", route="other", model="", status="404") == 1
        assert value(s, "antigravity_gateway_request_duration_seconds_count", route="generateContent") == 2
        assert value(s, "antigravity_gateway_request_duration_seconds_bucket", route="generateContent", le="+Inf") == 2
        assert value(s, "antigravity_gateway_upstream_first_byte_seconds_count", method="generateContent") == 2
        assert value(s, "antigravity_gateway_upstream_first_byte_seconds_count", method="loadCodeAssist") >= 1
        assert value(s, "antigravity_gateway_overhead_seconds_count", route="generateContent") == 2
        assert value(s, "antigravity_gateway_token_refreshes_total", result="ok") >= 1
        assert value(s, "antigravity_gateway_tokens_total", model="gemini-3-flash", kind="prompt") > 0
        assert value(s, "antigravity_gateway_accounts", state="active") == 2
        assert value(s, "antigravity_gateway_accounts", state="disabled") == 0
        assert value(s, "antigravity_gateway_requests_in_flight") == 1  # the scrape itself
        overhead = value(s, "antigravity_gateway_overhead_seconds_sum", route="generateContent")
        latency = value(s, "antigravity_gateway_request_duration_seconds_sum", route="generateContent")
        assert 0 <= overhead < latency


def by_name(samples: dict, name: str) -> dict[tuple, float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


@pytest_twisted.ensureDeferred
async def test_host_fallbacks_are_counted(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), hosts=("sandbox", "prod")) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "host": "sandbox", "status": 503, "times": -1})
        response = await stack.post(GENERATE, HELLO)
        await treq.content(response)
        assert response.code == 200
        s = await scrape(stack)
        assert value(s, "antigravity_gateway_upstream_host_fallbacks_total", host=stack.emulator.host_url("sandbox"), reason="503") == 1


@pytest_twisted.ensureDeferred
async def test_retries_and_rotations_are_counted_by_reason(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(2)) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "status": 429, "reason": "QUOTA_EXHAUSTED", "quota_reset_delay": 3600, "times": 1})
        response = await stack.post(GENERATE, HELLO)
        await treq.content(response)
        assert response.code == 200
        s = await scrape(stack)
        failures = by_name(s, "antigravity_gateway_upstream_attempt_failures_total")
        retries = by_name(s, "antigravity_gateway_retries_total")
        rotations = by_name(s, "antigravity_gateway_account_rotations_total")
        assert list(failures.values()) == [1.0] and retries == failures == rotations


@pytest_twisted.ensureDeferred
async def test_failed_token_refreshes_and_disabled_accounts(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        stack.emulator.state.add_fault({"method": "token", "kind": "invalid_grant", "times": -1})
        response = await stack.post(GENERATE, HELLO)
        answer = json.loads(await treq.content(response))
        assert response.code == 503
        # The dead token shows while the live model catalogue is fetched, before any generate attempt.
        assert "disabled" in answer["error"]["message"]
        s = await scrape(stack)
        assert value(s, "antigravity_gateway_token_refreshes_total", result="invalid_grant") == 1
        assert value(s, "antigravity_gateway_accounts", state="disabled") == 1
        assert value(s, "antigravity_gateway_accounts", state="active") == 0


@pytest_twisted.ensureDeferred
async def test_active_streams_while_a_stream_runs(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), emulator_settings={"event_delay": 0.05}) as stack:
        response = await stack.post(SSE, {"contents": [{"role": "user", "parts": [{"text": "stream 8 events"}]}]})
        assert response.code == 200
        during = await scrape(stack)
        body = await treq.content(response)
        after = await scrape(stack)
        assert body.count(b"data: ") == 8
        assert value(during, "antigravity_gateway_active_streams") == 1
        assert value(after, "antigravity_gateway_active_streams") == 0
        assert value(after, "antigravity_gateway_requests_total", route="streamGenerateContent", model="gemini-3-flash", status="200") == 1


@pytest_twisted.ensureDeferred
async def test_two_gateways_in_one_process_keep_separate_metrics(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with start_stack(tmp_path / "a", accounts(1)) as one, start_stack(tmp_path / "b", accounts(1)) as two:
        response = await one.post(GENERATE, HELLO)
        await treq.content(response)
        assert value(await scrape(one), "antigravity_gateway_requests_total", route="generateContent", model="gemini-3-flash", status="200") == 1
        assert value(await scrape(two), "antigravity_gateway_requests_total", route="generateContent", model="gemini-3-flash", status="200") == 0


@pytest_twisted.ensureDeferred
async def test_one_structured_log_event_per_request(tmp_path: Path) -> None:
    settings = {"models": {"mapping": (("gemini-pro", "gemini-3.1-pro-low"),)}}
    async with start_stack(tmp_path, accounts(1), **settings) as stack:
        with Events() as seen:
            response = await stack.post("/v1beta/models/gemini-pro:generateContent", HELLO, headers={b"x-request-id": [b"client-rid-1"]})
            await treq.content(response)
            stream = await stack.post("/v1beta/models/gemini-pro:streamGenerateContent?alt=sse", HELLO)
            await treq.content(stream)
        assert [e["route"] for e in seen.events] == ["generateContent", "streamGenerateContent"]
        first, second = seen.events
        assert first["request_id"] == "client-rid-1" == response.headers.getRawHeaders(b"x-request-id")[0].decode()
        assert (first["model"], first["mapped_model"], first["account"]) == ("gemini-pro", "gemini-3.1-pro-low", "user0@example.com")
        assert (first["status"], first["attempts"], first["retries"], first["method"]) == (200, 1, 0, "POST")
        assert first["prompt_tokens"] > 0 and first["total_tokens"] >= first["prompt_tokens"]
        assert first["latency_ms"] >= first["overhead_ms"] >= 0 and first["client"] == "127.0.0.1"
        assert second["stream"] is True and second["candidates_tokens"] > 0
        for event in seen.events:
            json.dumps({k: v for k, v in event.items() if not k.startswith("log_")})  # every field is plain data
            assert "1//refresh-0" not in repr(event) and "ya29." not in repr(event)


@pytest_twisted.ensureDeferred
async def test_account_labels_can_be_hashed_and_failures_are_logged(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(2), logging={"account_label": "hash"}) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "status": 429, "reason": "RATE_LIMIT_EXCEEDED", "retry_delay": 60, "times": -1})
        with Events() as seen:
            response = await stack.post(GENERATE, HELLO)
            await treq.content(response)
        assert response.code == 429
        (event,) = seen.events
        assert event["status"] == 429 and event["attempts"] == 2 and event["retries"] == 1
        assert re.fullmatch(r"sha256:[0-9a-f]{16}", event["account"])
        assert "example.com" not in repr(event)


@pytest_twisted.ensureDeferred
async def test_a_client_that_hangs_up_is_logged_as_499(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), emulator_settings={"event_delay": 0.1}) as stack:
        body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "stream 20 events"}]}]}).encode()
        head = (b"POST " + SSE.encode() + b" HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body))
        with Events() as seen:
            first_event = until(lambda: stack.emulator.state.stats.stream_events >= 2)
            got = await exchange(stack.port.getHost().port, [head + body, first_event, 0.1], timeout=0.01)  # then hang up
            assert b"data: " in got
            for _ in range(40):
                if seen.events:
                    break
                await deferLater(reactor, 0.05, lambda: None)
        assert [(e["status"], e["stream"]) for e in seen.events] == [(499, True)]
        assert value(await scrape(stack), "antigravity_gateway_active_streams") == 0


@pytest_twisted.ensureDeferred
async def test_a_client_gone_before_a_generate_answer_is_logged_as_499_without_errors(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        stack.emulator.state.add_fault({"method": "generateContent", "kind": "delay", "seconds": 1.0})
        body = json.dumps(HELLO).encode()
        head = (b"POST " + GENERATE.encode() + b" HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body))
        failures: list[dict[str, Any]] = []

        def errors(event: dict[str, Any]) -> None:
            if "log_failure" in event or event.get("isError"):
                failures.append(event)

        globalLogPublisher.addObserver(errors)
        try:
            with Events() as seen:
                upstream_asked = until(lambda: stack.emulator.state.requests("generateContent"))
                await exchange(stack.port.getHost().port, [head + body, upstream_asked], timeout=0.01)  # hang up while upstream thinks
                await deferLater(reactor, 1.2, lambda: None)  # the upstream answer arrives after the client left
        finally:
            globalLogPublisher.removeObserver(errors)
        assert [e["status"] for e in seen.events] == [499]
        assert failures == []
