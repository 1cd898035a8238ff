"""``twist antigravity-emulator``: options and the service that runs the emulator.

Listens on ``--listen`` endpoints (or ``--port`` on loopback, default 8046);
on stop, closes the ports, then aborts open connections so stalled streams
never hold shutdown.
"""

from __future__ import annotations

from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService, MultiService
from twisted.internet.defer import Deferred
from twisted.python import usage

from gateway.emulator.state import EmulatorState, Settings, StateError, demo_accounts, load_seed

DEFAULT_PORT = 8046


#: How the emulated model answers, shown unwrapped at the end of ``--help``.
ANSWERS_HELP = (
    "How the model answers (deterministic; details in docs/emulator.md):\n"
    "  text      'Echo: <last user text>'; after function results 'Results: NAME={...}'.\n"
    "  tools     calls a declared tool when a word of its name is in the user text, or on\n"
    "            'call function NAME'; mode ANY always calls one (allowedFunctionNames\n"
    "            respected); arguments validate against the tool's schema; values come\n"
    "            from the text (`backquoted` snippets, numbers, places, enum words).\n"
    "  JSON      responseMimeType application/json: schema-valid JSON for responseSchema /\n"
    "            responseJsonSchema, else a JSON object.\n"
    "  thinking  thinkingConfig.includeThoughts on a thinking model: a thought part and a\n"
    "            signature.\n"
    "  search    a googleSearch tool: a grounded answer with groundingMetadata (2 sources).\n"
    "  slowly    'stream N events' in the prompt, 'reply N words', --event-delay, or\n"
    "            POST /_emulator/settings {\"event_delay\": 0.5}.\n"
    "  failures  POST /_emulator/faults {\"kind\": \"error\", \"status\": 429, ...}: kinds error,\n"
    "            delay, cut, stall, stream_error, invalid_grant, reset."
)


class Options(usage.Options):
    """Command line of ``twist antigravity-emulator``."""

    synopsis = "[--port N | --listen ENDPOINT ...] [--seed accounts.json] [options]"
    longdesc = (
        "A strict emulator of Cloud Code v1internal (under /v1internal:… and /{host}/v1internal:…), "
        "Google's OAuth token endpoint (/token, /oauth2/v2/userinfo, /o/oauth2/v2/auth) and a "
        "control API under /_emulator/ for tests, demos and benchmarks."
    )
    optParameters = [
        ["port", "p", None, f"TCP port on 127.0.0.1 (same as --listen tcp:N:interface=127.0.0.1; default {DEFAULT_PORT})"],
        ["seed", None, None, 'JSON file {"accounts": [{"email", "refresh_token", "project_id", "tier", "ineligible"}]}'],
        ["event-delay", None, "0.02", "Seconds between stream events (0: no delay, for benchmarks)"],
        ["token-lifetime", None, "3599", "Access token lifetime in seconds (expires_in)"],
        ["client-id", None, "emulator-client-id", "OAuth client id the token endpoint requires"],
        ["client-secret", None, "emulator-client-secret", "OAuth client secret the token endpoint requires"],
        ["stream-events", None, "5", "Events per streamed answer unless the prompt says 'stream N events'"],
        ["onboard-polls", None, "1", "Operation polls before onboardUser is done (0: done at once)"],
        ["demo-accounts", None, "0", "Also create N accounts userK@example.com / emu-refresh-K / emu-project-K"],
        ["max-recorded", None, "10000", "Requests kept for GET /_emulator/requests (0: none)"],
        ["min-client-version", None, "2.0.0", "Generation calls from older Antigravity User-Agents get 503 'no longer supported'"],
        ["manifest-version", None, "2.9.4", "version: served at /manifest/latest-arm64-mac.yml"],
    ]
    optFlags = [
        ["rotate-refresh-tokens", None, "Return a new refresh_token on every refresh (the old one dies)"],
        ["access-log", None, "Log every HTTP request"],
    ]

    def opt_version(self) -> None:
        """Print the emulator's (the gateway's) version and exit."""
        from gateway import __version__

        print(f"antigravity-emulator {__version__}")
        raise SystemExit(0)

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []

    def getUsage(self, width: int | None = None) -> str:
        return super().getUsage(width) + "\n" + ANSWERS_HELP + "\n"

    def opt_listen(self, endpoint: str) -> None:
        """Listen on a Twisted server endpoint string (repeatable), e.g. tcp:8046:interface=127.0.0.1"""
        self["listen"].append(endpoint)

    def postOptions(self) -> None:
        def number(name: str, kind: Any, minimum: float) -> Any:
            try:
                value = kind(self[name])
            except (TypeError, ValueError):
                raise usage.UsageError(f"--{name} must be a number") from None
            if value < minimum:
                raise usage.UsageError(f"--{name} must be >= {minimum}")
            return value

        self.settings = Settings(
            event_delay=number("event-delay", float, 0),
            token_lifetime=number("token-lifetime", int, 1),
            stream_events=number("stream-events", int, 1),
            onboard_polls=number("onboard-polls", int, 0),
            rotate_refresh_tokens=bool(self["rotate-refresh-tokens"]),
            client_id=self["client-id"],
            client_secret=self["client-secret"],
            max_recorded=number("max-recorded", int, 0),
        )
        try:
            self.settings.update({"min_client_version": self["min-client-version"], "manifest_version": self["manifest-version"]})
        except StateError as e:
            raise usage.UsageError(str(e)) from None
        self.accounts = list(demo_accounts(number("demo-accounts", int, 0)))
        if self["seed"]:
            try:
                self.accounts.extend(load_seed(self["seed"]))
            except StateError as e:
                raise usage.UsageError(str(e)) from None
        emails = [a.email for a in self.accounts]
        if len(set(emails)) != len(emails):
            raise usage.UsageError("duplicate account email (seed and demo accounts)")
        endpoints = list(self["listen"])
        if self["port"] is not None:
            endpoints.append(f"tcp:{number('port', int, 0)}:interface=127.0.0.1")
        if not endpoints:
            endpoints.append(f"tcp:{DEFAULT_PORT}:interface=127.0.0.1")
        self.endpoints = endpoints


class EmulatorService(MultiService):
    """Holds the state; stops listening first, then drops lingering connections."""

    def __init__(self, state: EmulatorState, factory: Any) -> None:
        super().__init__()
        self.state = state
        self.factory = factory

    def stopService(self) -> Deferred[None]:
        async def stop() -> None:
            await super(EmulatorService, self).stopService()
            await self.factory.close_all()

        return Deferred.fromCoroutine(stop())


def makeService(options: Options) -> IService:
    """Build the service ``twist`` runs (the reactor is imported only here)."""
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString

    from gateway.emulator.app import make_factory

    state = EmulatorState(options.accounts, options.settings, now=reactor.seconds)
    factory = make_factory(state, reactor, access_log=bool(options["access-log"]))
    service = EmulatorService(state, factory)
    for description in options.endpoints:
        StreamServerEndpointService(serverFromString(reactor, description), factory).setServiceParent(service)
    return service
