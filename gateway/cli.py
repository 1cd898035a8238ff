"""``antigravity-gateway accounts …``: add, import, inspect and retire accounts without editing JSON.

Works on the same store the server uses (``--config`` like the server, or
``--accounts PATH``); every change goes through the store's lock and
re-reads it, so a running gateway keeps its own updates and picks these up
at its next request. ``add`` runs the OAuth installed-app flow
(``gateway.authorize``); ``refresh`` talks to Cloud Code with the gateway's
own Twisted parts. Exit status: 0 done, 1 failed, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import webbrowser
from typing import Any, Callable, Sequence

import attrs

from gateway import __version__, config
from gateway.commands import accounts_command
from gateway.config import ConfigError, Settings
from gateway.pool import health, importers
from gateway.pool.account import Account
from gateway.pool.json_store import StoreError
from gateway.pool.view import account_view, iso

PROG = "antigravity-gateway"


class CommandFailed(Exception):
    """A command that cannot be done; ``str()`` is the one line for the operator."""


# -- plumbing ---------------------------------------------------------------------


def load_settings(args: argparse.Namespace) -> Settings:
    settings = config.load(args.config or config.default_config_path())
    if args.accounts:
        settings = config.override(settings, "accounts", path=args.accounts)
    return settings


def open_store(settings: Settings) -> Any:
    from gateway.interfaces import IAccountBackendFactory
    from gateway.plugin_loading import build

    return build(IAccountBackendFactory, settings.accounts.backend, "accounts.backend", settings)


def change(store: Any, email: str, fn: Callable[[Account], Account]) -> Account:
    """Apply ``fn`` to the stored record of ``email`` under the store's lock."""
    update = getattr(store, "update", None)
    if update is not None:
        for account in update(email, fn):
            if account.email == email:
                return account
        raise CommandFailed(f"no account {email} in {store.describe()}")
    current = find(store, email)
    changed = fn(current)
    store.put(changed)
    return changed


def find(store: Any, email: str) -> Account:
    accounts = store.load()
    for account in accounts:
        if account.email == email:
            return account
    folded = [a for a in accounts if a.email.lower() == email.lower()]
    if len(folded) == 1:
        return folded[0]
    known = ", ".join(a.email for a in accounts) or "none"
    raise CommandFailed(f"no account {email} in {store.describe()} (accounts: {known})")


def when(seconds: float | None, now: float) -> str:
    """``2025-01-02T03:04:05Z (in 4m)``."""
    if not seconds:
        return "-"
    delta = seconds - now
    if abs(delta) < 120:
        rel = f"{int(delta)}s"
    elif abs(delta) < 7200:
        rel = f"{int(delta // 60)}m"
    elif abs(delta) < 172800:
        rel = f"{delta / 3600:.1f}h"
    else:
        rel = f"{delta / 86400:.1f}d"
    return f"{iso(seconds)} ({'in ' + rel if delta >= 0 else rel.lstrip('-') + ' ago'})"


def state_text(account: Account, now: float, width: int | None = None) -> str:
    status = health.status(account, now)
    if status.state == "disabled":
        text = f"disabled: {status.reason or 'no reason given'}"
    elif status.state == "cooling":
        text = f"cooling until {when(status.until, now)}: {status.reason or ''}".rstrip(": ")
    else:
        text = "active"
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return text


# -- list / show --------------------------------------------------------------------


def quota_lines(account: Account, now: float, indent: str = "    ") -> list[str]:
    blocks = health.model_blocks(account, now)
    models = sorted(set(account.quota) | set(blocks))
    if not models:
        return [indent + f"quota: not polled yet (run: {accounts_command()} refresh)"]
    width = max(len(m) for m in models)
    lines = []
    for model in models:
        quota = account.quota.get(model)
        left = health.remaining(account, model, now)
        text = f"{indent}{model:<{width}}  "
        text += f"{left * 100:5.1f}% left" if left is not None else "    ?      "
        if quota is not None and quota.reset is not None and quota.reset > now:
            text += f"  resets {when(quota.reset, now)}"
        block = blocks.get(model)
        if block is not None and model in account.model_cooldowns:
            text += f"  cooling until {when(block.until, now)}: {block.reason}"
        lines.append(text)
    return lines


def account_lines(account: Account, now: float, indent: str = "    ") -> list[str]:
    """AI credits and quota windows, when loadCodeAssist / retrieveUserQuotaSummary reported them."""
    lines = []
    if account.credits:
        lines.append(indent + "AI credits: " + ", ".join(
            f"{c.credit_type} {c.amount:g}" + ("" if c.usable else f" (below the minimum {c.minimum:g}: unusable)")
            for c in account.credits
        ))
    for w in account.quota_windows:
        text = f"{indent}window {w.name}: {w.remaining * 100:.1f}% left"
        if w.reset is not None and w.reset > now:
            text += f", resets {when(w.reset, now)}"
        lines.append(text)
    return lines


def render_list(accounts: Sequence[Account], now: float, clients: Any = None) -> str:
    if not accounts:
        return f"no accounts (add one: {accounts_command()} add)"
    rows = [("EMAIL", "STATE", "PROJECT", "TIER", "CLIENT")]
    for a in accounts:
        client = clients.name_of(a) if clients is not None else (a.oauth_client or "(default)")
        rows.append((a.email, state_text(a, now, 60), a.project_id or "-", a.tier or "-", client))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    out = []
    for i, row in enumerate(rows):
        out.append("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            continue
        account = accounts[i - 1]
        if account.validation_url:
            out.append(f"    verify at: {account.validation_url}")
        if account.disabled and account.disabled_reason and len(state_text(account, now)) > 60:
            out.append(f"    why: {account.disabled_reason}")
        if account.ineligible:
            out.append(f"    ineligible tiers: {account.ineligible}")
        out.extend(account_lines(account, now))
        out.extend(quota_lines(account, now))
    return "\n".join(out)


def render_show(account: Account, now: float) -> str:
    lines = [
        f"email:            {account.email}",
        f"state:            {state_text(account, now)}",
    ]
    if account.validation_url:
        lines.append(f"verify at:        {account.validation_url}")
    lines += [
        f"project:          {account.project_id or '- (found on first use)'}",
        f"tier:             {account.tier or '-'}",
        f"OAuth client:     {account.oauth_client or '(the default)'}",
        f"ineligible tiers: {account.ineligible or '-'}",
        f"access token:     {'expires ' + when(account.expiry, now) if account.access_token else 'none yet'}",
        f"quota polled:     {when(account.quota_updated, now) if account.quota_updated else 'never'}",
    ]
    lines.extend(account_lines(account, now, "  "))
    lines.append("quota and cooldowns per model:")
    lines.extend(quota_lines(account, now, "  "))
    return "\n".join(lines)


# -- commands ------------------------------------------------------------------------


def version_line(settings: Settings, timeout: float = 5.0) -> str:
    """The client version the gateway would send now: the manifest read once (bounded), or the floor."""
    import urllib.request

    from gateway.protocol import client_version

    import threading

    up = settings.upstream
    result: dict[str, Any] = {"note": f"the manifest did not answer within {timeout:g} s; the gateway keeps its last good version"}

    def fetch() -> None:
        try:
            with urllib.request.urlopen(up.version_url, timeout=timeout) as answer:
                found = client_version.from_manifest(answer.read(65536))
            result.update(fetched=found, note=f"manifest says {found}" if found else "manifest has no version: key")
        except (OSError, ValueError) as e:
            result["note"] = f"manifest unreadable ({getattr(e, 'reason', None) or e}); the gateway keeps its last good version"

    if up.version_url:
        # A thread with a deadline: urlopen's timeout does not cover a slow name lookup.
        worker = threading.Thread(target=fetch, daemon=True)
        worker.start()
        worker.join(timeout)
    else:
        result["note"] = "no [upstream] version_url: the floor is used"
    fetched, note = result.get("fetched"), str(result["note"])
    version = client_version.effective(up.version_floor, fetched)
    agent = client_version.user_agent(up.user_agent, version)
    return f"client version: {version} (User-Agent {agent!r}; floor {up.version_floor}; {note})"


def oauth_clients_of(settings: Settings) -> Any:
    from gateway.upstream.oauth_clients import from_settings

    return from_settings(settings.upstream)


def cmd_list(args: argparse.Namespace, settings: Settings, store: Any, now: float) -> int:
    accounts = store.load()
    clients = oauth_clients_of(settings)
    if args.json:
        print(json.dumps([account_view(a, now, clients=clients) for a in accounts], indent=2))
    else:
        print(render_list(accounts, now, clients))
        print(version_line(settings, 3.0))
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings, store: Any, now: float) -> int:
    account = find(store, args.email)
    print(json.dumps(account_view(account, now), indent=2) if args.json else render_show(account, now))
    return 0


def cmd_enable(args: argparse.Namespace, settings: Settings, store: Any, now: float) -> int:
    email = find(store, args.email).email
    change(store, email, health.enable)
    print(f"enabled {email} (cooldowns cleared)")
    return 0


def cmd_disable(args: argparse.Namespace, settings: Settings, store: Any, now: float) -> int:
    email = find(store, args.email).email
    reason = args.reason or f"disabled by the operator on {iso(now)}"
    change(store, email, lambda a: health.disable(a, reason))
    print(f"disabled {email}: {reason}")
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings, store: Any, now: float) -> int:
    email = find(store, args.email).email
    if not store.remove(email):
        raise CommandFailed(f"no account {email} in {store.describe()}")
    print(f"removed {email}")
    return 0


def save_account(store: Any, account: Account, merge: Callable[[Account, Account], Account]) -> str:
    """Add ``account`` or refresh the stored one; returns ``added``/``updated``."""
    existing = {a.email: a for a in store.load()}
    if account.email in existing:
        change(store, account.email, lambda current: merge(current, account))
        return "updated"
    store.put(account)
    return "added"


def cmd_import(args: argparse.Namespace, settings: Settings, store: Any, now: float) -> int:
    up = settings.upstream
    clients = oauth_clients_of(settings)
    if args.client:
        client_named(clients, args.client)
    try:
        found = importers.load(args.path, args.email, args.client)
    except importers.NeedsEmail as e:
        # Only the credentials themselves can say whose they are: ask Google (a refresh and userinfo).
        from gateway import authorize

        authorize.use_proxy(up.proxy)
        print(f"{e}; asking Google which account the credentials belong to…", file=sys.stderr)
        client = client_named(clients, e.client)
        try:
            tokens = authorize.refresh(up.token_url, client.client_id, client.client_secret, e.refresh_token)
            email = authorize.email_of(up.userinfo_url, tokens.access_token)
        except authorize.AuthorizationFailed as failure:
            raise CommandFailed(f"{failure} (OAuth client {client.name!r}; another one with --client NAME?); pass --email to import anyway") from None
        found = importers.Imported(
            importers.GEMINI_CLI,
            [Account(email, tokens.refresh_token, tokens.access_token, now + tokens.expires_in, oauth_client=client.name)],
        )
    except importers.ImportProblem as e:
        raise CommandFailed(str(e)) from None
    print(f"{found.kind}: {len(found.accounts)} account(s)")
    for note in found.notes:
        print(f"  note: {note}")
    for account in found.accounts:
        what = save_account(store, account, importers.merge)
        state = f" (disabled: {account.disabled_reason})" if account.disabled else ""
        print(f"  {what} {account.email}{state} [OAuth client {clients.name_of(account)}]")
    if found.kind == importers.GEMINI_CLI and not args.client:
        print(
            "  oauth_creds.json does not say which tool wrote it: accounts whose granted scopes are Antigravity's "
            "use the antigravity client, the others gemini-cli. Credentials written by the Antigravity CLI (agy)? "
            "Import again with --client antigravity."
        )
    return 0 if found.accounts else 1


def client_named(clients: Any, name: str | None) -> Any:
    from gateway.upstream.oauth_clients import UnknownClient

    try:
        return clients.named(name)
    except UnknownClient as e:
        raise CommandFailed(f"{e}: add it as [upstream.oauth_clients.NAME] in the config") from None


def _browser_available() -> bool:
    if os.environ.get("BROWSER"):
        return True
    if sys.platform == "darwin" or sys.platform.startswith("win"):
        return True
    if os.environ.get("SSH_CONNECTION") or not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def cmd_add(args: argparse.Namespace, settings: Settings, store: Any, now: float) -> int:
    from gateway import authorize

    up = settings.upstream
    authorize.use_proxy(up.proxy)
    client = client_named(oauth_clients_of(settings), args.client)

    def say(text: str) -> None:
        print(text, flush=True)

    def read_line(prompt: str) -> str:
        print(prompt, end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            raise CommandFailed("no code was pasted (end of input)")
        return line

    try:
        if args.no_browser or not _browser_available():
            code, request = authorize.paste_flow(
                up.auth_url, client.client_id, read_line, say, port=args.port or authorize.PASTE_PORT, login_hint=args.login_hint,
                scopes=client.scopes,
            )
        else:
            code, request = authorize.loopback_flow(
                up.auth_url, client.client_id, webbrowser.open, say, port=args.port or 0, login_hint=args.login_hint, timeout=args.timeout,
                scopes=client.scopes,
            )
        tokens = authorize.exchange(up.token_url, client.client_id, client.client_secret, code, request)
        email = authorize.email_of(up.userinfo_url, tokens.access_token)
    except authorize.AuthorizationFailed as e:
        raise CommandFailed(str(e)) from None
    got = time.time()
    account = Account(email, tokens.refresh_token, tokens.access_token, got + tokens.expires_in, oauth_client=client.name)

    def renew(existing: Account, new: Account) -> Account:
        # A fresh consent revives an account whose grant died (or whose client was retired): enable it again.
        revived = health.enable(existing) if existing.disabled else existing
        return attrs.evolve(revived, refresh_token=new.refresh_token, access_token=new.access_token, expiry=new.expiry,
                            oauth_client=new.oauth_client, ineligible=None)

    what = save_account(store, account, renew)
    print(f"{what} {email} (OAuth client {client.name})")
    if args.no_check:
        return 0
    return run_refresh(settings, store, [email], quiet_header=True)


def cmd_refresh(args: argparse.Namespace, settings: Settings, store: Any, now: float) -> int:
    accounts = store.load()
    if args.emails:
        targets = [find(store, e).email for e in args.emails]
    else:
        targets = [a.email for a in accounts if not a.disabled]
        skipped = [a.email for a in accounts if a.disabled]
        if skipped:
            print(f"skipping disabled: {', '.join(skipped)} (name them to try anyway)")
    if not targets:
        print("no accounts to refresh")
        return 0
    return run_refresh(settings, store, targets)


def run_refresh(settings: Settings, store: Any, emails: list[str], quiet_header: bool = False) -> int:
    """For each account: a new access token, project and tier (loadCodeAssist), quota (fetchAvailableModels)."""
    from twisted.internet import task
    from twisted.internet.defer import Deferred

    result: list[int] = [1]

    async def body(reactor: Any) -> None:
        result[0] = await _refresh_all(reactor, settings, store, emails)

    try:
        task.react(lambda reactor: Deferred.fromCoroutine(body(reactor)))
    except SystemExit as e:  # react() always exits; its code says whether body() raised
        if e.code not in (0, None):
            return 1
    return result[0]


async def _refresh_all(reactor: Any, settings: Settings, store: Any, emails: list[str]) -> int:
    from gateway.pool.pool import AccountPool
    from gateway.pool.selection import LeastRecentlyUsed
    from gateway.upstream.client import UpstreamClient, UpstreamUnreachable
    from gateway.upstream.oauth import AccessTokens, InvalidGrant, TokenEndpoint, TokenEndpointError
    from gateway.upstream.onboarding import AccountIneligible, DiscoveryFailed, ProjectResolver
    from gateway.upstream.proxy import RoutingHTTPClient, UpstreamHTTP
    from gateway.upstream.quota import QuotaPollFailed, QuotaPoller
    from gateway.upstream.version import ClientVersion

    up = settings.upstream
    clients = oauth_clients_of(settings)
    pool = AccountPool(store, LeastRecentlyUsed(), reactor.seconds)
    # The server's routes: [upstream] proxy and account_proxies apply here too.
    routes = UpstreamHTTP(reactor, connect_timeout=up.connect_timeout, proxy=up.proxy, account_proxies=up.account_proxies,
                          accounts=lambda: [s.account for s in pool.states()])
    http = RoutingHTTPClient(routes)
    version = ClientVersion(http, reactor, url=up.version_url, floor=up.version_floor, template=up.user_agent,
                            interval=up.version_refresh_seconds, timeout=min(up.response_timeout, 15.0))
    if up.version_url:
        await version.refresh()
    print(f"client version {version.current()} (User-Agent {version.user_agent()!r})")
    client = UpstreamClient(routes, up.hosts, version.user_agent, up.response_timeout, reactor)
    default = clients.named(None)
    tokens = AccessTokens(pool, TokenEndpoint(http, up.token_url, default.client_id, default.client_secret, up.token_timeout, reactor),
                          reactor.seconds, up.refresh_margin, clients=clients)
    projects = ProjectResolver(pool, client, reactor)
    projects.client_name = clients.name_of
    poller = QuotaPoller(pool, tokens, projects, client, reactor, 0)
    failures = 0
    for email in emails:
        try:
            token = await tokens.token_for(email, force=True)
            await projects.project_for(email, token, force=True)
            await poller.poll(email)
        except InvalidGrant as e:
            failures += 1
            print(f"{email}: disabled: {e}")
            continue
        except AccountIneligible as e:
            failures += 1
            stored = pool.get(email)
            print(f"{email}: disabled: {stored.disabled_reason if stored is not None and stored.disabled_reason else f'not eligible for Cloud Code: {e}'}")
            continue
        except (TokenEndpointError, DiscoveryFailed, QuotaPollFailed, UpstreamUnreachable) as e:
            failures += 1
            print(f"{email}: failed: {e}")
            continue
        account = pool.get(email)
        assert account is not None
        now = reactor.seconds()
        exhausted = sorted(m for m in account.quota if health.remaining(account, m, now) == 0)
        line = (f"{email}: ok, project {account.project_id}, tier {account.tier or '-'}, quota for {len(account.quota)} models, "
                f"OAuth client {clients.name_of(account)}")
        if exhausted:
            line += f" ({len(exhausted)} exhausted: {', '.join(exhausted)})"
        print(line)
        if account.ineligible:
            print(f"  ineligible tiers: {account.ineligible}")
        for text in account_lines(account, now, "  "):
            print(text)
    await routes.close()
    return 1 if failures else 0


# -- the parser ---------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", help="the gateway's TOML file (default: $ANTIGRAVITY_GATEWAY_CONFIG or ~/.config/antigravity-gateway/config.toml)")
    common.add_argument("--accounts", help="the account store, overriding [accounts] path")

    top = argparse.ArgumentParser(prog=PROG, description="Manage the gateway's Google accounts (the server itself runs with: twist antigravity-gateway).")
    top.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    accounts = commands.add_parser("accounts", help="add, import, list, show, enable, disable, remove, refresh accounts")
    accounts.set_defaults(help_for=accounts)
    actions = accounts.add_subparsers(dest="action", metavar="ACTION")

    add = actions.add_parser("add", parents=[common], help="sign in with Google (OAuth) and add the account")
    add.add_argument("--no-browser", action="store_true", help="headless: print the URL and paste back the address or code")
    add.add_argument("--port", type=int, default=0, help="loopback port for the redirect (default: any free port; 8085 with --no-browser)")
    add.add_argument("--login-hint", metavar="EMAIL", help="pre-select this Google account on the consent screen")
    add.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the browser sign-in (default 300)")
    add.add_argument("--no-check", action="store_true", help="do not look up the project, tier and quota afterwards")
    add.add_argument("--client", metavar="NAME", help="the OAuth client to sign in with: antigravity (the default), gemini-cli, "
                     "or an [upstream.oauth_clients.NAME]; the account keeps it")
    add.set_defaults(run=cmd_add)

    imp = actions.add_parser("import", parents=[common], help="import from an Antigravity-Manager data directory or gemini-cli's oauth_creds.json")
    imp.add_argument("path", help="~/.antigravity_tools, ~/.gemini/oauth_creds.json, or another gateway's accounts.json")
    imp.add_argument("--email", help="the account's email, when the credentials do not say")
    imp.add_argument("--client", metavar="NAME", help="the OAuth client the credentials belong to (default: Antigravity-Manager -> "
                     "antigravity; oauth_creds.json -> antigravity if its scopes are Antigravity's, else gemini-cli)")
    imp.set_defaults(run=cmd_import)

    lst = actions.add_parser("list", parents=[common], help="every account: state, project, tier, quota per model")
    lst.add_argument("--json", action="store_true", help="machine-readable (no tokens)")
    lst.set_defaults(run=cmd_list)

    show = actions.add_parser("show", parents=[common], help="one account in detail")
    show.add_argument("email")
    show.add_argument("--json", action="store_true", help="machine-readable (no tokens)")
    show.set_defaults(run=cmd_show)

    enable = actions.add_parser("enable", parents=[common], help="put an account back in rotation (clears cooldowns)")
    enable.add_argument("email")
    enable.set_defaults(run=cmd_enable)

    disable = actions.add_parser("disable", parents=[common], help="take an account out of rotation")
    disable.add_argument("email")
    disable.add_argument("--reason", help="shown in list and the admin view")
    disable.set_defaults(run=cmd_disable)

    remove = actions.add_parser("remove", parents=[common], help="delete an account from the store")
    remove.add_argument("email")
    remove.set_defaults(run=cmd_remove)

    refresh = actions.add_parser("refresh", parents=[common], help="new access tokens, project and tier, quota (all enabled accounts, or those named)")
    refresh.add_argument("emails", nargs="*", metavar="EMAIL")
    refresh.set_defaults(run=cmd_refresh)

    from gateway.team.cli import add_parsers

    add_parsers(commands, common)  # keys …, usage
    return top


def main(argv: Sequence[str] | None = None) -> int:
    top = parser()
    args = top.parse_args(argv)
    run = getattr(args, "run", None)
    if run is None:
        getattr(args, "help_for", top).print_help(sys.stderr)
        return 2
    try:
        settings = load_settings(args)
        store = open_store(settings)
        return run(args, settings, store, time.time())
    except (ConfigError, StoreError, CommandFailed) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
