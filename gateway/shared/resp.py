"""A small Redis client over Twisted: RESP2 framing, one pipelined connection, a deadline on every call.

Why our own (about 200 lines) rather than txredisapi: the gateway needs only
a handful of commands, a hard per-call deadline that never leaves a request
waiting, a client that fails fast while Redis is down and reconnects in the
background, and EVALSHA with NOSCRIPT reload; those are the parts a general
client leaves to the caller anyway. The framing (``encode``, ``Parser``) is
pure and unit-tested; the Twisted part is a thin protocol plus ``RedisClient``.
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

import attrs
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

log = Logger()


class RedisError(Exception):
    """An error reply from Redis (``-ERR …``, ``-NOSCRIPT …``)."""


class RedisUnavailable(Exception):
    """Redis could not be reached, or did not answer within the deadline."""


# ---------------------------------------------------------------- pure framing

def encode(*args: Any) -> bytes:
    """One command as a RESP array of bulk strings (ints, floats and str are sent as text)."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, float):
            data = repr(arg).encode()
        else:
            data = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Incomplete(Exception):
    pass


class Parser:
    """Incremental RESP2 reader: ``feed`` bytes, get every complete reply (RedisError for ``-``)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[Any]:
        self._buffer += data
        replies = []
        while self._buffer:
            try:
                reply, used = self._parse(0)
            except _Incomplete:
                break
            self._buffer = self._buffer[used:]
            replies.append(reply)
        return replies

    def _line(self, at: int) -> tuple[bytes, int]:
        end = self._buffer.find(b"\r\n", at)
        if end < 0:
            raise _Incomplete()
        return self._buffer[at:end], end + 2

    def _parse(self, at: int) -> tuple[Any, int]:
        if at >= len(self._buffer):
            raise _Incomplete()
        kind = self._buffer[at:at + 1]
        line, after = self._line(at + 1)
        if kind == b"+":
            return line.decode(), after
        if kind == b"-":
            return RedisError(line.decode(errors="replace")), after
        if kind == b":":
            return int(line), after
        if kind == b"$":
            size = int(line)
            if size < 0:
                return None, after
            if len(self._buffer) < after + size + 2:
                raise _Incomplete()
            return self._buffer[after:after + size], after + size + 2
        if kind == b"*":
            count = int(line)
            if count < 0:
                return None, after
            items = []
            for _ in range(count):
                item, after = self._parse(after)
                items.append(item)
            return items, after
        raise ValueError(f"not a RESP reply: {kind!r}")


@attrs.frozen
class RedisURL:
    """``redis://[user:password@]host[:port][/db]``; ``rediss://`` for TLS."""

    host: str
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False

    def safe(self) -> str:
        """For logs and /admin: never the password."""
        return f"{'rediss' if self.tls else 'redis'}://{self.host}:{self.port}/{self.db}"


def parse_url(url: str) -> RedisURL:
    """Validate a Redis URL; ValueError says what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"must start with redis:// or rediss://, got {url.split(':', 1)[0]!r}")
    if not parts.hostname:
        raise ValueError("names no host")
    db_text = parts.path.strip("/") or "0"
    if not db_text.isdigit():
        raise ValueError(f"database must be a number, got {db_text!r}")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError("has a port that is not a number") from None
    return RedisURL(parts.hostname, port, int(db_text), unquote(parts.username) if parts.username else None,
                    unquote(parts.password) if parts.password is not None else None, parts.scheme == "rediss")


def sha1(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


# ---------------------------------------------------------------- Twisted edge

class RespProtocol(Protocol):
    """Pipelined commands: replies arrive in order, each fires the oldest waiting Deferred."""

    def __init__(self) -> None:
        self._parser = Parser()
        self._waiting: deque[Deferred[Any]] = deque()
        self.lost: Deferred[None] = Deferred()

    def command(self, *args: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self._waiting.append(d)
        self.transport.write(encode(*args))  # type: ignore[union-attr]
        return d

    def dataReceived(self, data: bytes) -> None:
        try:
            replies = self._parser.feed(data)
        except ValueError:
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        for reply in replies:
            if not self._waiting:
                continue
            d = self._waiting.popleft()
            if d.called:  # timed out (cancelled) while waiting: the reply is dropped, order is kept
                continue
            if isinstance(reply, RedisError):
                d.errback(reply)
            else:
                d.callback(reply)

    def connectionLost(self, reason: Any = None) -> None:
        waiting, self._waiting = self._waiting, deque()
        for d in waiting:
            if not d.called:
                d.errback(RedisUnavailable("connection to Redis lost"))
        if not self.lost.called:
            self.lost.callback(None)


class RedisClient:
    """Calls Redis with a deadline; while Redis is unreachable, calls fail at once and a probe retries.

    ``up`` and ``error`` say how it is going (for /admin, metrics and the
    log); ``on_up`` listeners run each time the connection comes (back), so
    state can be rebuilt after Redis restarted empty.
    """

    def __init__(self, reactor: Any, url: RedisURL, deadline: float, retry_seconds: float = 1.0) -> None:
        self.reactor = reactor
        self.url = url
        self.deadline = deadline
        self.retry_seconds = retry_seconds
        self.up = False
        self.error: str | None = "not connected yet"
        self.on_up: list[Callable[[], Any]] = []
        self.on_down: list[Callable[[str], Any]] = []
        self._protocol: RespProtocol | None = None
        self._connecting: Deferred[RespProtocol] | None = None
        self._probe: Any = None
        self._stopped = False
        self._initial = True  # until the first connection attempt has finished
        self.scripts_reloaded = 0
        self._loaded: set[str] = set()

    # -- connection --

    def _endpoint(self) -> Any:
        from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
        from twisted.internet.ssl import optionsForClientTLS

        endpoint = HostnameEndpoint(self.reactor, self.url.host, self.url.port, timeout=max(1, int(self.deadline + 0.999)))
        if self.url.tls:
            endpoint = wrapClientTLS(optionsForClientTLS(self.url.host), endpoint)
        return endpoint

    async def _connect(self) -> RespProtocol:
        d = self._endpoint().connect(Factory.forProtocol(RespProtocol))
        d.addTimeout(self.deadline, self.reactor)
        try:
            proto: RespProtocol = await d
        except Exception as e:
            raise RedisUnavailable(f"cannot connect to {self.url.safe()}: {type(e).__name__}") from None
        try:
            if self.url.password is not None:
                auth = (self.url.username, self.url.password) if self.url.username else (self.url.password,)
                await self._timed(proto.command("AUTH", *auth))
            if self.url.db:
                await self._timed(proto.command("SELECT", self.url.db))
            await self._timed(proto.command("PING"))  # a stopped server still accepts connections: ask it
        except defer.TimeoutError:
            proto.transport.abortConnection()  # type: ignore[union-attr]
            raise RedisUnavailable(f"{self.url.safe()} accepted the connection but did not answer within {self.deadline:g}s") from None
        except RedisError as e:
            proto.transport.loseConnection()  # type: ignore[union-attr]
            raise RedisUnavailable(f"Redis refused the login: {e}") from None
        proto.lost.addCallback(lambda _: self._lost(proto))
        return proto

    def _timed(self, d: Deferred[Any]) -> Deferred[Any]:
        d.addTimeout(self.deadline, self.reactor)
        return d

    def _lost(self, proto: RespProtocol) -> None:
        if self._protocol is proto:
            self._protocol = None
            self._went_down("connection lost")

    def _went_down(self, why: str) -> None:
        self.error = why
        if self.up:
            self.up = False
            log.warn("Shared state: Redis at {url} is unreachable ({why}); serving from this instance's local state "
                     "until it returns", url=self.url.safe(), why=why)
            for listener in list(self.on_down):
                listener(why)
        if self._protocol is not None:
            self._protocol.transport.loseConnection()  # type: ignore[union-attr]
            self._protocol = None
        self._schedule_probe()

    def _schedule_probe(self) -> None:
        if self._stopped or (self._probe is not None and self._probe.active()):
            return
        self._probe = self.reactor.callLater(self.retry_seconds, lambda: defer.ensureDeferred(self.connect()))

    async def connect(self) -> bool:
        """Connect now (start-up, and the probe while down); True when Redis answers."""
        if self._protocol is not None:
            return True
        if self._connecting is None:
            self._connecting = defer.ensureDeferred(self._connect())
        connecting = self._connecting
        try:
            proto = await connecting
        except RedisUnavailable as e:
            self._connecting = None
            self._initial = False
            self.up = False
            self.error = str(e)
            self._schedule_probe()
            return False
        finally:
            if self._connecting is connecting:
                self._connecting = None
        self._initial = False
        if self._stopped:
            proto.transport.loseConnection()  # type: ignore[union-attr]
            return False
        if self._protocol is None:
            self._protocol = proto
            came_back = not self.up
            self.up = True
            self.error = None
            if came_back:
                log.info("Shared state: Redis at {url} answers; instances share pool state", url=self.url.safe())
                for listener in list(self.on_up):
                    defer.maybeDeferred(listener).addErrback(lambda f: log.failure("rebuilding shared state", f))
        return True

    def stop(self) -> None:
        self._stopped = True
        if self._probe is not None and self._probe.active():
            self._probe.cancel()
        if self._protocol is not None:
            self._protocol.transport.loseConnection()  # type: ignore[union-attr]
            self._protocol = None

    # -- calls --

    async def call(self, *args: Any) -> Any:
        """One command; RedisError for an error reply, RedisUnavailable when down or past the deadline."""
        proto = self._protocol
        if proto is None and self._initial and not self._stopped:
            await self.connect()  # the very first connection is worth its deadline; a probe while down is not
            proto = self._protocol
        if proto is None:
            raise RedisUnavailable(self.error or "Redis is not connected")
        d = proto.command(*args)
        d.addTimeout(self.deadline, self.reactor)
        try:
            return await d
        except defer.TimeoutError:
            self._went_down(f"no answer within {self.deadline:g}s")
            raise RedisUnavailable(f"Redis did not answer within {self.deadline:g}s") from None
        except RedisUnavailable as e:
            self._went_down(str(e))
            raise

    async def script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA, loading the script again when Redis answers NOSCRIPT (restart, SCRIPT FLUSH)."""
        digest = sha1(source)
        try:
            return await self.call("EVALSHA", digest, len(keys), *keys, *args)
        except RedisError as e:
            if not str(e).startswith("NOSCRIPT"):
                raise
        if digest in self._loaded:
            self.scripts_reloaded += 1  # Redis lost it: restarted, or SCRIPT FLUSH
        loaded = await self.call("SCRIPT", "LOAD", source)
        self._loaded.add(digest)
        return await self.call("EVALSHA", loaded.decode() if isinstance(loaded, bytes) else loaded, len(keys), *keys, *args)
