"""Model ids, the public Model shape, the catalogue, pages and lookups."""

from __future__ import annotations

import base64

import pytest

from gateway.protocol.errors import GatewayError
from gateway.protocol.models import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MODEL_ACTIONS,
    UNIMPLEMENTED_ACTIONS,
    catalogue_from_upstream,
    deprecated_redirects,
    find_model,
    paginate,
    public_model,
    strip_models_prefix,
    unsupported_action_error,
    version_of,
)

# Shaped like a real fetchAvailableModels answer.
UPSTREAM = {
    "models": {
        "gemini-2.5-pro": {
            "displayName": "Gemini 2.5 Pro",
            "maxTokens": 1048576,
            "maxOutputTokens": 65535,
            "supportsImages": True,
            "supportsThinking": True,
            "quotaInfo": {"remainingFraction": 0.5, "resetTime": "2025-11-25T12:00:00Z"},
        },
        "claude-sonnet-4-5": {"displayName": "Claude Sonnet 4.5", "maxTokens": "200000", "maxOutputTokens": 64000},
        "gemini-3-flash": {"displayName": "Gemini 3 Flash", "quotaInfo": {}},
        "gemini-2.5-flash-old": {"displayName": "Old"},
        "tab_flash_lite_preview": {"isInternal": True},
        "chat_20706": {"isInternal": True, "displayName": "internal"},
        "broken": "not metadata",
    },
    "deprecatedModelIds": {"gemini-2.5-flash-old": {"newModelId": "gemini-3-flash"}},
}


@pytest.mark.parametrize(
    ("name", "bare"),
    [("models/x", "x"), ("models/models/x", "x"), ("x", "x"), ("", ""), ("models/", ""), ("tunedModels/x", "tunedModels/x")],
)
def test_strip_models_prefix(name: str, bare: str) -> None:
    assert strip_models_prefix(name) == bare


def test_action_sets() -> None:
    assert MODEL_ACTIONS == {"generateContent", "streamGenerateContent", "countTokens"}
    assert {"embedContent", "batchEmbedContents", "predict", "batchGenerateContent"} <= UNIMPLEMENTED_ACTIONS
    assert not MODEL_ACTIONS & UNIMPLEMENTED_ACTIONS


def test_unsupported_action_errors() -> None:
    embed = unsupported_action_error("batchEmbedContents")
    assert (embed.code, embed.status) == (501, "UNIMPLEMENTED")
    assert "batchEmbedContents" in embed.message
    unknown = unsupported_action_error("fooBar")
    assert (unknown.code, unknown.status) == (404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("model_id", "version"),
    [
        ("gemini-2.5-pro", "2.5"),
        ("gemini-3-pro-high", "3"),
        ("gemini-2.0-flash-001", "2.0"),
        ("claude-sonnet-4-5", "4.5"),
        ("claude-sonnet-4-5-thinking", "4.5"),
        ("claude-opus-4-5-20251101", "4.5"),
        ("gpt-oss-120b-medium", None),
        ("mystery", None),
    ],
)
def test_version_of(model_id: str, version: str | None) -> None:
    assert version_of(model_id) == version


def test_public_model_full_entry() -> None:
    model = public_model("gemini-2.5-pro", UPSTREAM["models"]["gemini-2.5-pro"])
    assert model == {
        "name": "models/gemini-2.5-pro",
        "baseModelId": "gemini-2.5-pro",
        "version": "2.5",
        "displayName": "Gemini 2.5 Pro",
        "description": "Gemini 2.5 Pro, served through Cloud Code.",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65535,
        "supportedGenerationMethods": ["generateContent", "countTokens", "streamGenerateContent"],
        "temperature": 1.0,
        "maxTemperature": 2.0,
        "topP": 0.95,
        "topK": 64,
        "thinking": True,
    }


def test_public_model_omits_unreported_limits() -> None:
    model = public_model("gemini-3-flash", {"displayName": "Gemini 3 Flash"})
    assert "inputTokenLimit" not in model
    assert "outputTokenLimit" not in model
    assert model["thinking"] is False


@pytest.mark.parametrize("bad", [0, -5, "abc", "", None, True, 1.5, "12.0"])
def test_public_model_ignores_unusable_limits(bad: object) -> None:
    model = public_model("m", {"maxTokens": bad, "maxOutputTokens": bad})
    assert "inputTokenLimit" not in model and "outputTokenLimit" not in model


def test_public_model_int64_string_limits() -> None:
    model = public_model("claude-sonnet-4-5", UPSTREAM["models"]["claude-sonnet-4-5"])
    assert model["inputTokenLimit"] == 200000
    assert model["outputTokenLimit"] == 64000


def test_public_model_non_gemini_gets_no_gemini_sampling_defaults() -> None:
    model = public_model("claude-sonnet-4-5", {})
    for field in ("temperature", "maxTemperature", "topP", "topK"):
        assert field not in model
    assert model["displayName"] == "claude-sonnet-4-5"
    assert model["version"] == "4.5"


def test_public_model_prefers_upstream_description_and_version() -> None:
    model = public_model("models/gemini-x", {"description": "From upstream", "version": "007"})
    assert model["name"] == "models/gemini-x"
    assert model["description"] == "From upstream"
    assert model["version"] == "007"


def test_public_model_without_version_omits_it() -> None:
    assert "version" not in public_model("gpt-oss-120b-medium", {})


def test_catalogue_skips_deprecated_internal_and_malformed() -> None:
    names = [m["name"] for m in catalogue_from_upstream(UPSTREAM)]
    assert names == ["models/claude-sonnet-4-5", "models/gemini-2.5-pro", "models/gemini-3-flash"]


def test_catalogue_tolerates_odd_answers() -> None:
    assert catalogue_from_upstream({}) == []
    assert catalogue_from_upstream({"models": None}) == []
    assert catalogue_from_upstream("x") == []  # type: ignore[arg-type]
    listed = catalogue_from_upstream({"models": [{"id": "b"}, {"name": "models/a"}, {"nothing": 1}], "deprecatedModelIds": ["b"]})
    assert [m["name"] for m in listed] == ["models/a"]


def test_deprecated_redirects() -> None:
    assert deprecated_redirects(UPSTREAM) == {"gemini-2.5-flash-old": "gemini-3-flash"}
    assert deprecated_redirects({"deprecatedModelIds": {"a": {}, "b": "x"}}) == {}
    assert deprecated_redirects({}) == {}


# -- paginate ---------------------------------------------------------------------

MODELS = [{"name": f"models/m{i:04d}"} for i in range(2500)]


def walk(page_size: str | None) -> list[dict]:
    seen: list[dict] = []
    token: str | None = None
    while True:
        page = paginate(MODELS, page_size, token)
        seen.extend(page["models"])
        token = page.get("nextPageToken")
        if token is None:
            return seen


def test_default_page_size() -> None:
    page = paginate(MODELS, None, None)
    assert len(page["models"]) == DEFAULT_PAGE_SIZE == 50
    assert page["models"][0]["name"] == "models/m0000"
    assert "nextPageToken" in page


@pytest.mark.parametrize("size", ["0", "", " "])
def test_zero_or_empty_page_size_means_default(size: str) -> None:
    assert len(paginate(MODELS, size, None)["models"]) == 50


def test_page_size_clamps_to_max() -> None:
    assert len(paginate(MODELS, "5000", None)["models"]) == MAX_PAGE_SIZE == 1000


@pytest.mark.parametrize("size", ["7", "50", "1000", "99999"])
def test_walking_all_pages_sees_every_model_once(size: str) -> None:
    assert walk(size) == MODELS


def test_last_page_has_no_token() -> None:
    page = paginate(MODELS[:3], "3", None)
    assert page == {"models": MODELS[:3]}
    assert paginate([], None, None) == {"models": []}


def test_second_page_starts_where_first_ended() -> None:
    first = paginate(MODELS, "10", None)
    second = paginate(MODELS, "10", first["nextPageToken"])
    assert second["models"][0] == MODELS[10]


@pytest.mark.parametrize("size", ["-1", "abc", "1.5", "1e3", "1_0", "١٢"])
def test_bad_page_size_is_400(size: str) -> None:
    with pytest.raises(GatewayError) as info:
        paginate(MODELS, size, None)
    assert info.value.code == 400
    assert "pageSize" in info.value.message


@pytest.mark.parametrize(
    "token",
    ["garbage!", "AAAA", base64.urlsafe_b64encode(b"o:-1").decode(), base64.urlsafe_b64encode(b"x:10").decode(), "%%%"],
)
def test_bad_page_token_is_400_invalid_argument(token: str) -> None:
    with pytest.raises(GatewayError) as info:
        paginate(MODELS, None, token)
    assert (info.value.code, info.value.status) == (400, "INVALID_ARGUMENT")


def test_token_is_opaque_urlsafe() -> None:
    token = paginate(MODELS, "10", None)["nextPageToken"]
    assert "10" not in token
    assert all(c.isalnum() or c in "-_" for c in token)


def test_token_past_the_end_gives_empty_last_page() -> None:
    token = base64.urlsafe_b64encode(b"o:99999").decode().rstrip("=")
    assert paginate(MODELS, None, token) == {"models": []}


# -- find_model ---------------------------------------------------------------------


def test_find_model_with_or_without_prefix() -> None:
    catalogue = catalogue_from_upstream(UPSTREAM)
    assert find_model(catalogue, "gemini-2.5-pro")["displayName"] == "Gemini 2.5 Pro"
    assert find_model(catalogue, "models/gemini-2.5-pro")["name"] == "models/gemini-2.5-pro"


def test_find_model_returns_a_copy() -> None:
    catalogue = catalogue_from_upstream(UPSTREAM)
    found = find_model(catalogue, "gemini-2.5-pro")
    found["displayName"] = "changed"
    assert find_model(catalogue, "gemini-2.5-pro")["displayName"] == "Gemini 2.5 Pro"


def test_find_model_404_google_style() -> None:
    with pytest.raises(GatewayError) as info:
        find_model([], "models/nope")
    assert (info.value.code, info.value.status) == (404, "NOT_FOUND")
    assert info.value.message == (
        "models/nope is not found for API version v1beta, or is not supported for generateContent. "
        "Call ListModels to see the list of available models and their supported methods."
    )


def test_find_model_404_names_the_api_version() -> None:
    with pytest.raises(GatewayError) as info:
        find_model([], "x", api_version="v1")
    assert "for API version v1," in info.value.message
