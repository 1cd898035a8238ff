"""Model ids, the public ``Model`` shape, and the models list with its pages.

Owns turning Cloud Code's ``fetchAvailableModels`` answer into what
``GET /v1beta/models`` answers; must not do I/O or invent limits upstream
did not report.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Iterable, Mapping

from gateway.protocol.errors import GatewayError

MODELS_PREFIX = "models/"

#: Model actions the gateway forwards to Cloud Code.
MODEL_ACTIONS: frozenset[str] = frozenset({"generateContent", "streamGenerateContent", "countTokens"})

#: Real Gemini API model actions that Cloud Code has no upstream for. They
#: answer 501 UNIMPLEMENTED: the method exists in the API the client speaks
#: (so 404 would wrongly say "wrong URL"), this gateway just cannot serve it.
#: Any other ``:action`` is not a Gemini method at all and answers 404, as
#: Google does for an unknown path.
UNIMPLEMENTED_ACTIONS: frozenset[str] = frozenset(
    {
        "embedContent",
        "batchEmbedContents",
        "asyncBatchEmbedContent",
        "batchGenerateContent",
        "predict",
        "predictLongRunning",
        "generateAnswer",
    }
)

#: What every served model advertises (google-genai filters on these).
SUPPORTED_GENERATION_METHODS: tuple[str, ...] = ("generateContent", "countTokens", "streamGenerateContent")

#: Sampling defaults Google publishes for Gemini 2.x/3.x models. Only given
#: to ``gemini*`` ids: other families (Claude, GPT-OSS) have other ranges and
#: upstream does not report them, so they are omitted rather than guessed.
GEMINI_SAMPLING_DEFAULTS: dict[str, float | int] = {
    "temperature": 1.0,
    "maxTemperature": 2.0,
    "topP": 0.95,
    "topK": 64,
}

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_TOKEN_PREFIX = "o:"

_INT_RE = re.compile(r"[+-]?[0-9]+")
_VERSION_RE = re.compile(r"-(\d{1,2}(?:[.-]\d{1,2})*)(?=-|$)")


def strip_models_prefix(name: str) -> str:
    """``models/x`` -> ``x``; repeated prefixes too (``models/models/x``), as clients do build those."""
    while name.startswith(MODELS_PREFIX):
        name = name[len(MODELS_PREFIX) :]
    return name


def unsupported_action_error(action: str) -> GatewayError:
    """The error for an action outside MODEL_ACTIONS: 501 for known Gemini methods, else 404."""
    if action in UNIMPLEMENTED_ACTIONS:
        return GatewayError(
            501,
            f"Method {action} is not supported by this gateway: the Cloud Code backend it "
            f"forwards to has no equivalent. Supported methods: "
            f"{', '.join(SUPPORTED_GENERATION_METHODS)}.",
        )
    return GatewayError(404, f"Method {action!r} was not found: it is not a Gemini API model method.")


def _positive_int(value: object) -> int | None:
    """An int limit as upstream reports it (proto3 JSON may send int64 as a string)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.isdigit():
        number = int(value)
        return number if number > 0 else None
    return None


def version_of(model_id: str) -> str | None:
    """The family version in an id (``gemini-2.5-pro`` -> ``2.5``, ``claude-sonnet-4-5`` -> ``4.5``), or None."""
    match = _VERSION_RE.search(model_id)
    if not match:
        return None
    return match.group(1).replace("-", ".")


def public_model(model_id: str, info: Mapping[str, Any]) -> dict[str, Any]:
    """One ``fetchAvailableModels`` entry as a Gemini ``Model``.

    Limits come only from upstream (``maxTokens`` -> inputTokenLimit,
    ``maxOutputTokens`` -> outputTokenLimit) and are omitted when it does
    not report them; ``version`` is omitted when the id carries none.
    """
    model_id = strip_models_prefix(model_id)
    display = info.get("displayName")
    display_name = display if isinstance(display, str) and display else model_id
    description = info.get("description")
    if not (isinstance(description, str) and description):
        description = f"{display_name}, served through Cloud Code."
    model: dict[str, Any] = {
        "name": MODELS_PREFIX + model_id,
        "baseModelId": model_id,
    }
    version = info.get("version")
    if not (isinstance(version, str) and version):
        version = version_of(model_id)
    if version:
        model["version"] = version
    model["displayName"] = display_name
    model["description"] = description
    input_limit = _positive_int(info.get("maxTokens"))
    if input_limit is not None:
        model["inputTokenLimit"] = input_limit
    output_limit = _positive_int(info.get("maxOutputTokens"))
    if output_limit is not None:
        model["outputTokenLimit"] = output_limit
    model["supportedGenerationMethods"] = list(SUPPORTED_GENERATION_METHODS)
    if model_id.startswith("gemini"):
        model.update(GEMINI_SAMPLING_DEFAULTS)
    model["thinking"] = bool(info.get("supportsThinking"))
    return model


def _deprecated_ids(answer: Mapping[str, Any]) -> set[str]:
    deprecated = answer.get("deprecatedModelIds")
    if isinstance(deprecated, Mapping):
        return {strip_models_prefix(k) for k in deprecated if isinstance(k, str)}
    if isinstance(deprecated, list):
        return {strip_models_prefix(k) for k in deprecated if isinstance(k, str)}
    return set()


def deprecated_redirects(answer: Mapping[str, Any]) -> dict[str, str]:
    """``deprecatedModelIds`` as ``{old id: new id}`` (entries without ``newModelId`` left out).

    Lets a mapper keep old configs working after upstream renames a model.
    """
    deprecated = answer.get("deprecatedModelIds")
    redirects: dict[str, str] = {}
    if isinstance(deprecated, Mapping):
        for old, entry in deprecated.items():
            if isinstance(old, str) and isinstance(entry, Mapping):
                new = entry.get("newModelId")
                if isinstance(new, str) and new:
                    redirects[strip_models_prefix(old)] = strip_models_prefix(new)
    return redirects


def _entries(models: object) -> Iterable[tuple[str, Mapping[str, Any]]]:
    if isinstance(models, Mapping):
        for model_id, info in models.items():
            if isinstance(model_id, str) and isinstance(info, Mapping):
                yield model_id, info
    elif isinstance(models, list):  # tolerate a list of entries that carry their id
        for info in models:
            if isinstance(info, Mapping):
                model_id = info.get("id") or info.get("modelId") or info.get("name")
                if isinstance(model_id, str):
                    yield model_id, info


def catalogue_from_upstream(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The whole ``fetchAvailableModels`` answer as public models, sorted by name.

    Skipped: ids listed in ``deprecatedModelIds``, entries marked
    ``isInternal: true`` (upstream's own flag for tab-completion and other
    non-chat models), malformed (non-object) entries and empty ids.
    """
    if not isinstance(answer, Mapping):
        return []
    deprecated = _deprecated_ids(answer)
    seen: dict[str, dict[str, Any]] = {}
    for raw_id, info in _entries(answer.get("models")):
        model_id = strip_models_prefix(raw_id)
        if not model_id or model_id in deprecated or info.get("isInternal") is True:
            continue
        seen.setdefault(model_id, public_model(model_id, info))
    return [seen[k] for k in sorted(seen)]


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{offset}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> int:
    bad = GatewayError(400, f"Invalid page token {token[:64]!r}: pass nextPageToken from the previous page unchanged.")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise bad from None
    if not raw.startswith(_TOKEN_PREFIX) or not raw[len(_TOKEN_PREFIX) :].isdigit():
        raise bad
    return int(raw[len(_TOKEN_PREFIX) :])


def _page_size(page_size: str | None) -> int:
    if page_size is None or page_size.strip() == "":
        return DEFAULT_PAGE_SIZE
    text = page_size.strip()
    if not _INT_RE.fullmatch(text):
        raise GatewayError(400, f"Invalid pageSize {page_size[:32]!r}: it must be a non-negative integer.")
    size = int(text)
    if size < 0:
        raise GatewayError(400, f"Invalid pageSize {size}: it must not be negative.")
    if size == 0:
        return DEFAULT_PAGE_SIZE
    return min(size, MAX_PAGE_SIZE)


def paginate(models: list[dict[str, Any]], page_size: str | None, page_token: str | None) -> dict[str, Any]:
    """One page of ``models`` as Google answers it.

    ``pageSize``: absent/0 -> 50, above 1000 -> 1000, negative or not an
    integer -> 400. ``pageToken`` is opaque (urlsafe base64 of the offset);
    one that does not decode -> 400. ``nextPageToken`` is absent on the
    last page. A token past the end gives an empty last page.
    """
    size = _page_size(page_size)
    offset = _decode_token(page_token) if page_token else 0
    page = models[offset : offset + size]
    answer: dict[str, Any] = {"models": page}
    if offset + size < len(models):
        answer["nextPageToken"] = _encode_token(offset + size)
    return answer


def find_model(models: Iterable[Mapping[str, Any]], model_id: str, api_version: str = "v1beta") -> dict[str, Any]:
    """A copy of the model named ``model_id`` (with or without ``models/``), else Google's 404."""
    bare = strip_models_prefix(model_id)
    name = MODELS_PREFIX + bare
    for model in models:
        if model.get("name") == name:
            return dict(model)
    raise GatewayError(
        404,
        f"models/{bare} is not found for API version {api_version}, or is not supported for "
        f"generateContent. Call ListModels to see the list of available models and their "
        f"supported methods.",
    )
