"""Which finished requests become usage rows, under which door, and their tokens (``gateway.team.usage.row_from``)."""

from __future__ import annotations

import pytest

from gateway.observe import Observation, add_usage, note_usage, route_of
from gateway.team.usage import DOORS, row_from


@pytest.mark.parametrize(
    "path, door",
    [
        (b"/v1beta/models/gemini-3-flash:generateContent", "gemini"),
        (b"/v1beta/models/gemini-3-flash:streamGenerateContent", "gemini"),
        (b"/v1beta/models/gemini-3-flash:countTokens", "gemini"),
        (b"/v1/chat/completions", "openai"),
        (b"/chat/completions", "openai"),
        (b"/v1/responses", "openai"),
        (b"/responses", "openai"),
        (b"/v1/images/generations", "openai"),
        (b"/v1/images/edits", "openai"),
        (b"/v1/messages", "anthropic"),
        (b"/v1/messages/count_tokens", "anthropic"),
    ],
)
def test_every_answering_route_records_under_its_door(path: bytes, door: str) -> None:
    route, model = route_of(path)
    obs = Observation("id", "POST", route, model, "127.0.0.1", 10.0, account="a@example.com", attempts=2)
    obs.model = obs.model or "gpt-4o"
    obs.mapped_model = "gemini-3-flash"
    row = row_from(obs, 200, 10.25)
    assert row is not None and row.door == door and row.route == route
    assert (row.requested_model, row.model, row.account, row.attempts, row.latency_ms) == (
        obs.model, "gemini-3-flash", "a@example.com", 2, 250.0)


@pytest.mark.parametrize("path", [b"/v1beta/models", b"/v1/models", b"/healthz", b"/metrics", b"/admin/accounts"])
def test_routes_that_spend_nothing_record_nothing(path: bytes) -> None:
    route, model = route_of(path)
    assert route not in DOORS
    assert row_from(Observation("id", "GET", route, model, "c", 0.0), 200, 1.0) is None


def test_the_final_usage_of_a_stream_counts_and_images_sum_their_calls() -> None:
    obs = Observation("id", "POST", "responses", "gpt-5", "c", 0.0)
    note_usage(obs, {"usageMetadata": {"promptTokenCount": 3}})
    note_usage(obs, {"candidates": []})  # an event without usage keeps the last one
    note_usage(obs, {"usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 7, "thoughtsTokenCount": 2,
                                       "cachedContentTokenCount": 1, "totalTokenCount": 12}})
    row = row_from(obs, 200, 1.0)
    assert row is not None
    assert (row.prompt_tokens, row.output_tokens, row.thought_tokens, row.cached_tokens) == (3, 7, 2, 1)

    images = Observation("id", "POST", "images.generations", "gpt-image-1", "c", 0.0)
    add_usage(images, {"usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1290, "totalTokenCount": 1295}})
    add_usage(images, {"usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1290, "totalTokenCount": 1295,
                                         "flag": True}})
    add_usage(images, {"no": "usage"})
    add_usage(None, {"usageMetadata": {"promptTokenCount": 1}})
    assert images.usage == {"promptTokenCount": 10, "candidatesTokenCount": 2580, "totalTokenCount": 2590}
    row = row_from(images, 200, 1.0)
    assert row is not None and (row.prompt_tokens, row.output_tokens) == (10, 2580)


def test_counting_tokens_is_recorded_but_spends_none() -> None:
    obs = Observation("id", "POST", "messages.count_tokens", None, "c", 0.0)
    obs.model, obs.mapped_model = "claude-sonnet-4-6", "claude-sonnet-4-6"
    note_usage(obs, {"totalTokens": 42})  # countTokens answers carry no usageMetadata
    row = row_from(obs, 200, 1.0)
    assert row is not None and row.door == "anthropic"
    assert (row.prompt_tokens, row.output_tokens, row.thought_tokens) == (0, 0, 0)


def test_a_refusal_is_recorded_with_its_status_and_no_tokens() -> None:
    obs = Observation("id", "POST", "images.edits", "dall-e-2", "c", 0.0, key="alice")
    row = row_from(obs, 429, 1.0)
    assert row is not None and (row.status, row.key, row.door, row.prompt_tokens) == (429, "alice", "openai", 0)


def test_a_stream_that_ended_in_an_error_event_is_recorded_as_that_error() -> None:
    from gateway.observe import failed_in_stream
    from gateway.web.relay import _error_code

    obs = Observation("id", "POST", "responses", "gpt-5", "c", 0.0)
    failed_in_stream(obs, 200)  # not an error: ignored
    failed_in_stream(None, 500)
    assert row_from(obs, 200, 1.0).status == 200  # type: ignore[union-attr]
    failed_in_stream(obs, 429)
    failed_in_stream(obs, 503)  # the first failure is the one that ended it
    assert row_from(obs, 200, 1.0).status == 429  # type: ignore[union-attr]
    assert _error_code(b'{"error":{"code":500,"message":"x"}}') == 500
    assert _error_code(b'{"error":{"code":"500"}}') == _error_code(b'{"error":7}') == _error_code(b"{nope") == 502
