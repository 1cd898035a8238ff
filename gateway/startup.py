"""What the gateway says about itself when it starts, and when it cannot.

Pure: the summary block (version, listeners, auth, store, accounts usable and
why not, the client version sent upstream, plugins) and the one line a failed
start-up prints, built from plain facts that ``gateway.tap`` gathers.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from gateway import __version__


def client_version(settings: Any, version: Any = None) -> str:
    """The client identity sent upstream (User-Agent); the one place to read it for display.

    ``version`` is the live ``gateway.upstream.version.ClientVersion`` when the
    gateway runs one; without it, the ``[upstream] user_agent`` setting.
    """
    if version is None:
        return str(settings.upstream.user_agent)
    source = f"manifest {version.fetched}" if version.fetched else f"floor {version.floor}, manifest not read yet"
    return f"{version.user_agent()} ({source})"


def account_reason(account: Any, now: float) -> str | None:
    """Why an account cannot serve now (None: usable)."""
    if account.disabled:
        return "disabled: " + (account.disabled_reason or "no reason given")
    if account.cooldown_until > now:
        return f"cooling for {int(account.cooldown_until - now) + 1} s: " + (account.cooldown_reason or "no reason given")
    return None


def accounts_lines(accounts: Sequence[Any], now: float, accounts_cmd: str) -> list[str]:
    """``accounts: U usable of T`` and one line per unusable account, saying what to do when none is usable."""
    reasons = [(a.email, account_reason(a, now)) for a in accounts]
    usable = sum(1 for _, r in reasons if r is None)
    if not accounts:
        return [f"accounts:  0 accounts: run `{accounts_cmd} add` (or `{accounts_cmd} import PATH`) to add one"]
    head = f"accounts:  {usable} usable of {len(accounts)}"
    if usable == 0:
        head += f": every account is out of rotation; `{accounts_cmd} enable EMAIL` puts one back"
    return [head] + [f"           {email}: {reason}" for email, reason in reasons if reason is not None]


def auth_text(mode: str, keys: int, strategy: str) -> str:
    if mode == "off":
        return "off (any key accepted; loopback listeners only)"
    scope = "every route" if mode == "strict" else "every route except /healthz"
    return f"{mode}: {strategy} with {keys} key{'s' if keys != 1 else ''}, on {scope}"


def summary_lines(
    *,
    listen: Iterable[str],
    metrics_listen: Iterable[str],
    auth: str,
    store: str,
    accounts: Sequence[str],
    client: str,
    plugins: Mapping[str, str],
    config_source: str | None,
    version: str = __version__,
) -> list[str]:
    """The start-up block, one fact per line, aligned for a person reading a terminal or journal."""
    lines = [f"antigravity-gateway {version} started"]
    lines.append(f"config:    {config_source or 'none (built-in defaults)'}")
    for where in listen:
        lines.append(f"listening: {where}")
    for where in metrics_listen:
        lines.append(f"metrics:   {where}")
    lines.append(f"auth:      {auth}")
    lines.append(f"store:     {store}")
    lines.extend(accounts)
    lines.append(f"upstream client: {client}")
    lines.append("plugins:   " + ", ".join(f"{k}={v}" for k, v in plugins.items()))
    return lines


def failure_cause(error: BaseException) -> str:
    """The cause of a failed listen in a few words (``Address already in use``), not a repr."""
    socket_error = getattr(error, "socketError", None)
    if socket_error is not None:
        return getattr(socket_error, "strerror", None) or str(socket_error)
    return str(error) or type(error).__name__


def listen_failure_line(description: str, error: BaseException) -> str:
    """The one line a gateway that cannot listen prints before it exits with status 1."""
    hint = ""
    cause = failure_cause(error)
    if "in use" in cause.lower():
        hint = " (another process has it: stop that one, or choose another address with --port or [server] listen)"
    elif "permission" in cause.lower() or "access" in cause.lower():
        hint = " (ports below 1024 need privileges: choose a port above 1024)"
    return f"antigravity-gateway: cannot listen on {description}: {cause}{hint}"
