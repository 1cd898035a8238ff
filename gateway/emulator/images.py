"""What the emulator's image models draw, and the ``imageConfig`` Google accepts. Pure.

A real (small) PNG, built with zlib and struct: one flat colour derived from
the prompt, its shape following ``imageConfig.aspectRatio``, so tests can
decode it and tell two prompts' images apart. Thinking image models also send
a draft image marked ``thought: true`` before the final one, as Google's do.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib
from typing import Any

from gateway.protocol.errors import GatewayError

ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
IMAGE_SIZES = ("1K", "2K", "4K")
#: The long side of the emulator's pictures, in pixels (real ones are 1024 and up).
LONG_SIDE = 64
IMAGE_CONFIG_FIELDS = ("aspectRatio", "imageSize", "personGeneration", "imageOutputOptions")


def colour(prompt: str) -> tuple[int, int, int]:
    """A stable RGB colour for a prompt."""
    digest = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).digest()
    return digest[0], digest[1], digest[2]


def dimensions(aspect_ratio: str | None) -> tuple[int, int]:
    """Width and height for a ratio such as ``16:9`` (square when absent)."""
    if not aspect_ratio:
        return LONG_SIDE, LONG_SIDE
    w, h = (int(x) for x in aspect_ratio.split(":"))
    if w >= h:
        return LONG_SIDE, max(1, round(LONG_SIDE * h / w))
    return max(1, round(LONG_SIDE * w / h)), LONG_SIDE


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid 8-bit RGB PNG of one colour."""
    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(row * height)) + _chunk(b"IEND", b"")


def image_for(prompt: str, image_config: dict[str, Any] | None, draft: bool = False) -> dict[str, str]:
    """The ``inlineData`` an image model answers ``prompt`` with (a draft is a shade darker)."""
    r, g, b = colour(prompt)
    if draft:
        r, g, b = r // 2, g // 2, b // 2
    width, height = dimensions((image_config or {}).get("aspectRatio"))
    return {"mimeType": "image/png", "data": base64.b64encode(png(width, height, (r, g, b))).decode("ascii")}


def validate_image_config(obj: Any, path: str) -> dict[str, Any]:
    """Google's checks on ``generationConfig.imageConfig`` (unknown fields, ratios, sizes)."""
    if not isinstance(obj, dict):
        raise GatewayError(400, f"Invalid value at '{path}' (type.googleapis.com/google.cloud.aicompanion.v1main.ImageConfig), "
                                f"{obj!r}")
    for key in obj:
        if key not in IMAGE_CONFIG_FIELDS:
            raise GatewayError(400, f'Invalid JSON payload received. Unknown name "{key}" at \'{path}\': Cannot find field.')
    ratio = obj.get("aspectRatio")
    if ratio is not None and ratio not in ASPECT_RATIOS:
        raise GatewayError(400, f"Unable to submit request because aspect ratio {ratio!r} is not supported. "
                                f"Supported values are: {', '.join(ASPECT_RATIOS)}.")
    size = obj.get("imageSize")
    if size is not None and size not in IMAGE_SIZES:
        raise GatewayError(400, f"Unable to submit request because image size {size!r} is not supported. "
                                f"Supported values are: {', '.join(IMAGE_SIZES)}.")
    return obj
