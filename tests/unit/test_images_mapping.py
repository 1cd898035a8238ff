"""OpenAI Images <-> Gemini image models, and the emulator's pictures."""

from __future__ import annotations

import base64
import json
import struct
import zlib

import pytest

from gateway.compat import images
from gateway.emulator import images as drawn
from gateway.protocol.errors import GatewayError


@pytest.mark.parametrize("size, ratio", [
    ("1024x1024", "1:1"), ("1536x1024", "3:2"), ("1024x1536", "2:3"), ("1792x1024", "16:9"), ("1024x1792", "9:16"),
    ("2560x1080", "21:9"), ("1280x1024", "5:4"), ("1000x333", "1:1"), ("auto", None), (None, None), ("4:3", "4:3")])
def test_size_to_aspect_ratio(size: str | None, ratio: str | None) -> None:
    assert images.aspect_ratio(size) == ratio


@pytest.mark.parametrize("quality, size", [("hd", "4K"), ("high", "4K"), ("medium", "2K"), ("standard", "1K"),
                                           ("low", "1K"), ("auto", None), (None, None)])
def test_quality_to_image_size(quality: str | None, size: str | None) -> None:
    assert images.image_size(quality) == size


def test_parse_and_gemini_request() -> None:
    parsed = images.parse({"prompt": "a boat", "n": 3, "size": "1792x1024", "quality": "hd", "response_format": "url"},
                          "gemini-3.1-flash-image", ({"mimeType": "image/png", "data": "AAAA"},))
    assert parsed.n == 3 and parsed.response_format == "url"
    assert images.gemini_request(parsed) == {
        "contents": [{"role": "user", "parts": [{"text": "a boat"}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}],
        "generationConfig": {"candidateCount": 1, "imageConfig": {"aspectRatio": "16:9", "imageSize": "4K"}}}
    assert "imageConfig" not in images.gemini_request(images.parse({"prompt": "x"}, "m"))["generationConfig"]


@pytest.mark.parametrize("body, message", [
    ({}, "prompt is required"), ({"prompt": "x", "n": 0}, "n must be"), ({"prompt": "x", "n": 11}, "n must be"),
    ({"prompt": "x", "size": "big"}, "size"), ({"prompt": "x", "quality": "ultra"}, "quality"),
    ({"prompt": "x", "response_format": "png"}, "response_format")])
def test_parse_refuses_bad_input(body: dict, message: str) -> None:
    with pytest.raises(GatewayError, match=message) as caught:
        images.parse(body, "m")
    assert caught.value.code == 400


def test_images_of_drops_drafts_and_answer_shapes() -> None:
    document = {"candidates": [{"content": {"parts": [
        {"text": "Here."}, {"inlineData": {"mimeType": "image/png", "data": "DRAFT"}, "thought": True},
        {"inlineData": {"mimeType": "image/jpeg", "data": "QUJD"}}]}}]}
    found, text = images.images_of(document)
    assert found == [{"mimeType": "image/jpeg", "data": "QUJD"}] and text == "Here."
    b64 = images.answer(images.parse({"prompt": "x"}, "m"), found, 9.5)
    assert b64 == {"created": 9, "data": [{"b64_json": "QUJD"}], "output_format": "jpeg"}
    url = images.answer(images.parse({"prompt": "x", "response_format": "url"}, "m"), found, 0)
    assert url["data"] == [{"url": "data:image/jpeg;base64,QUJD"}]


def test_uploads_and_form_fields() -> None:
    picture = drawn.png(1, 1, (0, 0, 0))
    assert images.upload(picture, "image")["mimeType"] == "image/png"
    assert images.mime_of(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    with pytest.raises(GatewayError, match="PNG, JPEG"):
        images.upload(b"plain text", "image")
    body = (b"--B\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nhello\r\n"
            b"--B\r\nContent-Disposition: form-data; name=\"image[]\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"
            + picture + b"\r\n--B--\r\n")
    fields = images.form_fields(body, b"multipart/form-data; boundary=B")
    assert fields == {"prompt": [b"hello"], "image[]": [picture]}
    assert images.form_fields(b"prompt=hi&n=2", b"application/x-www-form-urlencoded") == {"prompt": [b"hi"], "n": [b"2"]}
    with pytest.raises(GatewayError, match="multipart"):
        images.form_fields(b"{}", b"application/json")


def test_emulator_draws_a_real_png_shaped_by_the_ratio() -> None:
    blob = drawn.image_for("a red fox", {"aspectRatio": "16:9"})
    raw = base64.b64decode(blob["data"])
    assert raw.startswith(b"\x89PNG\r\n\x1a\n") and struct.unpack(">II", raw[16:24]) == (64, 36)
    start = raw.index(b"IDAT")
    pixels = zlib.decompress(raw[start + 4:start + 4 + struct.unpack(">I", raw[start - 4:start])[0]])
    assert pixels[1:4] == bytes(drawn.colour("a red fox"))
    assert drawn.image_for("a red fox", None) != drawn.image_for("a blue fox", None)
    assert drawn.dimensions("9:16") == (36, 64)
    with pytest.raises(GatewayError, match="aspect ratio"):
        drawn.validate_image_config({"aspectRatio": "7:1"}, "request.generationConfig.imageConfig")
    with pytest.raises(GatewayError, match="image size"):
        drawn.validate_image_config({"imageSize": "8k"}, "p")
    with pytest.raises(GatewayError, match="Unknown name"):
        drawn.validate_image_config({"quality": "hd"}, "p")


def test_stream_events() -> None:
    request = images.parse({"prompt": "x", "stream": True, "size": "1024x1024", "quality": "high"}, "m")
    assert request.stream
    raw = images.stream_events(request, [{"mimeType": "image/png", "data": "QUJD"}], 5.0, edit=False).decode()
    head, data = raw.strip().split("\n")
    event = json.loads(data[len("data: "):])
    assert head == "event: image_generation.completed" and event["type"] == "image_generation.completed"
    assert event["b64_json"] == "QUJD" and event["size"] == "1024x1024" and event["quality"] == "high"
    assert b"image_edit.completed" in images.stream_events(request, [{"mimeType": "image/png", "data": "A"}], 0, edit=True)
