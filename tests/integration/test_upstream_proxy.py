"""Upstream calls through an HTTP proxy: CONNECT tunnels, globally or per account, TLS inside the tunnel.

The proxy is a small CONNECT-only proxy written here; it records what it was
asked and the bytes it carried, so a test can see which account's calls went
through which proxy (plain http to the emulator is readable in the tunnel).
"""

from __future__ import annotations

import base64
import datetime
from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from treq.client import HTTPClient
from twisted.internet import reactor, ssl
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.web.client import HTTPConnectionPool
from twisted.web.iweb import IPolicyForHTTPS
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface import implementer

from gateway.upstream.proxy import proxy_agent
from tests.integration.harness import _close_connections as close_connections
from tests.integration.harness import accounts, body_json, start_stack, track_connections

HELLO = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
GENERATE = "/v1beta/models/gemini-3-flash:generateContent"


class _Pipe(Protocol):
    def __init__(self, peer: "_Connect") -> None:
        self.peer = peer

    def dataReceived(self, data: bytes) -> None:
        self.peer.transport.write(data)

    def connectionLost(self, reason: Any) -> None:
        self.peer.transport.loseConnection()


class _Connect(Protocol):
    def __init__(self, proxy: "ConnectProxy") -> None:
        self.proxy = proxy
        self.buffer = b""
        self.upstream: _Pipe | None = None
        self.lost: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.proxy.open.add(self)

    def dataReceived(self, data: bytes) -> None:
        if self.upstream is not None:
            self.proxy.carried += data
            self.upstream.transport.write(data)
            return
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            return
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        self.proxy.connects.append((method, target, headers))
        if self.proxy.required_auth and headers.get("proxy-authorization") != self.proxy.required_auth:
            self.transport.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            self.transport.loseConnection()
            return
        host, _, port = target.rpartition(":")
        self.transport.pauseProducing()
        d = connectProtocol(TCP4ClientEndpoint(reactor, host, int(port)), _Pipe(self))

        def connected(pipe: _Pipe) -> None:
            self.upstream = pipe
            self.transport.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.transport.resumeProducing()
            if rest:
                self.dataReceived(rest)

        def failed(_: Any) -> None:
            self.transport.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            self.transport.loseConnection()

        d.addCallbacks(connected, failed)

    def connectionLost(self, reason: Any) -> None:
        self.proxy.open.discard(self)
        if self.upstream is not None:
            self.upstream.transport.loseConnection()
        self.lost.callback(None)


class ConnectProxy(Factory):
    def __init__(self, required_auth: str | None = None) -> None:
        self.required_auth = required_auth
        self.connects: list[tuple[str, str, dict[str, str]]] = []
        self.carried = b""
        self.open: set[_Connect] = set()
        self.port = reactor.listenTCP(0, self, interface="127.0.0.1")

    def buildProtocol(self, addr: Any) -> _Connect:
        return _Connect(self)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port.getHost().port}"

    async def stop(self) -> None:
        await self.port.stopListening()
        waits = [c.lost for c in self.open]
        for c in list(self.open):
            c.transport.abortConnection()
        await DeferredList(waits)


@pytest_twisted.ensureDeferred
async def test_upstream_calls_go_through_the_configured_proxy(tmp_path: Path) -> None:
    proxy = ConnectProxy()
    try:
        async with start_stack(tmp_path, accounts(1), upstream={"proxy": proxy.url}) as stack:
            response = await stack.post(GENERATE, HELLO)
            assert response.code == 200, await treq.content(response)
            await treq.content(response)
            emulator = stack.emulator.url.split("://", 1)[1]
            assert {(m, t) for m, t, _ in proxy.connects} == {("CONNECT", emulator)}
            assert b"POST /token " in proxy.carried and b"/v1internal:generateContent" in proxy.carried
            await stack.gateway.close()
    finally:
        await proxy.stop()


@pytest_twisted.ensureDeferred
async def test_each_account_can_have_a_proxy_of_its_own(tmp_path: Path) -> None:
    shared, own = ConnectProxy(), ConnectProxy()
    try:
        settings = {"upstream": {"proxy": shared.url, "account_proxies": (("user1@example.com", own.url),)},
                    "accounts": {"selection": "round-robin"}}
        async with start_stack(tmp_path, accounts(2), **settings) as stack:
            for i in range(10):
                response = await stack.post(GENERATE, {"contents": [{"role": "user", "parts": [{"text": f"Hello {i}"}]}]})
                assert response.code == 200, await treq.content(response)
                await treq.content(response)
                if {r["email"] for r in stack.emulator.state.requests("generateContent")} == {"user0@example.com", "user1@example.com"}:
                    break
            assert {r["email"] for r in stack.emulator.state.requests("generateContent")} == {"user0@example.com", "user1@example.com"}
            # The token endpoint form names the account: each refresh went through its account's proxy.
            assert b"refresh-1" in own.carried and b"refresh-0" not in own.carried
            assert b"refresh-0" in shared.carried and b"refresh-1" not in shared.carried
            await stack.gateway.close()
    finally:
        await shared.stop()
        await own.stop()


@pytest_twisted.ensureDeferred
async def test_a_proxy_that_refuses_makes_upstream_unreachable_without_leaking_its_password(tmp_path: Path) -> None:
    proxy = ConnectProxy(required_auth="Basic " + base64.b64encode(b"gw:right-password").decode())
    try:
        wrong = proxy.url.replace("http://", "http://gw:wrong-password-77@")
        async with start_stack(tmp_path, accounts(1), upstream={"proxy": wrong}) as stack:
            response = await stack.post(GENERATE, HELLO)
            body = await body_json(response)
            assert response.code == 503 and body["error"]["status"] == "UNAVAILABLE"
            assert "wrong-password-77" not in repr(body)
            sent = {h.get("proxy-authorization") for _, _, h in proxy.connects}
            assert sent == {"Basic " + base64.b64encode(b"gw:wrong-password-77").decode()}
        right = proxy.url.replace("http://", "http://gw:right-password@")
        async with start_stack(tmp_path, accounts(1), upstream={"proxy": right}) as stack:
            response = await stack.post(GENERATE, HELLO)
            assert response.code == 200, await treq.content(response)
            await treq.content(response)
            await stack.gateway.close()
    finally:
        await proxy.stop()


def self_signed(hostname: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@implementer(IPolicyForHTTPS)
class TrustOnly:
    def __init__(self, cert_pem: bytes) -> None:
        self.root = ssl.Certificate.loadPEM(cert_pem)

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        return ssl.optionsForClientTLS(hostname.decode(), trustRoot=self.root)


class _Listening:
    def __init__(self, factory: Any) -> None:
        self.factory = factory


class Hello(Resource):
    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        return b"hello over tls"


@pytest_twisted.ensureDeferred
async def test_https_goes_through_the_tunnel_with_tls_inside(tmp_path: Path) -> None:
    cert_pem, key_pem = self_signed("localhost")
    server_options = ssl.PrivateCertificate.loadPEM(cert_pem + key_pem).options()
    site = Site(Hello())
    track_connections(site)
    tls_port = reactor.listenSSL(0, site, server_options, interface="127.0.0.1")
    proxy = ConnectProxy()
    pool = HTTPConnectionPool(reactor, persistent=False)
    try:
        agent = proxy_agent(reactor, proxy.url, pool, 5.0, tls_policy=TrustOnly(cert_pem))
        client = HTTPClient(agent)
        port = tls_port.getHost().port
        response = await client.get(f"https://localhost:{port}/")
        assert await treq.content(response) == b"hello over tls"
        assert [(m, t) for m, t, _ in proxy.connects] == [("CONNECT", f"localhost:{port}")]
        assert proxy.carried and b"GET /" not in proxy.carried  # the proxy saw only ciphertext
        # A certificate the client does not trust is refused inside the tunnel too.
        untrusted = HTTPClient(proxy_agent(reactor, proxy.url, pool, 5.0))
        try:
            await untrusted.get(f"https://localhost:{port}/")
        except Exception as e:  # ResponseNeverReceived wrapping an SSL verification error
            assert "certificate" in repr(e).lower() or "SSL" in repr(e)
        else:
            raise AssertionError("a self-signed certificate was accepted by the default policy")
    finally:
        await pool.closeCachedConnections()
        await proxy.stop()
        await tls_port.stopListening()
        await close_connections(_Listening(site))  # listenSSL's factory wraps the site
