"""SSRF: image URLs in chat requests never reach loopback/private services, on any hop.

A loopback "internal service" counts every request it gets: by default the
gateway must refuse before connecting (the count stays 0), whatever the name
(127.0.0.1, localhost, an IPv4-mapped form) and also when a permitted server
redirects to it. ``[image_fetch] allow_networks`` lets an operator allow more.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site

from gateway.upstream.fetch import FetchPolicy, FetchRefused, SafeFetcher
from tests.integration.harness import accounts, start_stack

PIXEL = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


class Internal(Resource):
    """An internal service: a secret, an image, and redirects (to ``target``)."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.hits: list[bytes] = []
        self.target = b""

    def render_GET(self, request: Any) -> bytes:
        self.hits.append(request.path)
        if request.path == b"/secret.txt":
            request.setHeader(b"Content-Type", b"text/plain")
            return b"internal secret"
        if request.path == b"/pixel.png":
            request.setHeader(b"Content-Type", b"image/png")
            return PIXEL
        if request.path == b"/redirect":
            request.redirect(self.target)
            return b""
        if request.path == b"/loop":
            request.redirect(b"/loop")
            return b""
        request.setResponseCode(404)
        return b"no"


def _listen(interface: str) -> tuple[Any, Internal, str]:
    resource = Internal()
    port = reactor.listenTCP(0, Site(resource), interface=interface)
    return port, resource, f"http://{interface}:{port.getHost().port}"


def _chat(url: str) -> dict[str, Any]:
    return {"model": "gemini-3-flash", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": url}}]}]}


def _message(url: str) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": url}}, {"type": "text", "text": "what is this"}]}]}


@pytest_twisted.ensureDeferred
async def test_internal_addresses_are_never_fetched_through_either_door(tmp_path: Path) -> None:
    port, internal, base = _listen("127.0.0.1")
    loop_port = base.rsplit(":", 1)[1]
    try:
        async with start_stack(tmp_path, accounts(1)) as stack:
            for url in (base + "/secret.txt", base + "/pixel.png", f"http://localhost:{loop_port}/pixel.png",
                        f"http://[::ffff:127.0.0.1]:{loop_port}/pixel.png", f"http://0.0.0.0:{loop_port}/pixel.png"):
                for path, body, shape in (("/v1/chat/completions", _chat(url), "openai"), ("/v1/messages", _message(url), "anthropic")):
                    response = await stack.post(path, body)
                    document = json.loads(await treq.content(response))
                    assert response.code == 400, (url, document)
                    error = document["error"]
                    assert (document.get("type") == "error") == (shape == "anthropic")
                    assert "non-public address" in error["message"] or "could not be resolved" in error["message"], error
            assert internal.hits == []  # refused before connecting: nothing reached the service
            assert stack.emulator.state.requests("generateContent") == []
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_every_redirect_hop_is_checked_and_capped() -> None:
    allowed_port, allowed, allowed_base = _listen("127.0.0.2")
    port, internal, base = _listen("127.0.0.1")
    fetcher = SafeFetcher(reactor, FetchPolicy(allow_networks=("127.0.0.2/32",), max_redirects=2, timeout=5))
    try:
        # A permitted server redirecting to an internal one: the second hop is refused.
        allowed.target = (base + "/pixel.png").encode()
        try:
            await fetcher.fetch(allowed_base + "/redirect")
            raise AssertionError("fetched through a redirect to loopback")
        except FetchRefused as e:
            assert "non-public address" in str(e)
        assert internal.hits == [] and allowed.hits == [b"/redirect"]
        # Redirect loops stop at max_redirects; non-images are refused by Content-Type.
        try:
            await fetcher.fetch(allowed_base + "/loop")
            raise AssertionError("followed redirects without a cap")
        except FetchRefused as e:
            assert "redirected more than 2 times" in str(e)
        allowed.target = b"/secret.txt"
        try:
            await fetcher.fetch(allowed_base + "/redirect")
            raise AssertionError("fetched a text/plain answer as an image")
        except FetchRefused as e:
            assert "not an image" in str(e)
        # What the operator allows is fetched.
        allowed.target = b"/pixel.png"
        mime, body = await fetcher.fetch(allowed_base + "/redirect")
        assert mime == "image/png" and body == PIXEL
    finally:
        await allowed_port.stopListening()
        await port.stopListening()
