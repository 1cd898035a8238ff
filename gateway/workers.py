"""``[server] workers = N``: one parent holds the listening sockets, N ``twist`` workers serve them.

The parent binds every listener once (so privileged ports, port 0 and systemd
socket activation work as with one process) and never accepts: TCP listeners
get one ``SO_REUSEPORT`` socket per worker slot, so the kernel spreads
connections evenly; unix and systemd sockets are shared by all workers. A
worker is the ordinary gateway (``twist antigravity-gateway …``) told by
``AGW_WORKER_FDS`` to adopt its inherited sockets instead of listening. The
parent restarts a worker that dies, forwards SIGHUP, drains all on SIGTERM,
and gives up (exit status 1) when workers keep dying.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections import deque
from typing import Any

import attrs
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, ProcessProtocol
from twisted.logger import Logger

log = Logger()

ENV_FDS = "AGW_WORKER_FDS"
ENV_INDEX = "AGW_WORKER_INDEX"
FIRST_FD = 3
DEATHS_ALLOWED = 5  # worker deaths within DEATH_WINDOW before the parent gives up
DEATH_WINDOW = 60.0
RESTART_DELAY = 0.5


def worker_count(value: Any, cores: int | None = None) -> int:
    """``[server] workers``: a positive integer, or ``"auto"`` for one per core."""
    if value == "auto":
        return max(1, cores if cores is not None else (os.cpu_count() or 1))
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'must be a positive integer or "auto", got {value!r}')
    return value


@attrs.frozen
class TcpPlan:
    """A TCP listener bound once per worker slot with SO_REUSEPORT."""

    family: int
    host: str
    port: int
    backlog: int = 511


def tcp_plan(description: str) -> TcpPlan | None:
    """``tcp:PORT[:interface=X][:backlog=N]`` / ``tcp6:…`` → a plan; other kinds (unix, systemd) → None."""
    from gateway.config import _endpoint_params

    kind, _, rest = description.partition(":")
    kind = kind.strip().lower()
    if kind not in ("tcp", "tcp6"):
        return None
    params = _endpoint_params(rest)
    port_text = params.get("port") or rest.split(":", 1)[0]
    family = socket.AF_INET6 if kind == "tcp6" else socket.AF_INET
    host = params.get("interface", "::" if family == socket.AF_INET6 else "0.0.0.0")
    return TcpPlan(family, host, int(port_text), int(params.get("backlog", 511)))


def refuse_for_workers(description: str) -> str | None:
    """Why an endpoint cannot be shared with workers (None: it can)."""
    kind = description.partition(":")[0].strip().lower()
    if kind in ("unix", "systemd", "tcp", "tcp6"):
        return None
    if kind in ("ssl", "tls"):
        return "TLS listeners cannot be handed to workers: terminate TLS in front, or use workers = 1"
    return f"endpoint kind {kind!r} cannot be handed to workers (tcp, tcp6, unix and systemd can)"


def bind_tcp(plan: TcpPlan, port: int | None = None) -> socket.socket:
    sock = socket.socket(plan.family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if plan.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((plan.host, plan.port if port is None else port))
    sock.listen(plan.backlog)
    sock.setblocking(False)
    return sock


def encode_fds(entries: list[tuple[int, int, str]]) -> str:
    """(child fd, address family, role) → ``AGW_WORKER_FDS`` (role: api | metrics)."""
    return ",".join(f"{fd}:{family}:{role}" for fd, family, role in entries)


def decode_fds(text: str) -> list[tuple[int, int, str]]:
    out = []
    for item in filter(None, text.split(",")):
        fd, family, role = item.split(":")
        out.append((int(fd), int(family), role))
    return out


class Deaths:
    """Worker deaths in a sliding window: past the limit the parent stops trying."""

    def __init__(self, allowed: int = DEATHS_ALLOWED, window: float = DEATH_WINDOW) -> None:
        self.allowed = allowed
        self.window = window
        self._times: deque[float] = deque()

    def record(self, now: float) -> bool:
        """Count one death; True when that is too many (give up)."""
        self._times.append(now)
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()
        return len(self._times) > self.allowed


class _Worker(ProcessProtocol):
    def __init__(self, supervisor: "Supervisor", index: int) -> None:
        self.supervisor = supervisor
        self.index = index
        self.ended: Deferred[None] = Deferred()

    def processEnded(self, reason: Any) -> None:
        code = getattr(reason.value, "exitCode", None)
        sig = getattr(reason.value, "signal", None)
        self.ended.callback(None)
        self.supervisor.ended(self, code, sig)


class Supervisor(Service):
    """The parent: binds, spawns, restarts, forwards signals, drains."""

    name = "antigravity-gateway-workers"

    def __init__(self, settings: Any, count: int, argv: list[str], reactor: Any = None,
                 executable: str | None = None) -> None:
        self.settings = settings
        self.count = count
        self.argv = argv
        self._reactor = reactor
        self.executable = executable or sys.executable
        self.workers: dict[int, _Worker] = {}
        self.transports: dict[int, Any] = {}
        self.deaths = Deaths()
        self.stopping = False
        self.gave_up = False
        self.spawned = 0
        self._slots: list[list[tuple[int, int, str]]] = []  # per worker: (parent fd, family, role)
        self._keep: list[Any] = []  # sockets and ports the parent holds open
        self._previous_hup: Any = None

    @property
    def reactor(self) -> Any:
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor
        return self._reactor

    def startService(self) -> None:
        super().startService()
        try:
            self._bind()
        except OSError as e:
            log.critical("antigravity-gateway cannot listen: {error}", error=str(e))
            print(f"antigravity-gateway: cannot listen: {e}", file=sys.stderr)
            self.reactor.callWhenRunning(self.reactor.stop)
            return
        for index in range(self.count):
            self._spawn(index)
        self._install_signals()
        log.info("antigravity-gateway supervising {n} workers", n=self.count)

    def _bind(self) -> None:
        from twisted.internet.endpoints import serverFromString

        self._slots = [[] for _ in range(self.count)]
        roles = [(d, "api") for d in self.settings.server.listen] + [(d, "metrics") for d in self.settings.metrics.listen]
        for description, role in roles:
            plan = tcp_plan(description)
            if plan is not None:
                port = None
                for index in range(self.count):
                    sock = bind_tcp(plan, port)
                    port = sock.getsockname()[1]
                    self._keep.append(sock)
                    self._slots[index].append((sock.fileno(), plan.family, role))
                log.info("antigravity-gateway {role} listening on {where} ({n} workers)", role=role,
                         where=f"{plan.host}:{port}", n=self.count)
                continue
            listening = serverFromString(self.reactor, description).listen(Factory())
            result: list[Any] = []
            listening.addBoth(result.append)
            if not result or not hasattr(result[0], "fileno"):
                raise OSError(f"cannot listen on {description}: {getattr(result[0], 'value', result[0]) if result else 'pending'}")
            port_obj = result[0]
            port_obj.stopReading()  # the parent holds the socket; the workers accept
            self._keep.append(port_obj)
            family = port_obj.addressFamily
            for index in range(self.count):
                self._slots[index].append((port_obj.fileno(), family, role))
            log.info("antigravity-gateway {role} listening on {where} ({n} workers)", role=role, where=description, n=self.count)

    def _spawn(self, index: int) -> None:
        entries = []
        child_fds: dict[int, Any] = {0: "w", 1: 1, 2: 2}
        for offset, (parent_fd, family, role) in enumerate(self._slots[index]):
            child_fds[FIRST_FD + offset] = parent_fd
            entries.append((FIRST_FD + offset, family, role))
        env = dict(os.environ)
        for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
            env.pop(name, None)
        env[ENV_FDS] = encode_fds(entries)
        env[ENV_INDEX] = str(index)
        worker = _Worker(self, index)
        self.workers[index] = worker
        self.transports[index] = self.reactor.spawnProcess(worker, self.executable, [self.executable, *self.argv],
                                                            env=env, childFDs=child_fds)
        self.spawned += 1

    def ended(self, worker: _Worker, code: int | None, sig: int | None) -> None:
        if self.workers.get(worker.index) is worker:
            del self.workers[worker.index]
            self.transports.pop(worker.index, None)
        if self.stopping:
            return
        log.warn("antigravity-gateway worker {index} ended (status {code}, signal {sig}); starting another",
                 index=worker.index, code=code, sig=sig)
        if self.deaths.record(self.reactor.seconds()):
            self.gave_up = True
            log.critical("antigravity-gateway: workers keep dying ({n} in {w:g} s); giving up",
                         n=self.deaths.allowed + 1, w=self.deaths.window)
            self.reactor.callLater(0, self._give_up)
            return
        self.reactor.callLater(RESTART_DELAY, self._respawn, worker.index)

    def _respawn(self, index: int) -> None:
        if not self.stopping and index not in self.workers:
            self._spawn(index)

    def _give_up(self) -> None:
        d = self._stop_workers()
        d.addBoth(lambda _: os._exit(1))  # twist has no way to exit non-zero from a service

    def _install_signals(self) -> None:
        if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
            return

        def hangup(signum: int, frame: Any) -> None:
            self.reactor.callFromThread(self.signal_workers, signal.SIGHUP)

        self._previous_hup = signal.signal(signal.SIGHUP, hangup)

    def signal_workers(self, number: int) -> None:
        for transport in list(self.transports.values()):
            try:
                transport.signalProcess(number)
            except Exception:  # already gone
                pass

    def _stop_workers(self) -> Deferred[Any]:
        self.stopping = True
        waiting = [w.ended for w in self.workers.values()]
        self.signal_workers(signal.SIGTERM)  # each drains as a single gateway does
        return defer.DeferredList(waiting)

    @defer.inlineCallbacks
    def stopService(self) -> Any:
        """SIGTERM: every worker drains (stops accepting, finishes requests), then the parent closes its sockets."""
        super().stopService()
        if self._previous_hup is not None:
            signal.signal(signal.SIGHUP, self._previous_hup)
        log.info("antigravity-gateway stopping {n} workers", n=len(self.workers))
        yield self._stop_workers()
        for kept in self._keep:
            if isinstance(kept, socket.socket):
                kept.close()
            else:
                yield kept.stopListening()
        log.info("antigravity-gateway workers stopped")


def inherited_endpoints(reactor: Any, text: str) -> tuple[list[Any], list[Any]]:
    """In a worker: (api endpoints, metrics endpoints) adopting the parent's sockets."""
    from twisted.internet.endpoints import AdoptedStreamServerEndpoint

    api, metrics = [], []
    for fd, family, role in decode_fds(text):
        endpoint = AdoptedStreamServerEndpoint(reactor, fd, family)
        (metrics if role == "metrics" else api).append(endpoint)
    return api, metrics


def worker_argv(argv: list[str]) -> list[str]:
    """The worker's command line: the parent's, run through ``twist`` (``--workers`` dropped)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        out.append(arg)
    return out

