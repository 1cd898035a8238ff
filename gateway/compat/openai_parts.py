"""Content parts both OpenAI doors accept (Chat Completions and Responses) -> Gemini parts.

The two APIs name the same things differently (``image_url`` / ``input_image``,
``file.file_data`` / ``file_data``); what a part becomes is the same. Pure: no I/O
(fetched images arrive as ``images``, keyed by URL).
"""

from __future__ import annotations

import mimetypes
from typing import Any, Mapping

from gateway.compat.common import bad_request, check_base64, parse_data_uri

AUDIO_MIME = {"wav": "audio/wav", "mp3": "audio/mp3", "flac": "audio/flac", "aac": "audio/aac", "ogg": "audio/ogg",
              "opus": "audio/ogg", "pcm16": "audio/pcm", "m4a": "audio/m4a", "webm": "audio/webm"}


def text_part(part: dict[str, Any], at: str) -> dict[str, Any] | None:
    """``{"text"}``, or None for an empty text (Gemini refuses empty text parts)."""
    text = part.get("text")
    if not isinstance(text, str):
        raise bad_request(f"{at}.text must be a string.")
    return {"text": text} if text else None


def image_part(url: str, at: str, field: str, images: Mapping[str, dict[str, str]]) -> dict[str, Any]:
    """An image by URL: a fetched http(s) image (never passed upstream as a URL) or a ``data:`` URI."""
    url = url.strip()
    if url.lower().startswith(("http://", "https://")):
        if url not in images:
            raise bad_request(f"{at}: the image at {url[:200]} could not be fetched.")
        return {"inlineData": dict(images[url])}
    return {"inlineData": parse_data_uri(url, f"{at}.{field}")}


def file_part(data: Any, filename: Any, at: str, field: str, missing: str) -> dict[str, Any]:
    """A file given inline: a ``data:`` URI, or base64 whose type comes from its name (else PDF)."""
    if not isinstance(data, str) or not data:
        raise bad_request(f"{at}.{field} is required ({missing}).")
    if data.startswith("data:"):
        return {"inlineData": parse_data_uri(data, f"{at}.{field}")}
    mime = mimetypes.guess_type(str(filename or ""))[0] or "application/pdf"
    return {"inlineData": {"mimeType": mime, "data": check_base64(data, f"{at}.{field}")}}


def audio_part(audio: dict[str, Any], at: str) -> dict[str, Any]:
    """``input_audio {data, format}`` -> inline audio of that format."""
    fmt = str(audio.get("format") or "wav").lower()
    return {"inlineData": {"mimeType": AUDIO_MIME.get(fmt, "audio/" + fmt),
                           "data": check_base64(audio.get("data"), f"{at}.input_audio.data")}}
