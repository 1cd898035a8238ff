"""OpenAI Images (``/v1/images/generations``, ``/v1/images/edits``) <-> Gemini image models. Pure.

Antigravity draws images only with Gemini image models (Imagen's ``:predict``
is gone): one ``generateContent`` per image (``n`` becomes ``n`` calls, which
the web layer runs in parallel over the pool), the prompt as text, edit inputs
as ``inlineData``, and ``size``/``quality`` as ``imageConfig.aspectRatio`` /
``imageSize``. The answer takes the first non-draft image of each call.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from email import policy as email_policy
from email.parser import BytesParser
from urllib.parse import parse_qs
from dataclasses import dataclass
from typing import Any

from gateway.compat.common import bad_request, candidates_of, parts_of

#: The model when a request names none (or a DALL-E / gpt-image id the mapping does not cover).
DEFAULT_IMAGE_MODEL = "gemini-3.1-flash-image"
MAX_IMAGES = 10
#: Aspect ratios Gemini image models accept, as (name, width/height).
ASPECT_RATIOS = (("1:1", 1.0), ("21:9", 21 / 9), ("16:9", 16 / 9), ("4:3", 4 / 3), ("3:4", 3 / 4), ("9:16", 9 / 16),
                 ("3:2", 3 / 2), ("2:3", 2 / 3), ("5:4", 5 / 4), ("4:5", 4 / 5))
#: ``quality`` -> ``imageSize`` (capital K). ``auto``/``low`` leave the model's default.
IMAGE_SIZES = {"hd": "4K", "high": "4K", "max": "4K", "medium": "2K", "standard": "1K", "low": "1K"}
RESPONSE_FORMATS = ("b64_json", "url")
_SIZE = re.compile(r"(\d{2,5})x(\d{2,5})")
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"),
          (b"RIFF", "image/webp"))


@dataclass(frozen=True)
class ImageRequest:
    """One images call, checked: what to ask each upstream call, and how to answer."""

    model: str
    prompt: str
    n: int
    response_format: str
    aspect_ratio: str | None
    image_size: str | None
    inputs: tuple[dict[str, str], ...] = ()
    #: ``stream: true``: answer with SSE ``image_generation.completed`` (edits: ``image_edit.completed``) events
    stream: bool = False
    size: str = "auto"
    quality: str = "auto"


def aspect_ratio(size: Any) -> str | None:
    """``WxH`` -> the nearest accepted ratio within 0.05, else ``1:1``; ``auto``/absent -> None."""
    if size is None or size == "auto":
        return None
    if not isinstance(size, str):
        raise bad_request("size must be a string such as 1024x1024 or auto.")
    if size in dict(ASPECT_RATIOS):
        return size
    match = _SIZE.fullmatch(size.strip().lower())
    if not match or int(match.group(2)) == 0:
        raise bad_request(f"size {size!r} is not WIDTHxHEIGHT (e.g. 1024x1024, 1536x1024) or auto.")
    ratio = int(match.group(1)) / int(match.group(2))
    best = min(ASPECT_RATIOS, key=lambda item: abs(item[1] - ratio))
    return best[0] if abs(best[1] - ratio) <= 0.05 else "1:1"


def image_size(quality: Any) -> str | None:
    if quality is None or quality == "auto":
        return None
    if not isinstance(quality, str) or quality.lower() not in IMAGE_SIZES:
        raise bad_request(f"quality {quality!r} is not one of auto, low, medium, high, standard, hd.")
    return IMAGE_SIZES[quality.lower()]


def mime_of(data: bytes) -> str:
    """An uploaded image's type from its first bytes (multipart parts lose their Content-Type here)."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    raise bad_request("image: only PNG, JPEG, GIF and WebP images can be edited.")


def parse(body: Any, model: str, inputs: tuple[dict[str, str], ...] = ()) -> ImageRequest:
    """Check a generations (JSON) or edits (form fields) body; ``model`` is already resolved."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise bad_request("prompt is required: say what the image should show.")
    n = body.get("n", 1)
    if isinstance(n, str) and n.isdigit():
        n = int(n)
    if n is None:
        n = 1
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
        raise bad_request(f"n must be an integer from 1 to {MAX_IMAGES}.")
    response_format = body.get("response_format") or "b64_json"
    if response_format not in RESPONSE_FORMATS:
        raise bad_request("response_format must be b64_json or url (the url is a data: URL).")
    size, quality = body.get("size"), body.get("quality")
    return ImageRequest(model, prompt, n, response_format, aspect_ratio(size), image_size(quality), inputs,
                        stream=body.get("stream") in (True, "true"), size=size if isinstance(size, str) else "auto",
                        quality=quality if isinstance(quality, str) else "auto")


def form_fields(raw: bytes, content_type: bytes) -> dict[str, list[bytes]]:
    """``multipart/form-data`` (or urlencoded) fields by name; a 400 for anything else."""
    kind = content_type.split(b";")[0].strip().lower()
    fields: dict[str, list[bytes]] = {}
    if kind == b"application/x-www-form-urlencoded":
        for name, values in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items():
            fields[name] = [v.encode() for v in values]
        return fields
    if kind != b"multipart/form-data":
        raise bad_request("The images edits route takes multipart/form-data (image, prompt, mask, n, size, …).")
    message = BytesParser(policy=email_policy.HTTP).parsebytes(
        b"MIME-Version: 1.0\r\nContent-Type: " + content_type + b"\r\n\r\n" + raw)
    if not message.is_multipart():
        raise bad_request("The multipart/form-data body could not be read (check the boundary).")
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str) and name:
            payload = part.get_payload(decode=True)
            fields.setdefault(name, []).append(payload if isinstance(payload, bytes) else b"")
    return fields


def upload(data: bytes, what: str) -> dict[str, str]:
    """An uploaded file as ``inlineData``."""
    if not data:
        raise bad_request(f"{what} is empty.")
    return {"mimeType": mime_of(data), "data": base64.b64encode(data).decode("ascii")}


def gemini_request(request: ImageRequest) -> dict[str, Any]:
    """The GenerateContentRequest of one image call (no tools, no system instruction, no
    ``responseModalities``: what working peers send)."""
    parts: list[dict[str, Any]] = [{"text": request.prompt}]
    parts.extend({"inlineData": dict(blob)} for blob in request.inputs)
    config: dict[str, Any] = {"candidateCount": 1}
    image_config: dict[str, str] = {}
    if request.aspect_ratio:
        image_config["aspectRatio"] = request.aspect_ratio
    if request.image_size:
        image_config["imageSize"] = request.image_size
    if image_config:
        config["imageConfig"] = image_config
    return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}


def images_of(document: Any) -> tuple[list[dict[str, str]], str]:
    """The final images of one answer (thinking drafts dropped), and its text."""
    found: list[dict[str, str]] = []
    texts: list[str] = []
    for candidate in candidates_of(document)[:1]:
        for part in parts_of(candidate):
            if part.get("thought"):
                continue
            blob = part.get("inlineData")
            if isinstance(blob, dict) and isinstance(blob.get("data"), str) and blob["data"]:
                found.append({"mimeType": str(blob.get("mimeType") or "image/png"), "data": blob["data"]})
            elif isinstance(part.get("text"), str):
                texts.append(part["text"])
    return found, "".join(texts).strip()


def check_image(blob: dict[str, str]) -> None:
    try:
        base64.b64decode(blob["data"], validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("Cloud Code answered with an image that is not valid base64; retry.") from None


def answer(request: ImageRequest, images: list[dict[str, str]], created: float, revised: str = "") -> dict[str, Any]:
    """``{created, data: [{b64_json} | {url}]}`` (``url`` is a ``data:`` URL: the gateway hosts no files)."""
    data = []
    for blob in images:
        if request.response_format == "url":
            item: dict[str, Any] = {"url": f"data:{blob['mimeType']};base64,{blob['data']}"}
        else:
            item = {"b64_json": blob["data"]}
        if revised:
            item["revised_prompt"] = revised
        data.append(item)
    mime = images[0]["mimeType"] if images else "image/png"
    return {"created": int(created), "data": data, "output_format": mime.split("/")[-1]}


def stream_events(request: ImageRequest, images: list[dict[str, str]], created: float, edit: bool) -> bytes:
    """The SSE answer of ``stream: true``: one ``…completed`` event per image (Gemini sends no
    partial images, so there are no ``partial_image`` events)."""
    kind = "image_edit.completed" if edit else "image_generation.completed"
    out = []
    for blob in images:
        event = {"type": kind, "b64_json": blob["data"], "created_at": int(created), "size": request.size,
                 "quality": request.quality, "background": "auto", "output_format": blob["mimeType"].split("/")[-1],
                 "usage": {"input_tokens": 0, "input_tokens_details": {"image_tokens": 0, "text_tokens": 0},
                           "output_tokens": 0, "total_tokens": 0}}
        out.append(f"event: {kind}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode())
    return b"".join(out)


__all__ = ["ImageRequest", "answer", "aspect_ratio", "gemini_request", "image_size", "images_of", "parse", "upload"]
